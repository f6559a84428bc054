"""The fault run (--fault): enrollment and inbound SMS through a Redis outage, with a
Celery worker and the outbox sweeper."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

from django.core.management.base import CommandError
from django.test.utils import override_settings
from django.utils import timezone
from kombu import pools

from outcomes.sms import tracking
from outcomes.sms.models import OutboundMessage, SmsWeek
from trial.celery import app
from trial.devtools.bench_enroll import HTTP_TIMEOUT, HUNG_SECONDS, REPO
from trial.devtools.bench_enroll.load import enroll_phase
from trial.devtools.bench_enroll.server import gunicorn_server, stop_process
from trial.devtools.management.commands import bench_sms
from trial.models import Trial

# --- The fault run --------------------------------------------------------------------------


# long: one benchmark scenario in the order it runs (start, break Redis, measure) and
# its report, whose rows name the figures measured just above them.
def fault_run(trial, sessions, queues, spec, redis, log_dir, *, seconds, outage,
           sms_participants) -> tuple[str, int, list[str]]:  # fmt: skip
    """Enrollment and inbound SMS while Redis goes away and comes back (issue 6 §3).
    Returns the report, the number of randomizations made, and the problems seen."""
    sms_trial, phones = _sms_trial(sms_participants)
    sms_file = log_dir / "sms.jsonl"
    worker = _start_worker(redis.url, sms_file, log_dir / "worker.log")
    try:
        with gunicorn_server(spec, broker=redis.url, log_dir=log_dir) as web:
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

            runs = enroll_phase(
                trial, sessions, queues, seconds,
                sms_client=replies.client, side_job=break_redis,
            )  # fmt: skip
            gunicorn_log = web.log()
        run, sms_run = runs["main"], runs["sms"]
        if "up" not in marks:
            raise CommandError("fault run: redis-server did not come back")
        sent_check = _drain_and_sweep(sms_trial, redis.url, worker, sms_file)
    finally:
        stop_process(worker)
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
        problems.append(f"HTTP 5xx: {run.server_errors} enrollment, {sms_run.server_errors} sms")
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


# --- Redis and the Celery worker ------------------------------------------------------------


class Redis:
    """A throwaway redis-server on loopback that can be killed and restarted on its port."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    @classmethod
    def start(cls) -> Redis:
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
        "SMS_BACKEND": "outcomes.sms.FileBackend",
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
            stop_process(process)
            raise CommandError("celery worker did not start: " + log_path.read_text()[-2000:])
        time.sleep(0.2)
    return process


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
    redis = Redis(int(broker_url.rsplit(":", 1)[1].split("/")[0]))
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
