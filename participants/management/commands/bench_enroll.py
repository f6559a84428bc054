"""Benchmark: randomizations per second from concurrent HTTP clients, beside a bare SQL loop
measured in the same run; and (--fault) enrollment and inbound SMS through a Redis outage.

1. Setup (not measured). A fresh trial with the demo configuration, `--participants`
   consented participants with baseline in bulk (ready to randomize, spread over the sites),
   and one clinician per client (role Clinician, a Membership for every site).
2. Measured run. gunicorn (`trial.wsgi`, DEBUG off, persistent database connections, a
   Redis broker as deployed) on a free loopback port. Each client thread logs in with its
   own session (CSRF token from the login form, then from a review page, as a browser gets
   them) and POSTs the real randomize form for its own participants; a success is the
   302 to the participant's allocation page. Randomizations per second count the successes
   completed inside the fixed wall-time window.
3. Baseline, interleaved with 2 (ours, bare, ours, bare): the same number of client
   threads, each with its own psycopg2 connection and no Django, doing what an allocation
   minimally does (BEGIN; lock the trial row; read the per-level counts; insert an
   allocation; update the counts, the trial's sequence and the participant; COMMIT)
   against scratch tables made for the purpose and dropped after.
4. Anomalies, after the run, from the database: the allocation sequence unique and
   gap-free, per-site numbers unique and gap-free, FactorLevelCount equal to a recount from
   the allocations, no participant allocated twice, every 302 backed by an allocation, no
   HTTP 5xx. A few more randomizations are made in process, one at a time through the test
   client, to count their statements (CaptureQueriesContext) and time a request and how
   long the service holds the trial row lock (from that statement to COMMIT), uncontended:
   randomizations of a trial queue on that lock, so one over that time bounds the rate
   whatever the server does.
5. --fault: a second enrollment run, with a `celery worker` (file SMS gateway) and one more
   client posting signed inbound SMS replies, so messages are queued through Redis. Redis
   is stopped for `--outage` seconds mid-run and started again on the same port. Reported:
   the randomization rate before, during and after the outage, the slowest request, and
   failures; then, once the worker has drained the queue, the outbox sweeper
   (outcomes.sms.tasks.sms_send_stale, with its 10-minute staleness wait set to 0, which is the
   only thing not as deployed) re-queues the messages whose task was lost, and every queued
   message must be in the gateway's file exactly once.

Finding causes: `--profile-dir` cProfiles every request inside the gunicorn workers;
`--server sync:2 sync:2@hooks.conf.py` measures a second server whose gunicorn config file
(e.g. a post_fork hook patching in a candidate fix) differs, interleaved with the first.

The load generators contact only 127.0.0.1, stop by themselves at the end of their window,
and are capped in count (MAX_REQUESTS) and time (HTTP_TIMEOUT per request). PostgreSQL
only: SQLite has no row locks to measure.

    make bench   # on a throwaway PostgreSQL cluster
    manage.py bench_enroll --clients 8 --seconds 20 --fault --write docs/PERFORMANCE.md
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import logging
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import psycopg2
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone
from kombu import pools

from outcomes.management.commands import bench_sms
from outcomes.sms import tracking
from outcomes.sms.models import OutboundMessage, SmsWeek
from participants import services
from participants.management.commands.bench_allocation import Command as AllocationBench
from participants.models import Allocation, Participant
from trial.celery import app
from trial.demo import build_modic_trial
from trial.models import Membership, Site, Trial

GOAL_PER_SECOND = 250
GOAL_RATIO = 0.15
# Hard caps on the load generators: requests per phase, seconds per request.
MAX_REQUESTS = 200_000
HTTP_TIMEOUT = 30
# The slowest a request may be before the fault run calls it hung.
HUNG_SECONDS = 10
# Randomizations made one at a time in process, for statements and uncontended timings.
IN_PROCESS = 21
PASSWORD = "bench-only-password-not-secret"
REPO = Path(__file__).resolve().parents[3]
BARE_PREFIX = "bench_bare_"


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
        specs = [_server_spec(text) for text in server]
        trial, people, users = self._setup(participants, clients)
        # Each client randomizes only its own participants, across all its phases and runs.
        queues = [iter(people[i::clients]) for i in range(clients)]
        bare = _BareLoop(_dsn(), clients=clients)
        redis = _Redis.start()
        log_dir = Path(tempfile.mkdtemp(prefix="bench-enroll-"))
        try:
            bare.create()
            with contextlib.ExitStack() as servers:
                webs = [
                    servers.enter_context(
                        _gunicorn(spec, broker=redis.url, log_dir=log_dir, profile_dir=profile_dir)
                    )
                    for spec in specs
                ]
                # Sessions live in the database, so one login serves every server.
                sessions = _log_in_all(webs[0].port, trial, users, first=people[0])
                ours = [_Runs() for _ in specs]
                base = _Runs()
                # Interleaved halves (ours, bare, ours, bare), so both sides see the same load
                # from the machine's other users.
                for half in range(2):
                    for web, runs in zip(webs, ours, strict=True):
                        for browser in sessions:
                            browser.use(web.port)
                        runs.add(_enroll_phase(trial, sessions, queues, seconds / 2)["main"])
                    base.add(bare.run(seconds / 2, phase=half))
                # Is the load generator itself a bottleneck? Its CPU per side, from this
                # process's CPU time over each phase (threads share one GIL).
                client_cpu = (ours[0].client_cpu / ours[0].elapsed, base.client_cpu / base.elapsed)
            profile = _profile_report(profile_dir) if profile_dir else ""
            sample = self._in_process(trial, users[0], queues)
            bare_problems = bare.anomalies()
            fault_text, fault_ok, fault_problems = "", 0, []
            if fault:
                fault_text, fault_ok, fault_problems = self._fault(
                    trial, sessions, queues, specs[0], redis, log_dir,
                    seconds=seconds, outage=outage, sms_participants=sms_participants,
                )  # fmt: skip
        finally:
            bare.drop()
            redis.stop()
            shutil.rmtree(log_dir, ignore_errors=True)
        answered = sum(r.ok for r in ours) + fault_ok + sample.count
        problems = _anomalies(trial, answered=answered)
        for runs in ours:
            problems += runs.failure_lines()
        problems += [f"bare loop: {p}" for p in bare_problems]
        problems += [f"fault run: {p}" for p in fault_problems]
        text = self._table(
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

    def _in_process(self, trial: Trial, user: User, queues) -> _InProcess:
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
            if _is_trial_lock(sql):
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

        result = _InProcess(count=len(people))
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
        locked_at = next((i for i, q in enumerate(sql) if _is_trial_lock(q)), len(sql))
        result.locked_statements = len(sql) - locked_at  # from the lock to COMMIT
        result.request_ms = wall / (len(people) - 1) * 1000
        result.request_cpu_ms = cpu / (len(people) - 1) * 1000
        result.service_ms = statistics.median(locked_times[1:]) * 1000
        return result

    # --- The table -------------------------------------------------------------------------

    def _table(self, specs, clients, seconds, ours, base, sample, problems, client_cpu,
               participants) -> str:  # fmt: skip
        rate, bare_rate = ours[0].rate, base.rate
        ratio = rate / bare_rate if bare_rate else 0.0
        rows = [
            ("server", f"gunicorn {specs[0].label}, 127.0.0.1, PostgreSQL {_pg_version()}"),
            ("clients", f"{clients} threads, {seconds:g} s per side, interleaved halves"),
            ("participants ready (setup)", f"{participants:,}"),
            ("randomizations in the window", f"{ours[0].ok_in_window:,}"),
            (f"randomizations per second (goal ≥ {GOAL_PER_SECOND})", f"{rate:.0f}"),
            ("p50 / p95 / max request time", ours[0].latency_text()),
            ("baseline: bare SQL loop, transactions", f"{base.ok_in_window:,}"),
            ("baseline: bare SQL loop per second", f"{bare_rate:.0f}"),
            (f"ratio, ours / bare (goal ≥ {GOAL_RATIO})", f"{ratio:.2f}×"),
            ("statements per randomize request (in process)",
             f"{sample.statements}, {sample.locked_statements} of them holding the trial lock"),
            ("one request in process, uncontended: wall / CPU",
             f"{sample.request_ms:.1f} / {sample.request_cpu_ms:.1f} ms"),
            ("… of which the trial row is locked (lock to COMMIT)",
             f"{sample.service_ms:.1f} ms: at most {1000 / sample.service_ms:.0f} per second"),
            ("HTTP 5xx", f"{sum(r.server_errors for r in ours)}"),
            ("anomalies", f"{len(problems)}"),
            ("client CPU, ours / bare phases (share of one core)",
             f"{client_cpu[0]:.0%} / {client_cpu[1]:.0%}"),
            ("machine", f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                        f"{platform.python_version()}"),
        ]  # fmt: skip
        for place, (spec, runs) in enumerate(list(zip(specs, ours, strict=True))[1:], 6):
            # Other server configurations, measured interleaved with the headline one.
            rows.insert(
                place,
                (f"… with gunicorn {spec.label}: per second, p50 / p95 / max",
                 f"{runs.rate:.0f}, {runs.latency_text()}"),
            )  # fmt: skip
        lines = ["| concurrent enrollment | result |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows]
        verdict = [
            f"{rate:.0f}/s {'meets' if rate >= GOAL_PER_SECOND else 'MISSES'} "
            f"≥ {GOAL_PER_SECOND}/s",
            f"ratio {ratio:.2f} {'meets' if ratio >= GOAL_RATIO else 'MISSES'} ≥ {GOAL_RATIO}",
            f"{len(problems)} anomalies",
        ]
        return "\n".join(lines) + "\n\nenrollment: " + "; ".join(verdict) + "\n"

    # --- The fault run ---------------------------------------------------------------------

    def _fault(self, trial, sessions, queues, spec, redis, log_dir, *, seconds, outage,
               sms_participants) -> tuple[str, int, list[str]]:  # fmt: skip
        """Enrollment and inbound SMS while Redis goes away and comes back (issue 6 §3).
        Returns the report, the number of randomizations made, and the problems seen."""
        sms_trial, phones = _sms_trial(sms_participants)
        sms_file = log_dir / "sms.jsonl"
        worker = _start_worker(redis.url, sms_file, log_dir / "worker.log")
        try:
            with _gunicorn(spec, broker=redis.url, log_dir=log_dir) as web:
                # The previous server's sessions stay valid (they live in the database).
                replies = _SmsReplies(web.port, phones)
                for browser in sessions:
                    browser.use(web.port)
                outage_at = seconds * 0.35
                marks: dict[str, float] = {}

                def break_redis(t0: float) -> None:
                    time.sleep(outage_at)
                    marks["down"] = time.perf_counter() - t0
                    redis.kill()
                    time.sleep(outage)
                    try:
                        redis.restart()
                    finally:  # without "up" the report says Redis never came back
                        if redis.process and redis.process.poll() is None:
                            marks["up"] = time.perf_counter() - t0

                runs = _enroll_phase(
                    trial, sessions, queues, seconds,
                    sms_client=replies.client, side_job=break_redis,
                )  # fmt: skip
                gunicorn_log = web.log()
            run, sms_run = runs["main"], runs["sms"]
            if "up" not in marks:
                raise CommandError("fault run: redis-server did not come back")
            sent_check = _drain_and_sweep(sms_trial, redis.url, worker, sms_file)
        finally:
            _stop(worker)
        down, up = marks["down"], marks["up"]
        before, during, after = (
            run.rate_between(0, down),
            run.rate_between(down, up),
            run.rate_between(up, seconds),
        )
        hung = run.slowest > HUNG_SECONDS or sms_run.slowest > HUNG_SECONDS
        handoffs_failed = len(re.findall(r"Error calling \S*send_queued_messages", gunicorn_log))
        rows = [
            ("Redis down", f"{down:.1f}–{up:.1f} s of {seconds:g} s (killed, restarted on the "
                           "same port, empty)"),
            ("randomizations per second before / during / after",
             f"{before:.0f} / {during:.0f} / {after:.0f}"),
            ("randomizations during the outage", f"{run.ok_between(down, up):,}"),
            ("enrollment failures (non-302, errors)", f"{sum(run.failures.values())}"),
            ("slowest randomize request", f"{run.slowest:.2f} s"),
            ("SMS replies posted (200) / failed", f"{sms_run.ok:,} / "
                                                 f"{sum(sms_run.failures.values())}"),
            ("SMS replies during the outage, slowest", f"{sms_run.ok_between(down, up):,}, "
                                                      f"{sms_run.slowest_between(down, up):.2f} s"),
            ("hand-offs to Celery that failed (logged)", f"{handoffs_failed}"),
            ("messages queued by the replies", f"{sent_check.total:,}"),
            ("left queued after the worker drained (task lost)", f"{sent_check.lost:,}"),
            ("re-queued by the sweeper", f"{sent_check.swept:,}"),
            ("sent / still queued", f"{sent_check.sent:,} / {sent_check.queued:,}"),
            ("gateway sends per message (min–max)", sent_check.per_message),
            (f"request hung (> {HUNG_SECONDS} s)",
             "yes" if hung else "no"),
        ]  # fmt: skip
        problems = list(sent_check.problems)
        if run.server_errors or sms_run.server_errors:
            problems.append(
                f"HTTP 5xx: {run.server_errors} enrollment, {sms_run.server_errors} sms"
            )
        if run.failures:
            problems.append(f"enrollment failures: {dict(run.failures)}")
        if run.ran_out:
            problems.append("enrollment clients ran out of participants; raise --participants")
        if not run.ok_between(down, up):
            problems.append("no randomization succeeded while Redis was down")
        if hung:
            problems.append("a request hung")
        lines = ["| fault run: Redis stopped mid-run | result |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines.append(f"| problems | {len(problems)} |")
        text = "\n".join(lines) + "\n"
        verdict = "OK" if not problems else "PROBLEMS: " + "; ".join(problems)
        text += f"\nfault run: {verdict}\n"
        return text, run.ok, problems


# --- Load generation ------------------------------------------------------------------------


@dataclasses.dataclass
class _InProcess:
    count: int
    statements: int = 0
    locked_statements: int = 0
    request_ms: float = 0.0
    request_cpu_ms: float = 0.0
    service_ms: float = 0.0  # the trial row lock held, lock to COMMIT


@dataclasses.dataclass
class _Runs:
    """Outcomes of client requests: (start, end, outcome) relative to the phase start,
    summed over phases (each phase's window added to `window`)."""

    window: float = 0.0
    elapsed: float = 0.0  # wall time of the phases, stragglers included
    client_cpu: float = 0.0  # this process's CPU time over the phases
    ok: int = 0
    ok_in_window: int = 0
    server_errors: int = 0
    ran_out: int = 0  # clients that had nothing left to do before the window ended
    failures: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    samples: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)

    def add(self, other: _Runs) -> None:
        self.window += other.window
        self.elapsed += other.elapsed
        self.client_cpu += other.client_cpu
        self.ok += other.ok
        self.ok_in_window += other.ok_in_window
        self.server_errors += other.server_errors
        self.ran_out += other.ran_out
        self.failures.update(other.failures)
        self.samples += other.samples

    @property
    def rate(self) -> float:
        return self.ok_in_window / self.window if self.window else 0.0

    @property
    def slowest(self) -> float:
        return max((end - start for start, end, _ in self.samples), default=0.0)

    def ok_between(self, start: float, end: float) -> int:
        return sum(
            1 for _, done, outcome in self.samples if outcome == "ok" and start <= done < end
        )

    def rate_between(self, start: float, end: float) -> float:
        return self.ok_between(start, end) / (end - start) if end > start else 0.0

    def slowest_between(self, start: float, end: float) -> float:
        """The slowest request that was in flight at any time in [start, end)."""
        return max((e - s for s, e, _ in self.samples if s < end and e >= start), default=0.0)

    def latency_text(self) -> str:
        times = sorted(end - start for start, end, outcome in self.samples if outcome == "ok")
        if not times:
            return "–"

        def ms(quantile: float) -> float:
            return times[min(len(times) - 1, int(quantile * len(times)))] * 1000

        return f"{ms(0.5):.0f} / {ms(0.95):.0f} / {times[-1] * 1000:.0f} ms"

    def failure_lines(self) -> list[str]:
        lines = [f"{count} × {what}" for what, count in self.failures.items()]
        if self.ran_out:
            # Not an anomaly, but the rate would be wrong: idle clients make it look lower.
            lines.append(f"{self.ran_out} clients ran out of participants; raise --participants")
        return lines


