"""The daily jobs through a real Redis broker and a real Celery worker process.

A throwaway redis-server on a free loopback port and a `celery worker` subprocess pointed at
it and at the test database; the test process queues tasks on Redis as production does.
The tests are transactional (committed data), so the worker's own connection sees what the
test created. Mail goes to the file backend and SMS to outcomes.sms.FileBackend in a
temporary directory, where the test reads them.

redis-server is Debian's package, installed by `make system-deps` (part of `make test`); if
it is missing these tests fail rather than skip.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
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

from outcomes.models import OutboundMessage
from participants import services
from participants.models import DigestLog, Participant, Visit
from participants.tasks import send_coordinator_digest, send_visit_reminders
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


@pytest.fixture(scope="module")
def worker(redis_url, django_db_setup, tmp_path_factory) -> Iterator[Worker]:
    """A `celery worker` subprocess on the Redis broker and the test database."""
    workdir = tmp_path_factory.mktemp("worker")
    mail_dir = workdir / "mail"
    mail_dir.mkdir()
    log_path = workdir / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "CELERY_BROKER_URL": redis_url,
        "DATABASE_URL": database_url_for_worker(),
        "SECRET_KEY": "celery-redis-test-only-not-secret",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "SMS_BACKEND": "outcomes.sms.FileBackend",
        "SMS_FILE_PATH": str(workdir / "sms.jsonl"),
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(CELERY), "-A", "trial", "worker", "--pool=solo", "--concurrency=1",
             "--loglevel=info", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--hostname", f"test-worker-{os.getpid()}@%h"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Worker(process, log_path, mail_dir, workdir / "sms.jsonl")
    try:
        running.wait_for(lambda: " ready." in running.log(), "worker ready")
        yield running
    finally:
        stop(process)


def drop_broker_connections() -> None:
    # The app caches its connection and producer pools on first use, for the broker URL of
    # that moment (eager calls in other tests already made them); drop them so the next
    # call connects to the broker configured now.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def on_broker(redis_url, worker) -> Iterator[Worker]:
    """Switch this process's Celery app from eager to the Redis broker, and back after."""
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    drop_broker_connections()
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    try:
        yield worker
    finally:
        drop_broker_connections()
        app.conf.update(**saved)


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
