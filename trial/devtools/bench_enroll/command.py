"""The bench_enroll command: setup, the interleaved measured runs, the in-process
sample, and the report (the package docstring describes the benchmark)."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from participants import services
from trial.devtools.bench_enroll import IN_PROCESS, PASSWORD
from trial.devtools.bench_enroll.bare import BareLoop
from trial.devtools.bench_enroll.fault import Redis, fault_run
from trial.devtools.bench_enroll.load import (
    InProcess,
    Runs,
    enroll_phase,
    is_trial_lock,
    log_in_all,
)
from trial.devtools.bench_enroll.report import anomalies, enrollment_table
from trial.devtools.bench_enroll.server import (
    database_dsn,
    gunicorn_server,
    profile_report,
    server_spec,
)
from trial.devtools.demo import build_modic_trial
from trial.devtools.management.commands import bench_sms
from trial.devtools.management.commands.bench_allocation import Command as AllocationBench
from trial.models import Membership, Trial


class Command(BaseCommand):
    help = "Randomizations per second with concurrent HTTP clients (gunicorn, PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=8, help="client threads")
        parser.add_argument(
            "--seconds", type=float, default=20.0, help="measured time of each side, in all"
        )
        parser.add_argument(
            "--participants", type=int, default=30_000, help="ready to randomize (setup)"
        )
        # Default: 2 sync workers, one per core. The work is CPU-bound in Python and
        # serialized by the trial row lock, so more processes or threads than cores add no
        # throughput, only queueing and preemption of the lock holder (longer tails).
        parser.add_argument(
            "--server",
            nargs="+",
            default=["sync:2"],
            help="gunicorn workers: sync:W, or gthread:WxT (W processes of T threads); with "
            "several, each is measured, interleaved, and the first is the headline",
        )
        parser.add_argument(
            "--fault", action="store_true", help="also the Redis outage run (section 5)"
        )
        parser.add_argument("--outage", type=float, default=5.0, help="seconds Redis is down")
        parser.add_argument(
            "--sms-participants", type=int, default=1_000, help="fault run: open SMS weeks"
        )
        parser.add_argument(
            "--profile-dir",
            metavar="DIR",
            help="cProfile every request in the gunicorn workers; print the top and keep "
            "one .prof file per worker in DIR",
        )
        parser.add_argument("--write", metavar="PATH", help="append the results to PATH")

    def handle(self, *args, clients, seconds, participants, server, fault, outage,
               sms_participants, profile_dir, write, **options):  # fmt: skip
        if connection.vendor != "postgresql":
            raise CommandError("bench_enroll needs PostgreSQL (row locks under load)")
        if clients < 1 or seconds <= 0 or participants < clients:
            raise CommandError("need --clients ≥ 1, --seconds > 0, --participants ≥ --clients")
        specs = [server_spec(text) for text in server]
        trial, people, users = self._setup(participants, clients)
        # Each client randomizes only its own participants, across all its phases and runs.
        queues = [iter(people[i::clients]) for i in range(clients)]
        bare = BareLoop(database_dsn(), clients=clients)
        redis = Redis.start()
        log_dir = Path(tempfile.mkdtemp(prefix="bench-enroll-"))
        try:
            bare.create()
            with contextlib.ExitStack() as servers:
                webs = [
                    servers.enter_context(
                        gunicorn_server(
                            spec, broker=redis.url, log_dir=log_dir, profile_dir=profile_dir
                        )
                    )
                    for spec in specs
                ]
                # Sessions live in the database, so one login serves every server.
                sessions = log_in_all(webs[0].port, trial, users, first=people[0])
                ours = [Runs() for _ in specs]
                base = Runs()
                # Interleaved halves (ours, bare, ours, bare), so both sides see the same load
                # from the machine's other users.
                for half in range(2):
                    for web, runs in zip(webs, ours, strict=True):
                        for browser in sessions:
                            browser.use(web.port)
                        runs.add(enroll_phase(trial, sessions, queues, seconds / 2)["main"])
                    base.add(bare.run(seconds / 2, phase=half))
                # Is the load generator itself a bottleneck? Its CPU per side, from this
                # process's CPU time over each phase (threads share one GIL).
                client_cpu = (ours[0].client_cpu / ours[0].elapsed, base.client_cpu / base.elapsed)
            profile = profile_report(profile_dir) if profile_dir else ""
            sample = self._in_process(trial, users[0], queues)
            bare_problems = bare.anomalies()
            fault_text, fault_ok, fault_problems = "", 0, []
            if fault:
                fault_text, fault_ok, fault_problems = fault_run(
                    trial, sessions, queues, specs[0], redis, log_dir,
                    seconds=seconds, outage=outage, sms_participants=sms_participants,
                )  # fmt: skip
        finally:
            bare.drop()
            redis.stop()
            shutil.rmtree(log_dir, ignore_errors=True)
        answered = sum(r.ok for r in ours) + fault_ok + sample.count
        problems = anomalies(trial, answered=answered)
        for runs in ours:
            problems += runs.failure_lines()
        problems += [f"bare loop: {p}" for p in bare_problems]
        problems += [f"fault run: {p}" for p in fault_problems]
        text = enrollment_table(
            specs, clients, seconds, ours, base, sample, problems, client_cpu, participants
        )
        if fault_text:
            text += "\n" + fault_text
        self.stdout.write(text)
        if profile:
            self.stdout.write(profile)
        if write:
            stamp = timezone.now().strftime("%Y-%m-%d %H:%M %Z")
            with Path(write).open("a", encoding="utf-8") as fh:
                fh.write(f"\n### Concurrent enrollment ({stamp}, {connection.vendor})\n\n{text}")
        if problems:
            raise CommandError(f"{len(problems)} anomalies: " + "; ".join(problems[:10]))

    # --- Setup -----------------------------------------------------------------------------

    def _setup(self, n: int, clients: int) -> tuple[Trial, list[int], list[User]]:
        code = f"E{int(time.time() * 1000) % 10**9}"
        trial = build_modic_trial(code=code)
        Trial.objects.filter(pk=trial.pk).update(target_sample_size=n)
        trial.refresh_from_db()
        maker = User.objects.get_or_create(username="bench-enroll")[0]
        t0 = time.perf_counter()
        # bench_allocation's bulk enrollment: consented, baseline complete, factor levels set.
        people = AllocationBench()._bulk_enroll(trial, n, maker)
        bench_sms._analyze()
        self.stderr.write(f"  {n:,} participants enrolled in {time.perf_counter() - t0:.1f} s")
        # The production hasher, whatever the settings of this process say (the test suite
        # uses MD5): the server checks passwords with its own settings.
        encoded = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
        users = []
        for i in range(clients):
            user, _ = User.objects.update_or_create(
                username=f"bench-clinician-{i}", defaults={"password": encoded}
            )
            # A clinician of this trial; no sites listed: all sites.
            Membership.objects.create(user=user, trial=trial, clinician=True)
            users.append(user)
        return trial, [p.pk for p in people], users

    # --- Statements per randomization ------------------------------------------------------

    def _in_process(self, trial: Trial, user: User, queues) -> InProcess:
        """Randomize IN_PROCESS participants one at a time through the test client (no
        contention): statements of one request, how long a request takes, and how long the
        service holds the trial row lock (from taking it to COMMIT)."""
        people = [pk for pk in (next(queues[i % len(queues)], None) for i in range(IN_PROCESS))]
        if None in people:
            raise CommandError("no participants left for the in-process sample")
        client = Client()
        locked_times: list[float] = []
        real = services.participant_randomize
        lock_taken: list[float] = []

        def note_trial_lock(execute, sql, params, many, context):
            if is_trial_lock(sql):
                lock_taken.append(time.perf_counter())
            return execute(sql, params, many, context)

        def timed_service(**kwargs):
            lock_taken.clear()
            try:
                with connection.execute_wrapper(note_trial_lock):
                    return real(**kwargs)
            finally:  # the service returns after its COMMIT
                if lock_taken:
                    locked_times.append(time.perf_counter() - lock_taken[-1])

        result = InProcess(count=len(people))
        with (
            override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False),
            mock.patch.object(services, "participant_randomize", timed_service),
        ):
            client.force_login(user)
            wall = cpu = 0.0
            for i, pk in enumerate(people):
                url = reverse("participant_review", kwargs={"code": trial.code, "pk": pk})
                with CaptureQueriesContext(connection) as captured:
                    w0, c0 = time.perf_counter(), time.process_time()
                    response = client.post(url, {"confirm": "on"})
                    if i:  # the first request warms up
                        wall += time.perf_counter() - w0
                        cpu += time.process_time() - c0
                if response.status_code != 302:
                    raise CommandError(f"in-process randomize answered {response.status_code}")
        sql = [q["sql"] for q in captured.captured_queries]
        result.statements = len(sql)
        locked_at = next((i for i, q in enumerate(sql) if is_trial_lock(q)), len(sql))
        result.locked_statements = len(sql) - locked_at  # from the lock to COMMIT
        result.request_ms = wall / (len(people) - 1) * 1000
        result.request_cpu_ms = cpu / (len(people) - 1) * 1000
        result.service_ms = statistics.median(locked_times[1:]) * 1000
        return result