def _is_trial_lock(sql: str) -> bool:
    """Is this randomization's trial row lock (the statement that starts its serial part)?"""
    return sql.endswith(("FOR UPDATE", "FOR NO KEY UPDATE")) and sql.split(" FROM ", 1)[
        1
    ].startswith('"trial_trial"')


def _run_clients(jobs: list[Callable[[], str | None]], seconds: float, *,
                 side_job: Callable[[float], None] | None = None,
                 kinds: list[str] | None = None) -> dict[str, _Runs]:  # fmt: skip
    """Call each job repeatedly from its own thread until `seconds` have passed, the job
    returns None (nothing left to do) or MAX_REQUESTS calls were made in all. A job returns
    "ok" or a short description of what went wrong. `side_job(t0)` runs beside them (the
    fault run's Redis killer). The outcomes are tallied per kind of job (default "main"),
    with times relative to the common start."""
    kinds = kinds or ["main"] * len(jobs)
    lock = threading.Lock()
    calls = [0]
    start = threading.Barrier(len(jobs) + 1)
    t0 = [0.0]
    samples: list[tuple[str, float, float, str]] = []
    ran_out: list[str] = []

    def loop(kind, job):
        start.wait(timeout=60)
        deadline = t0[0] + seconds
        while time.perf_counter() < deadline:
            with lock:
                if calls[0] >= MAX_REQUESTS:
                    return
                calls[0] += 1
            began = time.perf_counter()
            try:
                outcome = job()
            except (OSError, http.client.HTTPException, psycopg2.Error) as exc:
                outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
            if outcome is None:
                with lock:
                    ran_out.append(kind)
                return
            ended = time.perf_counter()
            with lock:
                samples.append((kind, began - t0[0], ended - t0[0], outcome))

    threads = [
        threading.Thread(target=loop, args=(kind, job), daemon=True)
        for kind, job in zip(kinds, jobs, strict=True)
    ]
    for thread in threads:
        thread.start()
    t0[0], cpu0 = time.perf_counter(), time.process_time()
    start.wait(timeout=60)
    side = None
    if side_job is not None:
        side = threading.Thread(target=side_job, args=(t0[0],), daemon=True)
        side.start()
    for thread in threads:
        thread.join(timeout=seconds + HTTP_TIMEOUT + 30)
    if side is not None:
        side.join(timeout=seconds + 60)
    if any(t.is_alive() for t in threads):
        raise CommandError("a client did not stop (hung request)")
    elapsed, cpu = time.perf_counter() - t0[0], time.process_time() - cpu0
    runs = {kind: _Runs(window=seconds, elapsed=elapsed, client_cpu=cpu) for kind in kinds}
    for kind in ran_out:
        runs[kind].ran_out += 1
    for kind, began, ended, outcome in samples:
        tally = runs[kind]
        tally.samples.append((began, ended, outcome))
        if outcome == "ok":
            tally.ok += 1
            tally.ok_in_window += ended <= seconds
        else:
            tally.failures[outcome] += 1
            tally.server_errors += outcome.startswith("HTTP 5")
    return runs


