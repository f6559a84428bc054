"""The daily jobs through a real Redis broker and a real Celery worker process.

A throwaway redis-server on a free loopback port and a `celery worker` subprocess pointed at
it and at the test database; the test process queues tasks on Redis as production does.
The tests are transactional (committed data), so the worker's own connection sees what the
test created. Mail goes to the file backend and SMS to outcomes.sms.gateways.FileBackend in a
temporary directory, where the test reads them.

redis-server is Debian's package, installed by `make system-deps` (part of `make test`); if
it is missing these tests fail rather than skip.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection
from kombu import pools

from outcomes.sms.models import OutboundMessage, SmsWeek
from outcomes.sms.tasks import send_visit_reminders, sms_send, sms_weekly
from participants import services
from participants.models import DigestLog, Participant, Visit
from participants.tasks import send_coordinator_digest
from tests import factories
from tests.pgcluster import free_port
from trial.celery import app
from trial.models import Trial

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).parent / "celery"  # the virtualenv's, beside its python
TIMEOUT = 60  # seconds, for the server, the worker and each task


# --- Redis and the worker -------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, without persistence."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(
            "redis-server is not installed: `make system-deps` (run by `make test`) installs "
            "Debian's redis-server package.",
            pytrace=False,
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    log_path = workdir / "redis.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"redis-server did not answer PING on port {port}:\n"
                        + log_path.read_text(errors="replace")[-3000:],
                        pytrace=False,
                    )
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def database_url_for_worker() -> str:
    """A DATABASE_URL for the test database this process is using."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(settings["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            pytest.fail(f"the SQLite test database is in memory ({name}); a worker needs a file")
        return f"sqlite:///{os.path.abspath(name)}"
    if connection.vendor == "postgresql":
        auth = quote(settings["USER"] or "", safe="")
        if settings["PASSWORD"]:
            auth += ":" + quote(settings["PASSWORD"], safe="")
        host = settings["HOST"] or "localhost"
        return f"postgres://{auth}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}"
    pytest.fail(f"no DATABASE_URL for a {connection.vendor} test database")


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path
    mail_dir: Path
    sms_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def mails(self) -> list[str]:
        return [path.read_text(errors="replace") for path in sorted(self.mail_dir.iterdir())]

    def sms(self) -> list[dict]:
        if not self.sms_path.exists():
            return []
        return [json.loads(line) for line in self.sms_path.read_text().splitlines()]

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited while waiting for {what}:\n{self.log()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {TIMEOUT} s; worker log:\n{self.log()[-5000:]}")
            time.sleep(0.2)

    def wait_for_task(self, task_id: str) -> str:
        """Wait until the worker has finished the task; return its log line."""
        marker = f"[{task_id}] succeeded"
        self.wait_for(lambda: marker in self.log(), f"task {task_id} finished")
        return next(line for line in self.log().splitlines() if marker in line)


# `celery worker` with outcomes.sms.tracking.weekly.BATCH_SIZE set first (argv[1]): a small
# batch gives a weekly run of a few hundred participants several transactions to be killed
# between.
WORKER_WITH_BATCH_SIZE = (
    "import sys, django; django.setup(); import outcomes.sms.tracking.weekly as weekly; "
    "weekly.BATCH_SIZE = int(sys.argv.pop(1)); from celery.__main__ import main; main()"
)


def start_worker(broker_url: str, workdir: Path, *, batch_size: int | None = None) -> Worker:
    """A `celery worker` subprocess on the broker and the test database, ready."""
    mail_dir = workdir / "mail"
    mail_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_URL": database_url_for_worker(),
        "SECRET_KEY": "celery-redis-test-only-not-secret",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "SMS_BACKEND": "outcomes.sms.gateways.FileBackend",
        "SMS_FILE_PATH": str(workdir / "sms.jsonl"),
        "PYTHONUNBUFFERED": "1",
    }
    program = (
        [sys.executable, "-c", WORKER_WITH_BATCH_SIZE, str(batch_size)]
        if batch_size
        else [str(CELERY)]
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            program
            + ["-A", "trial", "worker", "--pool=solo", "--concurrency=1",
               "--loglevel=info", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "--hostname", f"test-worker-{os.getpid()}-{time.monotonic_ns()}@%h"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Worker(process, log_path, mail_dir, workdir / "sms.jsonl")
    ready_before = running.log().count(" ready.") if log_path.exists() else 0
    try:
        running.wait_for(lambda: running.log().count(" ready.") > ready_before, "worker ready")
    except BaseException:
        stop(process)
        raise
    return running


@pytest.fixture(scope="module")
def worker(redis_url, django_db_setup, tmp_path_factory) -> Iterator[Worker]:
    """A `celery worker` subprocess on the Redis broker and the test database."""
    running = start_worker(redis_url, tmp_path_factory.mktemp("worker"))
    try:
        yield running
    finally:
        stop(running.process)


def drop_broker_connections() -> None:
    # The app caches its connection and producer pools on first use, for the broker URL of
    # that moment (eager calls in other tests already made them); drop them so the next
    # call connects to the broker configured now.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def broker(url: str) -> Iterator[None]:
    """Switch this process's Celery app from eager to the broker at `url`, and back after."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    drop_broker_connections()
    app.conf.update(broker_url=url, task_always_eager=False)
    try:
        yield
    finally:
        drop_broker_connections()
        app.conf.update(**saved)


@pytest.fixture
def on_broker(redis_url, worker) -> Iterator[Worker]:
    """Switch this process's Celery app from eager to the Redis broker, and back after."""
    with broker(redis_url):
        yield worker


# --- Data -----------------------------------------------------------------------------------


def randomized(trial, site, by, seed=1) -> Participant:
    participant = factories.enrolled_participant(trial, site, by)
    services.participant_randomize(participant=participant, by=by, rng=random.Random(seed))
    return Participant.objects.get(pk=participant.pk)


# --- Tests ----------------------------------------------------------------------------------


def test_a_digest_queued_on_redis_is_sent_by_the_worker_once(
    on_broker, modic, site1, clinician, coordinator
):
    worker = on_broker
    coordinator.email = "coord@example.org"
    coordinator.save(update_fields=["email"])
    participant = randomized(modic, site1, clinician)
    day = services.trial_today(modic)
    Visit.objects.filter(participant=participant, definition__code="w10").update(
        window_start=day - dt.timedelta(days=1), target_date=day, window_end=day
    )
    mails_before = len(worker.mails())

    first = send_coordinator_digest.delay(coordinator.pk, modic.pk, day.isoformat())

    worker.wait_for(
        lambda: DigestLog.objects.filter(user=coordinator, trial=modic, day=day).exists(),
        "DigestLog row",
    )
    assert "'sent'" in worker.wait_for_task(first.id)
    mails = worker.mails()[mails_before:]
    assert len(mails) == 1
    assert f"Subject: MOD follow-up {day:%d %b %Y}: 1 due, 0 overdue" in mails[0]
    assert "To: coord@example.org" in mails[0]
    assert participant.number in mails[0]

    second = send_coordinator_digest.delay(coordinator.pk, modic.pk, day.isoformat())

    assert "'skipped: already sent'" in worker.wait_for_task(second.id)
    assert len(worker.mails()) == mails_before + 1
    assert DigestLog.objects.count() == 1


def test_visit_reminders_run_by_the_worker_send_each_sms_once(on_broker, modic, site1, clinician):
    worker = on_broker
    Trial.objects.filter(pk=modic.pk).update(visit_reminder_days=3)
    participant = randomized(modic, site1, clinician)
    opens = Visit.objects.get(participant=participant, definition__code="w10").window_start
    remind_on = (opens - dt.timedelta(days=3)).isoformat()
    sms_before = len(worker.sms())

    # The worker runs the fan-out; the SMS task it queues on commit goes through Redis too.
    first = send_visit_reminders.delay(remind_on)

    worker.wait_for(
        lambda: OutboundMessage.objects.filter(status=OutboundMessage.Status.SENT).exists(),
        "the reminder SMS sent",
    )
    assert "'queued': 1" in worker.wait_for_task(first.id)
    (message,) = worker.sms()[sms_before:]
    assert message["to"] == participant.phone
    assert "10 weeks visit" in message["body"]

    second = send_visit_reminders.delay(remind_on)

    assert "'queued': 0" in worker.wait_for_task(second.id)
    assert len(worker.sms()) == sms_before + 1
    assert OutboundMessage.objects.count() == 1


# --- Weekly SMS through the worker ------------------------------------------------------------


def sms_trial(n: int) -> Trial:
    """A trial of n participants all due this week, built by bulk insert (bench_sms's)."""
    from trial.devtools.management.commands.bench_sms import Command as BenchSms

    return BenchSms()._build(n, "R")


def test_the_weekly_job_run_by_the_worker_sends_each_due_participant_one_question(on_broker):
    worker = on_broker
    trial = sms_trial(6)
    phones = sorted(Participant.objects.filter(trial=trial).values_list("phone", flat=True))
    sms_before = len(worker.sms())

    first = sms_weekly.delay()

    assert f"'{trial.code}': 6" in worker.wait_for_task(first.id)
    worker.wait_for(
        lambda: OutboundMessage.objects.filter(trial=trial, status="sent").count() == 6,
        "six questions sent",
    )
    assert sorted(m["to"] for m in worker.sms()[sms_before:]) == phones

    again = sms_weekly.delay()

    assert f"'{trial.code}': 0" in worker.wait_for_task(again.id)
    assert len(worker.sms()) == sms_before + 6
    assert OutboundMessage.objects.filter(trial=trial).count() == 6


def test_a_worker_killed_during_the_weekly_job_leaves_every_participant_one_question(
    redis_url, django_db_setup, tmp_path
):
    """SIGKILL the worker as soon as the first batch of weeks is committed (or, if the job
    was faster than that, while the sends are under way), start another, run the job again:
    each participant has exactly one week and one question, all sent."""
    # A Redis database of its own: the module's worker must not take these tasks.
    url = redis_url.rsplit("/", 1)[0] + "/1"
    batch, n = 50, 300
    trial = sms_trial(n)
    weeks = SmsWeek.objects.filter(trial=trial)
    questions = OutboundMessage.objects.filter(trial=trial, kind="sms_question")
    with broker(url):
        first = start_worker(url, tmp_path / "first", batch_size=batch)
        try:
            sms_weekly.delay()
            deadline = time.monotonic() + TIMEOUT
            while not weeks.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait()
        finally:
            stop(first.process)
        opened_when_killed = weeks.count()
        assert opened_when_killed > 0, first.log()[-3000:]
        print(f"killed with {opened_when_killed} of {n} weeks open")  # shown with -s

        second = start_worker(url, tmp_path / "second", batch_size=batch)
        try:
            rerun = sms_weekly.delay()
            assert f"'{trial.code}': {n - opened_when_killed}" in second.wait_for_task(rerun.id)
            # The send the first worker was in the middle of stays unacknowledged in Redis
            # until its visibility timeout; once the queue is drained, send what is still
            # queued as the stale sweeper would (a duplicate task is a no-op).
            queue = redis.Redis.from_url(url)
            second.wait_for(lambda: queue.llen("celery") == 0, "the queue drained")
            for message_id in questions.filter(status="queued").values_list("pk", flat=True):
                sms_send.delay(message_id)
            second.wait_for(lambda: questions.filter(status="sent").count() == n, "all sent")
        finally:
            stop(second.process)

    assert weeks.count() == n
    assert questions.count() == n
    assert set(weeks.values_list("participant_id", flat=True)) == set(
        Participant.objects.filter(trial=trial).values_list("pk", flat=True)
    )
    sent = [m["to"] for m in first.sms() + second.sms()]
    phones = set(Participant.objects.filter(trial=trial).values_list("phone", flat=True))
    assert set(sent) == phones
    # A message the gateway took just before the kill, whose "sent" never committed, goes
    # again: that one at most (the window between the gateway call and the commit).
    assert len(sent) - len(phones) <= 1
