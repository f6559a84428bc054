"""Benchmark: the weekly SMS job at 1,000 and 10,000 participants, and inbound replies per
second through the real webhook.

1. Weekly job. Builds two synthetic trials by bulk insert (participants randomized over the
   past 62 weeks, each with a number of their own), then runs `sms_weekly_send` on each:
   Celery eager with a no-op gateway (NullBackend below), so what is timed is the whole path
   of a week's first question: opening the weeks, storing the messages, and each message's
   send task with its row lock and status update. Peak Python memory is measured with
   tracemalloc in a second run on fresh trials of the same sizes (tracemalloc slows Python
   down, so it never runs during the timed runs); bounded memory means the 10,000 peak is
   about the 1,000 one, since the job works in batches of tracking.weekly.BATCH_SIZE.

2. Webhook (--webhook). Starts gunicorn (`trial.wsgi`, 2 sync workers, DEBUG off, on a
   free loopback port) against the same database, then POSTs replies signed as Twilio signs
   them to /sms/inbound/ from a few client threads, each reply to a different participant's
   open question, so every request stores an answer and queues the next question. Baseline,
   in the same run and interleaved: the same POST with a bad signature (the 403 path:
   middleware and signature check, no database work). Only 127.0.0.1 is contacted.

    make bench     # includes this, on a throwaway PostgreSQL cluster
"""

from __future__ import annotations

import datetime as dt
import http.client
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.parse
from pathlib import Path
from unittest import mock

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone

from outcomes.sms import gateways as sms
from outcomes.sms import sms_rules, tracking
from outcomes.sms.models import OutboundMessage, SmsSchedule, SmsWeek
from outcomes.sms.tasks import sms_send
from participants.models import Allocation, Participant, ScreeningRecord
from trial.celery import app
from trial.devtools.demo import build_modic_trial
from trial.models import Trial

GOAL_REQUESTS_PER_SECOND = 200
TOKEN = "bench-only-twilio-token"
REPO = Path(__file__).resolve().parents[4]


class NullBackend(sms.BaseBackend):
    """A gateway that accepts everything at once (benchmarks only)."""

    def send(self, *, to: str, body: str) -> str:
        return f"null-{time.monotonic_ns()}"


NULL_BACKEND = f"{__name__}.NullBackend"