class _Browser:
    """One user's session over HTTP/1.1 on loopback: cookies, CSRF token, keep-alive where
    the server allows it (gunicorn's sync workers close every connection)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None
        self.token = ""

    def request(self, method: str, path: str, form: dict | None = None):
        headers = {
            "Host": f"127.0.0.1:{self.port}",
            # The production proxy's header: DEBUG off redirects plain http otherwise, and
            # the CSRF check then wants an https Origin of the same host.
            "X-Forwarded-Proto": "https",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://127.0.0.1:{self.port}"
        reused = self.conn is not None
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            content = response.read()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.close()
            if not reused:
                raise
            # The server closed an idle keep-alive connection (gthread's keep-alive timeout)
            # before this request reached it: retry once on a new connection, as browsers
            # do. Safe for the randomize POST, which returns an existing allocation.
            return self.request(method, path, form)
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        if response.will_close:
            self.close()
        return response.status, response.headers, content

    def use(self, port: int) -> None:
        """Talk to the server on `port` from now on (the session cookie stays valid)."""
        self.close()
        self.port = port

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


TOKEN_RE = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def _log_in(port: int, trial: Trial, user: User, first_pk: int) -> _Browser:
    """Log in as a browser does: GET the form, POST it with its token, then read a fresh
    token from a page's form (logging in rotates the CSRF secret)."""
    browser = _Browser(port)
    status, _, page = browser.request("GET", reverse("login"))
    match = TOKEN_RE.search(page)
    if status != 200 or not match:
        raise CommandError(f"login page answered {status}")
    status, headers, _ = browser.request(
        "POST", reverse("login"),
        {"username": user.username, "password": PASSWORD,
         "csrfmiddlewaretoken": match.group(1).decode()},
    )  # fmt: skip
    if status != 302:
        raise CommandError(f"login as {user.username} answered {status}, not 302")
    # The first participant's review page: readable by every client, randomized by none.
    url = reverse("participant_review", kwargs={"code": trial.code, "pk": first_pk})
    status, _, page = browser.request("GET", url)
    match = TOKEN_RE.search(page)
    if status != 200 or not match:
        raise CommandError(f"review page answered {status} after login")
    browser.token = match.group(1).decode()
    return browser