class Command(BaseCommand):
    help = "Time the weekly SMS job at two sizes and, with --webhook, inbound replies per second."

    def add_arguments(self, parser):
        parser.add_argument("--sizes", type=int, nargs=2, default=[1_000, 10_000])
        parser.add_argument(
            "--webhook", action="store_true", help="also measure the inbound webhook (gunicorn)"
        )
        parser.add_argument(
            "--seconds", type=float, default=20.0, help="webhook measuring time in all"
        )
        parser.add_argument("--clients", type=int, default=8, help="webhook client threads")
        parser.add_argument("--write", metavar="PATH", help="append the results to PATH")

    def handle(self, *args, sizes, webhook: bool, seconds: float, clients: int, write, **options):
        small, large = sizes
        if not 0 < small < large:
            raise CommandError("--sizes needs two sizes, the smaller first")
        lines = [
            f"| weekly job | {small:,} participants | {large:,} participants |",
            "|---|---|---|",
        ]
        now = timezone.now()
        timed: dict[int, tuple[float, int]] = {}
        peaks: dict[int, int] = {}
        queueing: dict[int, float] = {}
        trials: dict[int, Trial] = {}
        # One log line per eager task would be most of the time measured.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        with override_settings(SMS_BACKEND=NULL_BACKEND), _eager():
            for size in sizes:
                trials[size] = self._build(size, "T")
            _analyze()
            for size in sizes:
                t0 = time.perf_counter()
                result = tracking.sms_weekly_send(trial=trials[size], now=now)
                timed[size] = (time.perf_counter() - t0, result.opened)
                self._check_sent(trials[size], size)
                self.stderr.write(f"  weekly job, {size:,}: {timed[size][0]:.1f} s")
            # The job alone, as it runs beside a broker: weeks opened and messages stored,
            # their send tasks not run (workers elsewhere send them).
            for size in sizes:
                trial = self._build(size, "Q")
                _analyze()
                with mock.patch.object(sms_send, "delay", lambda message_id: None):
                    t0 = time.perf_counter()
                    tracking.sms_weekly_send(trial=trial, now=now)
                    queueing[size] = time.perf_counter() - t0
            for size in sizes:
                trial = self._build(size, "M")
                _analyze()
                tracemalloc.start()
                tracemalloc.reset_peak()
                tracking.sms_weekly_send(trial=trial, now=now)
                peaks[size] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                self._check_sent(trial, size)
        lines.append("| questions sent | " + " | ".join(f"{timed[s][1]:,}" for s in sizes) + " |")
        lines.append(
            "| time, questions sent (eager, no-op gateway) | "
            + " | ".join(f"{timed[s][0]:.2f} s" for s in sizes)
            + " |"
        )
        lines.append(
            "| time, job only (sends not run) | "
            + " | ".join(f"{queueing[s]:.2f} s" for s in sizes)
            + " |"
        )
        lines.append(
            "| messages per second, sent | "
            + " | ".join(f"{timed[s][1] / timed[s][0]:,.0f}" for s in sizes)
            + " |"
        )
        lines.append(
            "| peak Python memory (tracemalloc) | "
            + " | ".join(f"{peaks[s] / 2**20:.1f} MiB" for s in sizes)
            + " |"
        )
        growth = peaks[large] / peaks[small]
        lines.append(f"| peak memory ratio, {large:,} / {small:,} | {growth:.2f}× | |")
        text = "\n".join(lines) + "\n"
        self.stdout.write(text)
        bounded = "bounded" if growth < 2 else "GROWS with the trial"
        self.stdout.write(
            f"weekly job memory: {bounded} ({growth:.2f}× for {large / small:.0f}× "
            f"the participants; batches of {tracking.weekly.BATCH_SIZE})"
        )
        if webhook:
            web_text = self._webhook(trials[large], seconds=seconds, clients=clients)
            text += "\n" + web_text
        if write:
            stamp = timezone.now().strftime("%Y-%m-%d %H:%M %Z")
            with Path(write).open("a", encoding="utf-8") as fh:
                fh.write(f"\n### Weekly SMS ({stamp}, {connection.vendor})\n\n{text}")

    def _check_sent(self, trial: Trial, size: int) -> None:
        sent = OutboundMessage.objects.filter(trial=trial, status="sent").count()
        if sent != size:
            raise CommandError(f"{sent} of {size} questions sent in {trial.code}")

    @transaction.atomic
    def _build(self, n: int, prefix: str) -> Trial:
        """A trial of n active participants randomized over the past 62 weeks, each due."""
        code = f"{prefix}{n % 100000}{int(time.time() * 1000) % 100000}"[:20]
        trial = build_modic_trial(code=code)
        Trial.objects.filter(pk=trial.pk).update(target_sample_size=n, allocation_count=n)
        schedule = SmsSchedule.objects.get(trial=trial)
        send_date = sms_rules.last_send_date(
            timezone.now(), trial.zone, schedule.weekday, schedule.send_time
        )
        user, _ = User.objects.get_or_create(username="bench-sms")
        rng = random.Random(n)
        sites = list(trial.sites.all())
        arms = list(trial.arms.order_by("pk"))
        document = trial.consent_documents.get()
        base = 10_000_000 + (Trial.objects.count() % 8) * 1_000_000  # numbers of their own
        batch = 5_000
        for start in range(0, n, batch):
            size = min(batch, n - start)
            days_ago = [rng.randint(1, 7 * schedule.weeks) for _ in range(size)]
            screenings = ScreeningRecord.objects.bulk_create(
                ScreeningRecord(
                    trial=trial, site=sites[(start + i) % len(sites)], initials="SX",
                    screened_on=send_date - dt.timedelta(days=days_ago[i] + 1), answers={},
                    outcome=ScreeningRecord.Outcome.ENROLLED, screened_by=user,
                )
                for i in range(size)
            )  # fmt: skip
            people = Participant.objects.bulk_create(
                Participant(
                    trial=trial, site=s.site, screening=s, status=Participant.Status.ACTIVE,
                    number=f"{trial.code}-{s.site.code}-{start + i + 1:06d}",
                    consent_date=s.screened_on, consent_document=document,
                    full_name=f"Bench Person {start + i}",
                    phone=f"+453{(base + start + i) % 10_000_000:07d}",
                    randomized_on=send_date - dt.timedelta(days=days_ago[i]),
                    randomized_at=timezone.now() - dt.timedelta(days=days_ago[i]),
                    baseline_completed_at=timezone.now(), enrolled_by=user,
                )
                for i, s in enumerate(screenings)
            )  # fmt: skip
            # Randomized participants have an allocation (the SMS totals are kept per arm).
            # Simple random arms: the webhook's work does not depend on how they were chosen.
            Allocation.objects.bulk_create(
                Allocation(
                    trial=trial, participant=p, sequence=start + i + 1,
                    arm=arms[rng.randrange(len(arms))], method="random", factor_levels={},
                    counts_seen={}, scores={}, probabilities={}, draw=0.5, settings_used={},
                    algorithm_version="bench-sms", allocated_by=user,
                    allocated_at=p.randomized_at,
                )
                for i, p in enumerate(people)
            )  # fmt: skip
        return trial

    # --- The webhook ----------------------------------------------------------------------

    def _webhook(self, trial: Trial, *, seconds: float, clients: int) -> str:
        phones = list(
            SmsWeek.objects.filter(trial=trial, current_question__isnull=False)
            .order_by("pk")
            .values_list("participant__phone", flat=True)
        )
        if not phones:
            raise CommandError("no open weeks to answer")
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        # As deployed: the web process queues the reply for the workers through Redis and
        # does not call the gateway itself (no worker runs here; the weekly-job rows above
        # time the sending). Without a broker the reply would be sent inside the request.
        redis = _start_redis()
        try:
            server = _start_gunicorn(port, base_url, broker=redis.url)
        except BaseException:
            _stop(redis)
            raise
        try:
            phases = 4  # baseline, replies, baseline, replies: interleaved halves
            counts = {"baseline": [0, 0.0], "replies": [0, 0.0]}
            replies = iter(_reply_params(phones))
            lock = threading.Lock()
            for phase in range(phases):
                kind = "baseline" if phase % 2 == 0 else "replies"
                n, elapsed, errors = _load(
                    base_url, kind, replies, lock, clients=clients, seconds=seconds / phases
                )
                if errors:
                    raise CommandError(f"{kind}: {errors[0]}")
                counts[kind][0] += n
                counts[kind][1] += elapsed
        finally:
            _stop(server)
            _stop(redis)
        baseline = counts["baseline"][0] / counts["baseline"][1]
        real = counts["replies"][0] / counts["replies"][1]
        verdict = "meets" if real >= GOAL_REQUESTS_PER_SECOND else "MISSES"
        lines = [
            "| inbound webhook (gunicorn, 2 sync workers) | requests | requests per second |",
            "|---|---|---|",
            f"| signed replies, each stored as an answer | {counts['replies'][0]:,} | {real:.0f} |",
            f"| baseline: bad signature, 403 | {counts['baseline'][0]:,} | {baseline:.0f} |",
            f"| ratio, replies / baseline | | {real / baseline:.2f}× |",
        ]
        text = "\n".join(lines) + "\n"
        self.stdout.write(text)
        self.stdout.write(
            f"webhook: {real:.0f} replies/s ({verdict} ≥ {GOAL_REQUESTS_PER_SECOND}/s) with "
            f"{clients} client threads"
        )
        return text