def _log_in_all(port: int, trial: Trial, users: list[User], first: int) -> list[_Browser]:
    sessions: list[_Browser | BaseException] = [None] * len(users)  # type: ignore[list-item]

    def one(i):
        try:
            sessions[i] = _log_in(port, trial, users[i], first)
        except BaseException as exc:  # noqa: BLE001 - raised below
            sessions[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for session in sessions:
        if not isinstance(session, _Browser):
            raise CommandError(f"log in failed: {session}")
    return sessions  # type: ignore[return-value]


def _enroll_phase(trial, sessions, queues, seconds, *, sms_client=None,
                  side_job=None) -> dict[str, _Runs]:  # fmt: skip
    """Each session POSTs the randomize form for its own next participant, in a loop
    (tallied as "main"); with `sms_client`, one more client posts SMS replies ("sms")."""

    def client(browser: _Browser, queue: Iterator[int]):
        def randomize_next() -> str | None:
            pk = next(queue, None)
            if pk is None:
                return None
            url = reverse("participant_review", kwargs={"code": trial.code, "pk": pk})
            status, headers, _ = browser.request(
                "POST", url, {"csrfmiddlewaretoken": browser.token, "confirm": "on"}
            )
            if status == 302 and headers.get("Location", "").endswith(f"/{pk}/allocation/"):
                return "ok"
            return f"HTTP {status} for a randomize POST"

        return randomize_next

    jobs = [client(s, q) for s, q in zip(sessions, queues, strict=True)]
    kinds = ["main"] * len(jobs)
    if sms_client is not None:
        jobs.append(sms_client)
        kinds.append("sms")
    return _run_clients(jobs, seconds, side_job=side_job, kinds=kinds)


# --- The bare SQL loop ----------------------------------------------------------------------

# Four factors of two levels, two arms: the demo's minimization, as plain integers.
BARE_LEVELS = [(factor * 2, factor * 2 + 1) for factor in range(4)]
BARE_ARMS = (1, 2)


class _BareLoop:
    """An allocation's minimal SQL from `clients` psycopg2 connections, no Django."""

    def __init__(self, dsn: str, *, clients: int):
        self.dsn = dsn
        self.clients = clients

    def _execute(self, sql: str) -> None:
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
        conn.close()

    def create(self) -> None:
        p = BARE_PREFIX
        counts = ", ".join(f"({lv}, {arm}, 0)" for pair in BARE_LEVELS for lv in pair
                           for arm in BARE_ARMS)  # fmt: skip
        self._execute(f"""
            DROP TABLE IF EXISTS {p}allocation, {p}participant, {p}count, {p}trial;
            CREATE TABLE {p}trial (id int PRIMARY KEY, allocation_count int NOT NULL);
            CREATE TABLE {p}count (level int, arm int, count int NOT NULL,
                                   PRIMARY KEY (level, arm));
            CREATE TABLE {p}participant (id int PRIMARY KEY, levels int[] NOT NULL,
                                         status text NOT NULL, number text);
            CREATE TABLE {p}allocation (
                id bigserial PRIMARY KEY, trial_id int NOT NULL REFERENCES {p}trial,
                participant_id int NOT NULL UNIQUE REFERENCES {p}participant,
                sequence int NOT NULL UNIQUE, arm int NOT NULL, counts_seen jsonb NOT NULL,
                allocated_at timestamptz NOT NULL);
            INSERT INTO {p}trial VALUES (1, 0);
            INSERT INTO {p}count VALUES {counts};
            INSERT INTO {p}participant
                SELECT i, ARRAY[(i % 2), 2 + (i / 2 % 2), 4 + (i / 4 % 2), 6 + (i / 8 % 2)],
                       'enrolled', NULL
                FROM generate_series(0, {MAX_REQUESTS * 2 - 1}) AS i;
            ANALYZE {p}trial, {p}count, {p}participant;
        """)  # fmt: skip

    def drop(self) -> None:
        p = BARE_PREFIX
        with contextlib.suppress(psycopg2.Error):
            self._execute(f"DROP TABLE IF EXISTS {p}allocation, {p}participant, {p}count, {p}trial")

    def run(self, seconds: float, *, phase: int) -> _Runs:
        connections = [psycopg2.connect(self.dsn) for _ in range(self.clients)]
        try:
            jobs = [self._client(conn, i, phase) for i, conn in enumerate(connections)]
            return _run_clients(jobs, seconds)["main"]
        finally:
            for conn in connections:
                conn.close()

    def _client(self, conn, index: int, phase: int):
        p = BARE_PREFIX
        cursor = conn.cursor()
        # Participant ids of this client and phase: disjoint, within the scratch table.
        ids = iter(range(phase * MAX_REQUESTS + index, (phase + 1) * MAX_REQUESTS, self.clients))

        def allocate() -> str | None:
            pid = next(ids, None)
            if pid is None:
                return None
            try:
                cursor.execute(f"SELECT allocation_count FROM {p}trial WHERE id = 1 FOR UPDATE")
                sequence = cursor.fetchone()[0] + 1
                cursor.execute(f"SELECT levels FROM {p}participant WHERE id = %s", (pid,))
                levels = cursor.fetchone()[0]
                cursor.execute(
                    f"SELECT level, arm, count FROM {p}count WHERE level = ANY(%s)", (levels,)
                )
                seen = cursor.fetchall()
                totals = {arm: 0 for arm in BARE_ARMS}
                for _, arm, count in seen:
                    totals[arm] += count
                arm = min(BARE_ARMS, key=lambda a: (totals[a], a))
                cursor.execute(
                    f"INSERT INTO {p}allocation (trial_id, participant_id, sequence, arm, "
                    "counts_seen, allocated_at) VALUES (1, %s, %s, %s, %s, now())",
                    (pid, sequence, arm, json.dumps(seen)),
                )
                cursor.execute(
                    f"UPDATE {p}count SET count = count + 1 WHERE level = ANY(%s) AND arm = %s",
                    (levels, arm),
                )
                cursor.execute(
                    f"UPDATE {p}trial SET allocation_count = %s WHERE id = 1", (sequence,)
                )
                cursor.execute(
                    f"UPDATE {p}participant SET status = 'active', number = %s WHERE id = %s",
                    (f"B-{sequence:06d}", pid),
                )
                conn.commit()
            except psycopg2.Error:
                conn.rollback()
                raise
            return "ok"

        return allocate

    def anomalies(self) -> list[str]:
        """The bare loop's own sanity: sequence gap-free, counts = recount."""
        p = BARE_PREFIX
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*), count(DISTINCT sequence), coalesce(max(sequence), 0) "
                f"FROM {p}allocation"
            )
            total, distinct, highest = cursor.fetchone()
            cursor.execute(f"""
                SELECT count(*) FROM {p}count c FULL JOIN (
                    SELECT lv AS level, a.arm, count(*) AS n FROM {p}allocation a
                    JOIN {p}participant q ON q.id = a.participant_id, unnest(q.levels) AS lv
                    GROUP BY lv, a.arm) r USING (level, arm)
                WHERE coalesce(c.count, 0) <> coalesce(r.n, 0)
            """)  # fmt: skip
            mismatched = cursor.fetchone()[0]
        conn.close()
        problems = []
        if not total == distinct == highest:
            problems.append(f"sequence: {total} rows, {distinct} distinct, max {highest}")
        if mismatched:
            problems.append(f"{mismatched} count rows differ from the recount")
        return problems


# --- Anomalies ------------------------------------------------------------------------------


def _anomalies(trial: Trial, *, answered: int) -> list[str]:
    """What concurrent randomization must never produce, read back from the database."""
    problems = []
    trial.refresh_from_db()
    sequences = list(
        Allocation.objects.filter(trial=trial)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    if sequences != list(range(1, len(sequences) + 1)):
        problems.append("allocation sequence is not unique and gap-free")
    if trial.allocation_count != len(sequences):
        problems.append(f"trial counter {trial.allocation_count} ≠ {len(sequences)} allocations")
    if answered != len(sequences):
        problems.append(f"{answered} randomizations answered, {len(sequences)} stored")
    participants = list(
        Allocation.objects.filter(trial=trial).values_list("participant_id", flat=True)
    )
    if len(set(participants)) != len(participants):
        problems.append("a participant was allocated twice")
    for site in Site.objects.filter(trial=trial):
        numbers = Participant.objects.filter(site=site, number__isnull=False).values_list(
            "number", flat=True
        )
        suffixes = sorted(int(number.rsplit("-", 1)[1]) for number in numbers)
        if suffixes != list(range(1, site.randomized_count + 1)):
            problems.append(f"site {site.code}: numbers not unique and gap-free")
    stored = services.stored_level_counts(trial)
    if stored != services.recount_level_counts(trial):
        problems.append("FactorLevelCount differs from the recount of allocations")
    active = Participant.objects.filter(trial=trial, status=Participant.Status.ACTIVE).count()
    if active != len(sequences):
        problems.append(f"{active} active participants, {len(sequences)} allocations")
    return problems


# --- gunicorn, Redis, Celery ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ServerSpec:
    worker_class: str
    workers: int
    threads: int
    config: str = ""  # a gunicorn config file (-c), e.g. hooks patching in a candidate fix

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            label = f"{self.workers} gthread workers × {self.threads} threads"
        else:
            label = f"{self.workers} sync workers"
        return label + (f" with {Path(self.config).name}" if self.config else "")

    def args(self) -> list[str]:
        args = ["-k", self.worker_class, "-w", str(self.workers)]
        return args + (["--threads", str(self.threads)] if self.worker_class == "gthread" else [])


def _server_spec(text: str) -> _ServerSpec:
    """sync:W or gthread:WxT, optionally @CONFIG: a gunicorn config file for that server,
    e.g. a post_fork hook that patches in a candidate fix, so that it is measured against
    the stock code in the same run, interleaved."""
    text, _, config = text.partition("@")
    match = re.fullmatch(r"(sync):(\d+)|(gthread):(\d+)x(\d+)", text)
    if not match:
        raise CommandError("--server is sync:W or gthread:WxT[@CONFIG], e.g. sync:4, gthread:2x4")
    if config and not Path(config).is_file():
        raise CommandError(f"no gunicorn config file {config}")
    if match.group(1):
        return _ServerSpec("sync", int(match.group(2)), 1, config)
    return _ServerSpec("gthread", int(match.group(4)), int(match.group(5)), config)


# gunicorn hooks for --profile-dir, written to a config file at run time: each request is
# profiled in the thread that serves it (sync and gthread alike), one file per worker.
PROFILE_HOOKS = """
import cProfile, os, threading
_local = threading.local()
_profiles = []
_lock = threading.Lock()
def pre_request(worker, req):
    profile = getattr(_local, "profile", None)
    if profile is None:
        profile = _local.profile = cProfile.Profile()
        with _lock:
            _profiles.append(profile)
    profile.enable()
def post_request(worker, req, environ, resp):
    _local.profile.disable()
def worker_exit(server, worker):
    for i, profile in enumerate(_profiles):
        profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"],
                                        f"worker-{os.getpid()}-{i}.prof"))
"""


class _Server:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process, self.port, self.log_path = process, port, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def _gunicorn(spec: _ServerSpec, *, broker: str, log_dir: Path,
              profile_dir: str | None = None) -> Iterator[_Server]:  # fmt: skip
    """gunicorn serving trial.wsgi with production settings on a free loopback port."""
    port = bench_sms._free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "DATABASE_URL": bench_sms._database_url(),
        "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": broker,
        "LOG_LEVEL": "WARNING",
        # Persistent connections, as a production server keeps them.
        "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "60"),
        "TWILIO_AUTH_TOKEN": bench_sms.TOKEN,
        "SMS_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("DEBUG", None)
    args = [str(Path(sys.executable).parent / "gunicorn"), "trial.wsgi", *spec.args(),
            "-b", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip
    if profile_dir and spec.config:
        raise CommandError("--profile-dir and a server's @CONFIG both need gunicorn's -c")
    if spec.config:
        args += ["-c", str(Path(spec.config).resolve())]
    if profile_dir:
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
        hooks = log_dir / "gunicorn_profile.conf.py"
        hooks.write_text(PROFILE_HOOKS)
        env["BENCH_PROFILE_DIR"] = str(Path(profile_dir).resolve())
        args += ["-c", str(hooks)]
    log_path = log_dir / f"gunicorn-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = _Server(process, port, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise CommandError("gunicorn exited: " + server.log()[-2000:])
            try:
                status, _, _ = _Browser(port).request("GET", reverse("login"))
                if status != 200:
                    raise CommandError(f"login page answered {status}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError("gunicorn did not answer within 60 s") from None
                time.sleep(0.2)
        _warm_up(port, spec.workers * spec.threads * 2)
        yield server
    finally:
        _stop(process)


def _warm_up(port: int, requests: int) -> None:
    """Concurrent GETs, so every worker has loaded the URLconf and templates (Django does
    that on a worker's first request, seconds on a busy machine) before anything is timed."""

    def get():
        with contextlib.suppress(OSError, http.client.HTTPException):
            _Browser(port).request("GET", reverse("login"))

    threads = [threading.Thread(target=get) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT)


class _Redis:
    """A throwaway redis-server on loopback that can be killed and restarted on its port."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    @classmethod
    def start(cls) -> _Redis:
        redis = cls(bench_sms._free_port())
        redis.restart()
        return redis

    def restart(self) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise CommandError("redis-server is not installed (make system-deps installs it)")
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise CommandError("redis-server did not answer PING within 20 s")

    def kill(self) -> None:
        """Stop it at once, losing whatever it holds (no persistence), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def queue_length(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"LLEN celery\r\n")
            reply = sock.recv(64)
        return int(reply[1:].split(b"\r\n")[0]) if reply.startswith(b":") else -1


def _start_worker(broker_url: str, sms_file: Path, log_path: Path) -> subprocess.Popen:
    """A `celery worker` on the broker and this database; SMS to the file gateway."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_URL": bench_sms._database_url(),
        "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
        "SMS_BACKEND": "outcomes.sms.gateways.FileBackend",
        "SMS_FILE_PATH": str(sms_file),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DEBUG", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "trial", "worker",
             "--pool=solo", "--loglevel=info", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--hostname", f"bench-enroll-{os.getpid()}@%h"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise CommandError("celery worker did not start: " + log_path.read_text()[-2000:])
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started in its own session (with its children), keeping its log."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- The fault run's SMS side ---------------------------------------------------------------


def _sms_trial(n: int) -> tuple[Trial, list[str]]:
    """bench_sms's trial of n randomized participants, with this week's question open (sent
    through a no-op gateway, so the file gateway later holds only the run's messages)."""
    trial = bench_sms.Command()._build(n, "F")
    bench_sms._analyze()
    # One log line per eager task would drown the report.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    with override_settings(SMS_BACKEND=bench_sms.NULL_BACKEND), bench_sms._eager():
        tracking.sms_weekly_send(trial=trial, now=timezone.now())
    phones = list(
        SmsWeek.objects.filter(trial=trial, current_question__isnull=False)
        .order_by("pk")
        .values_list("participant__phone", flat=True)
    )
    if not phones:
        raise CommandError("no open SMS weeks to reply to")
    return trial, phones


class _SmsReplies:
    """One gateway client: signed replies to the open questions (first answers, then second
    answers, then extras), each with a message id of its own."""

    def __init__(self, port: int, phones: list[str]):
        from twilio.request_validator import RequestValidator

        self.port = port
        self.url = f"http://127.0.0.1:{port}/sms/inbound/"
        self.validator = RequestValidator(bench_sms.TOKEN)
        run = f"{time.time_ns() % 10**12:012d}"
        self.params = iter(
            {"MessageSid": f"SMenroll{run}{n:08d}", "AccountSid": "ACbench", "From": phone,
             "To": "+4570000000", "Body": body}
            for n, (body, phone) in enumerate((b, p) for b in ("3", "0", "Tak") for p in phones)
        )  # fmt: skip

    def client(self) -> str | None:
        params = next(self.params, None)
        if params is None:
            return None
        signature = self.validator.compute_signature(self.url, params)
        # A connection per request, as the gateway makes them.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            conn.request("POST", "/sms/inbound/", urllib.parse.urlencode(params),
                         bench_sms._headers(signature))  # fmt: skip
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        return "ok" if response.status == 200 else f"HTTP {response.status} for an SMS reply"


@dataclasses.dataclass
class _SendCheck:
    total: int = 0
    lost: int = 0
    swept: int = 0
    sent: int = 0
    queued: int = 0
    per_message: str = "–"
    problems: list[str] = dataclasses.field(default_factory=list)


def _drain_and_sweep(trial: Trial, broker_url: str, worker, sms_file: Path) -> _SendCheck:
    """Let the worker send what reached it, sweep up what did not, then compare the gateway
    file with the outbox: every message sent exactly once, none left behind."""
    check = _SendCheck()
    messages = OutboundMessage.objects.filter(trial=trial).exclude(
        gateway_message_id__startswith="null-"
    )
    queued = messages.filter(status=OutboundMessage.Status.QUEUED)
    _settle(lambda: queued.count(), worker, broker_url)
    check.lost = queued.count()
    with _broker(broker_url), mock.patch("outcomes.sms.tasks.STALE_AFTER", dt.timedelta(0)):
        from outcomes.sms.tasks import sms_send_stale

        # This trial's: earlier benchmarks in the same database (bench_sms, in `make bench`)
        # leave thousands of queued messages with no worker, which would flood this one.
        check.swept = sms_send_stale(trial_id=trial.pk)
    deadline = time.monotonic() + 60
    while queued.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    check.total = messages.count()
    check.sent = messages.filter(status=OutboundMessage.Status.SENT).count()
    check.queued = queued.count()
    lines = sms_file.read_text().splitlines() if sms_file.exists() else []
    sends = collections.Counter(json.loads(line)["id"] for line in lines)
    by_text = collections.Counter((row["to"], row["body"]) for row in map(json.loads, lines))
    sent_ids = list(messages.filter(status="sent").values_list("gateway_message_id", flat=True))
    outbox = collections.Counter(messages.filter(status="sent").values_list("to", "body"))
    per_message = [sends.get(gid, 0) for gid in sent_ids]
    if per_message:
        check.per_message = f"{min(per_message)}–{max(per_message)}"
    if check.queued:
        check.problems.append(f"{check.queued} messages still queued (lost)")
    if any(n != 1 for n in per_message) or len(lines) != len(sent_ids):
        check.problems.append(f"{len(lines)} gateway sends for {len(sent_ids)} sent messages")
    if by_text != outbox:
        check.problems.append("the gateway's messages differ from the outbox's")
    failed = messages.exclude(status__in=["sent", "queued"]).count()
    if failed:
        check.problems.append(f"{failed} messages failed or were cancelled")
    return check


def _settle(count: Callable[[], int], worker, broker_url: str, quiet: float = 3.0) -> None:
    """Wait (at most 60 s) until the broker's queue is empty and `count` stops changing."""
    redis = _Redis(int(broker_url.rsplit(":", 1)[1].split("/")[0]))
    deadline = time.monotonic() + 60
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise CommandError("the celery worker exited")
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif redis.queue_length() == 0 and time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


@contextlib.contextmanager
def _broker(url: str) -> Iterator[None]:
    """This process's Celery app on the broker at `url` (not eager), and back after."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}

    def drop_connections():
        # The app caches its pools for the broker URL it first used.
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    drop_connections()
    app.conf.update(broker_url=url, task_always_eager=False)
    try:
        yield
    finally:
        drop_connections()
        app.conf.update(**saved)


# --- Small helpers --------------------------------------------------------------------------


def _dsn() -> str:
    db = connection.settings_dict
    parts = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"],
             "host": db["HOST"] or "localhost", "port": db["PORT"] or 5432}  # fmt: skip
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def _pg_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0].split()[0]


def _profile_report(profile_dir: str, top: int = 25) -> str:
    files = sorted(str(p) for p in Path(profile_dir).glob("worker-*.prof"))
    if not files:
        return "no profiles written (did the workers exit cleanly?)\n"
    stats = pstats.Stats(*files, stream=(buffer := _Buffer()))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return "".join(buffer.parts)


class _Buffer:
    def __init__(self):
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