class _eager:
    """Celery eager for the timed run, as a deployment without a broker runs it."""

    def __enter__(self):
        self.saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
        app.conf.update(task_always_eager=True, task_eager_propagates=True)

    def __exit__(self, *exc):
        app.conf.update(task_always_eager=self.saved[0], task_eager_propagates=self.saved[1])


def _analyze() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would after a bulk load


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """A DATABASE_URL for the database this process uses (the server must use the same)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{os.path.abspath(str(db['NAME']))}"
    auth = urllib.parse.quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + urllib.parse.quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_redis() -> subprocess.Popen:
    """A throwaway redis-server on a free loopback port, without persistence."""
    server = shutil.which("redis-server")
    if not server:
        raise CommandError("redis-server is not installed (make system-deps installs it)")
    port = _free_port()
    with tempfile.NamedTemporaryFile(prefix="bench-redis-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    process.log_path = log.name
    process.url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process
        except OSError:
            time.sleep(0.1)
    _stop(process)
    raise CommandError("redis-server did not answer PING within 20 s")


def _start_gunicorn(port: int, base_url: str, *, broker: str) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "SMS_WEBHOOK_BASE_URL": base_url,
        "SMS_BACKEND": NULL_BACKEND,
        "LOG_LEVEL": "WARNING",
        # Persistent database connections, as a production server would keep them; a new
        # connection per request costs more than the reply itself.
        "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "60"),
    }
    env.pop("DEBUG", None)  # production settings
    env["CELERY_BROKER_URL"] = broker
    # The server's log goes to a file: a pipe nobody reads would fill up and block it.
    with tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [str(gunicorn), "trial.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level",
             "warning"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    process.log_path = log.name
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_text = Path(process.log_path).read_text(errors="replace")
            raise CommandError("gunicorn exited: " + log_text[-2000:])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/sms/inbound/", body="", headers=_headers(""))
            status = conn.getresponse().status
            conn.close()
            if status == 403:  # up, and refusing an unsigned request
                return process
            raise CommandError(f"/sms/inbound/ answered {status} to an unsigned request")
        except OSError:
            time.sleep(0.2)
    _stop(process)
    raise CommandError("gunicorn did not answer within 60 s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the master and its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    Path(process.log_path).unlink(missing_ok=True)


def _headers(signature: str) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
        # The production proxy's header: DEBUG off redirects plain http otherwise.
        "X-Forwarded-Proto": "https",
    }


def _reply_params(phones: list[str]):
    """Replies to the open questions: every participant's first answer, then their second,
    then extras (a week already answered)."""
    n = 0
    for body in ("3", "0", "Tak"):
        for phone in phones:
            n += 1
            yield {
                "MessageSid": f"SMbench{n:026d}",
                "AccountSid": "ACbench",
                "From": phone,
                "To": "+4570000000",
                "Body": body,
            }


# The same form as a reply; its signature is wrong, so the server reads nothing.
BASELINE_PARAMS = {
    "MessageSid": "SMbench-baseline",
    "AccountSid": "ACbench",
    "From": "+4530000000",
    "To": "+4570000000",
    "Body": "3",
}


def _load(base_url, kind, replies, lock, *, clients: int, seconds: float):
    """POST from `clients` threads for `seconds`; (requests completed, elapsed, errors)."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    url = base_url + "/sms/inbound/"
    port = int(base_url.rsplit(":", 1)[1])
    done = [0]
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < stop_at and not errors:
            if kind == "baseline":
                params, signature, expected = BASELINE_PARAMS, "bad-signature", 403
            else:
                with lock:
                    params = next(replies, None)
                if params is None:
                    return
                signature, expected = validator.compute_signature(url, params), 200
            # A connection per request, as the gateway makes them (sync workers close anyway).
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", "/sms/inbound/", urllib.parse.urlencode(params),
                             _headers(signature))  # fmt: skip
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            finally:
                conn.close()
            if response.status != expected:
                errors.append(f"HTTP {response.status}, expected {expected}")
                return
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0], time.perf_counter() - t0, errors
