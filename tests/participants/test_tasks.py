"""The daily follow-up jobs (participants.tasks) and the SMS outbox (outcomes), with Celery
eager: coordinator digests, sending SMS, and manage.py run_daily_jobs (the visit reminders
themselves: tests/outcomes/sms/test_visit_reminders.py).

Tasks run in the test process on the test database; `on_commit` callbacks (the SMS sends)
are run by django_capture_on_commit_callbacks. tests/test_celery_redis.py runs the same
tasks through a real Redis broker and worker.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import random
import smtplib

import pytest
from celery.exceptions import Retry
from django.core.management import CommandError, call_command
from django.utils import timezone

from outcomes.sms import gateways as sms
from outcomes.sms import services as sms_services
from outcomes.sms.models import OutboundMessage
from outcomes.sms.tasks import (
    SMS_MAX_RETRIES,
    STALE_AFTER,
    send_visit_reminders,
    sms_send,
    sms_send_stale,
)
from participants import services
from participants.models import DigestLog, Participant, Visit
from participants.services import reminders as reminder_services
from participants.tasks import send_coordinator_digest, send_coordinator_digests
from tests import factories
from trial.celery import app
from trial.models import Trial

DAY = dt.timedelta(days=1)


# --- Helpers and fixtures ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _celery_eager():
    """Run tasks in process even if the environment names a broker."""
    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


@pytest.fixture
def eager_retries():
    """Let eager tasks retry in process, as a worker would (with propagation on, an eager
    retry surfaces as celery.exceptions.Retry instead)."""
    app.conf.task_eager_propagates = False


@pytest.fixture
def sms_file(settings, tmp_path):
    settings.SMS_BACKEND = "outcomes.sms.gateways.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    return tmp_path / "sms.jsonl"


def sent_sms(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def randomized(trial, site, by, seed=1) -> Participant:
    participant = factories.enrolled_participant(trial, site, by)
    services.participant_randomize(participant=participant, by=by, rng=random.Random(seed))
    return Participant.objects.get(pk=participant.pk)


def set_window(participant, code: str, start: dt.date, end: dt.date) -> None:
    """Move a planned visit's window (tests may write the ORM directly)."""
    Visit.objects.filter(participant=participant, definition__code=code).update(
        window_start=start, target_date=start, window_end=end
    )


def visit(participant, code: str) -> Visit:
    return Visit.objects.get(participant=participant, definition__code=code)


def with_email(user, address: str):
    user.email = address
    user.save(update_fields=["email"])
    return user


def mail_to(outbox, address: str):
    (message,) = [m for m in outbox if m.to == [address]]
    return message


@pytest.fixture
def day(modic):
    return services.trial_today(modic)


@pytest.fixture
def coordinator_site1(modic, site1):
    user = factories.persona("Coordinator", trial=modic, sites=[site1], username="coord1")
    return with_email(user, "coord1@example.org")


@pytest.fixture
def followup(modic, site1, site2, clinician, coordinator, coordinator_site1, day):
    """Four participants: at site 01 one due and one overdue 10-week visit, at site 02 one
    due and one not yet due; the all-sites coordinator has an e-mail address."""
    with_email(coordinator, "coord@example.org")
    with_email(clinician, "clin1@example.org")  # clinicians get no digest
    due1 = randomized(modic, site1, clinician, seed=1)
    overdue1 = randomized(modic, site1, clinician, seed=2)
    due2 = randomized(modic, site2, clinician, seed=3)
    upcoming2 = randomized(modic, site2, clinician, seed=4)
    set_window(due1, "w10", day - 2 * DAY, day + 5 * DAY)
    set_window(overdue1, "w10", day - 20 * DAY, day - DAY)
    set_window(due2, "w10", day, day)
    return {"due1": due1, "overdue1": overdue1, "due2": due2, "upcoming2": upcoming2}


# --- Coordinator digests --------------------------------------------------------------------


def test_each_coordinator_gets_a_digest_of_the_visits_due_and_overdue_at_their_sites(
    followup, coordinator, coordinator_site1, day, mailoutbox
):
    summary = send_coordinator_digests(day.isoformat())

    assert summary == {"MOD": {"day": day.isoformat(), "queued": 2}}
    assert sorted(m.to[0] for m in mailoutbox) == ["coord1@example.org", "coord@example.org"]

    everything = mail_to(mailoutbox, "coord@example.org")
    assert everything.subject == f"MOD follow-up {day:%d %b %Y}: 2 due, 1 overdue"
    for key in ("due1", "overdue1", "due2"):
        assert followup[key].number in everything.body
        # Phone numbers stay in the worklist: e-mail is no protected channel.
        assert followup[key].phone not in everything.body
    assert followup["upcoming2"].number not in everything.body
    assert "all sites" in everything.body
    assert "/trials/MOD/worklist/" in everything.body
    assert "10 weeks" in everything.body
    # Most overdue first.
    assert everything.body.index(followup["overdue1"].number) < everything.body.index(
        followup["due1"].number
    )

    site1_only = mail_to(mailoutbox, "coord1@example.org")
    assert site1_only.subject == f"MOD follow-up {day:%d %b %Y}: 1 due, 1 overdue"
    assert followup["due1"].number in site1_only.body
    assert followup["overdue1"].number in site1_only.body
    assert followup["due2"].number not in site1_only.body
    assert "site 01:" in site1_only.body
    assert "OVERDUE" in site1_only.body

    logs = {log.user_id: (log.due, log.overdue) for log in DigestLog.objects.filter(day=day)}
    assert logs == {coordinator.pk: (2, 1), coordinator_site1.pk: (1, 1)}


def test_a_second_run_the_same_day_sends_nothing(followup, day, mailoutbox):
    send_coordinator_digests(day.isoformat())
    send_coordinator_digests(day.isoformat())
    send_coordinator_digests()  # default day: today in the trial's zone, the same day

    assert len(mailoutbox) == 2
    assert DigestLog.objects.count() == 2


def test_the_next_day_sends_a_new_digest(followup, day, mailoutbox):
    send_coordinator_digests(day.isoformat())
    send_coordinator_digests((day + DAY).isoformat())

    assert len(mailoutbox) == 4
    assert DigestLog.objects.filter(day=day + DAY).count() == 2


def test_a_failing_send_leaves_no_log_and_a_later_run_sends_the_digest(
    followup, coordinator, day, mailoutbox, monkeypatch
):
    def smtp_down(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")

    monkeypatch.setattr(reminder_services, "send_mail", smtp_down)
    with pytest.raises(Retry, match="SMTPServerDisconnected"):
        send_coordinator_digest.delay(coordinator.pk, followup["due1"].trial_id, day.isoformat())
    assert not DigestLog.objects.exists()

    monkeypatch.undo()
    result = send_coordinator_digest.delay(
        coordinator.pk, followup["due1"].trial_id, day.isoformat()
    )
    assert result.get() == "sent"
    assert len(mailoutbox) == 1
    assert DigestLog.objects.filter(user=coordinator, day=day).count() == 1


def test_a_send_that_keeps_failing_is_retried_then_given_up_without_a_log(
    followup, coordinator, day, mailoutbox, monkeypatch, eager_retries
):
    calls = []

    def smtp_down(*args, **kwargs):
        calls.append(args)
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")

    monkeypatch.setattr(reminder_services, "send_mail", smtp_down)
    result = send_coordinator_digest.delay(
        coordinator.pk, followup["due1"].trial_id, day.isoformat()
    )

    with pytest.raises(smtplib.SMTPServerDisconnected):
        result.get()
    assert len(calls) == 1 + send_coordinator_digest.max_retries
    assert not DigestLog.objects.exists()


def test_a_send_that_fails_once_is_retried_and_sent_once(
    followup, coordinator, day, mailoutbox, monkeypatch, eager_retries
):
    from django.core import mail

    failures = [ConnectionRefusedError("SMTP server not reachable")]

    def flaky_send_mail(*args, **kwargs):
        if failures:
            raise failures.pop()
        return mail.send_mail(*args, **kwargs)

    monkeypatch.setattr(reminder_services, "send_mail", flaky_send_mail)
    result = send_coordinator_digest.delay(
        coordinator.pk, followup["due1"].trial_id, day.isoformat()
    )

    assert result.get() == "sent"
    assert len(mailoutbox) == 1
    assert DigestLog.objects.count() == 1


def test_an_existing_log_row_stops_the_send_even_without_the_early_check(
    followup, coordinator, modic, day, mailoutbox, monkeypatch
):
    """The unique constraint is the guard: a run that passed the existence check just
    before another run committed still sends nothing."""
    DigestLog.objects.create(user=coordinator, trial=modic, day=day, due=0, overdue=0)
    real_filter = DigestLog.objects.filter

    class BlindManager:
        """DigestLog.objects whose existence check sees nothing (the race)."""

        def filter(self, *args, **kwargs):
            return real_filter(pk=-1)

        def create(self, **kwargs):
            return DigestLog._default_manager.create(**kwargs)

    monkeypatch.setattr(reminder_services.DigestLog, "objects", BlindManager())
    result = reminder_services.coordinator_digest_send(
        user_id=coordinator.pk, trial_id=modic.pk, day=day
    )

    assert result == "skipped: already sent"
    assert mailoutbox == []


def test_long_digests_list_the_first_rows_and_count_the_rest(
    followup, coordinator, day, mailoutbox, monkeypatch
):
    monkeypatch.setattr(reminder_services, "DIGEST_ROW_LIMIT", 1)
    send_coordinator_digest.delay(coordinator.pk, followup["due1"].trial_id, day.isoformat())

    body = mailoutbox[0].body
    assert followup["overdue1"].number in body
    assert followup["due1"].number not in body
    assert "and 2 more" in body


def test_a_coordinator_without_an_email_address_gets_nothing_and_nothing_is_logged(
    followup, coordinator, day, mailoutbox
):
    with_email(coordinator, "")
    summary = send_coordinator_digests(day.isoformat())
    result = send_coordinator_digest.delay(
        coordinator.pk, followup["due1"].trial_id, day.isoformat()
    )

    assert summary["MOD"]["queued"] == 1  # only the site 01 coordinator
    assert result.get() == "skipped: no e-mail address"
    assert not DigestLog.objects.filter(user=coordinator).exists()


def test_nothing_due_sends_no_digest(modic, site1, clinician, coordinator, day, mailoutbox):
    with_email(coordinator, "coord@example.org")
    randomized(modic, site1, clinician)  # visits weeks ahead

    send_coordinator_digests(day.isoformat())

    assert mailoutbox == []
    assert not DigestLog.objects.exists()


def test_trials_in_set_up_send_no_digests_and_closed_trials_do(followup, modic, day, mailoutbox):
    Trial.objects.filter(pk=modic.pk).update(status=Trial.Status.SETUP)
    assert send_coordinator_digests(day.isoformat()) == {}
    assert mailoutbox == []

    Trial.objects.filter(pk=modic.pk).update(status=Trial.Status.CLOSED)
    send_coordinator_digests(day.isoformat())
    assert len(mailoutbox) == 2


def test_a_user_who_is_not_a_coordinator_of_the_trial_gets_no_digest(
    followup, clinician, modic, day, mailoutbox
):
    result = send_coordinator_digest.delay(clinician.pk, modic.pk, day.isoformat())

    assert result.get().startswith("skipped: not a coordinator")
    assert mailoutbox == []


def stop_by_sms(participant, phone: str, at: dt.datetime) -> None:
    """The participant replies STOP from a number of their own."""
    from outcomes.sms.tracking import sms_receive

    Participant.objects.filter(pk=participant.pk).update(phone=phone)
    sms_receive(gateway_message_id=f"stop-{participant.pk}", from_number=phone, body="STOP",
                received_at=at)  # fmt: skip


def test_the_digest_tells_coordinators_of_sms_opt_outs_since_yesterday_without_phone_numbers(
    followup, modic, day, mailoutbox
):
    now = timezone.now()
    stop_by_sms(followup["due1"], "+4530777001", now)
    stop_by_sms(followup["due2"], "+4530777002", now - 4 * DAY)  # reported days ago

    send_coordinator_digests(day.isoformat())

    everything = mail_to(mailoutbox, "coord@example.org")
    assert everything.subject.endswith("2 due, 1 overdue, 1 SMS opt-out")
    opt_outs = everything.body[everything.body.index("Opted out of the weekly SMS") :]
    assert followup["due1"].number in opt_outs
    assert followup["due2"].number not in opt_outs
    assert "+4530777001" not in everything.body
    site1_only = mail_to(mailoutbox, "coord1@example.org")
    assert "1 SMS opt-out" in site1_only.subject


def test_an_opt_out_alone_is_reason_enough_for_a_digest(
    modic, site1, clinician, coordinator, day, mailoutbox
):
    with_email(coordinator, "coord@example.org")
    participant = randomized(modic, site1, clinician)  # visits weeks ahead
    stop_by_sms(participant, "+4530777003", timezone.now())

    send_coordinator_digests(day.isoformat())

    (message,) = mailoutbox
    assert message.subject.endswith("0 due, 0 overdue, 1 SMS opt-out")
    assert participant.number in message.body
    assert "+4530777003" not in message.body


# A trial that sends visit reminders (tests/outcomes/sms/test_visit_reminders.py has their own
# tests).
@pytest.fixture
def reminders(modic):
    Trial.objects.filter(pk=modic.pk).update(visit_reminder_days=3)
    return Trial.objects.get(pk=modic.pk)


# --- Sending SMS ----------------------------------------------------------------------------


@pytest.fixture
def participant(modic, site1, clinician):
    return randomized(modic, site1, clinician)


def queue(participant, django_capture_on_commit_callbacks) -> OutboundMessage:
    """Queue a message without running its send, so tests can call sms_send themselves."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = sms_services.sms_queue(
            participant=participant, body="Hello", kind=OutboundMessage.Kind.VISIT_REMINDER
        )
    assert len(callbacks) == 1  # the send waits for the commit
    return message


def test_sms_send_marks_the_message_sent_once_even_when_called_twice(
    participant, sms_file, django_capture_on_commit_callbacks
):
    message = queue(participant, django_capture_on_commit_callbacks)

    first = sms_send.delay(message.pk).get()
    second = sms_send.delay(message.pk).get()

    assert (first, second) == ("sent", "skipped")
    assert len(sent_sms(sms_file)) == 1
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert message.attempts == 1
    assert message.sent_at is not None


def test_the_file_backend_appends_one_json_line_per_message(participant, sms_file):
    backend = sms.FileBackend()
    first = backend.send(to=participant.phone, body="One")
    backend.send(to="+4529999999", body="Two – æøå")

    lines = sent_sms(sms_file)
    assert [(m["to"], m["body"]) for m in lines] == [
        (participant.phone, "One"),
        ("+4529999999", "Two – æøå"),
    ]
    assert lines[0]["id"] == first


def test_the_console_backend_logs_the_message(caplog):
    with caplog.at_level(logging.INFO, logger="outcomes.sms.gateways"):
        message_id = sms.ConsoleBackend().send(to="+4520123456", body="Hello there")
    assert message_id.startswith("console-")
    assert "+4520123456" in caplog.text and "Hello there" in caplog.text


def test_queueing_needs_a_phone_number_and_a_text(participant):
    from django.core.exceptions import ValidationError

    Participant.objects.filter(pk=participant.pk).update(phone="")
    participant.refresh_from_db()
    with pytest.raises(ValidationError, match="no mobile number"):
        sms_services.sms_queue(participant=participant, body="Hi", kind="visit_reminder")
    participant.phone = "+4520123456"
    with pytest.raises(ValidationError, match="needs a text"):
        sms_services.sms_queue(participant=participant, body="  ", kind="visit_reminder")
    assert not OutboundMessage.objects.exists()


class FlakyBackend(sms.BaseBackend):
    """Fails with the queued errors first, then sends (a test double, not a gateway)."""

    errors: list[Exception] = []
    sent: list[str] = []

    def send(self, *, to: str, body: str) -> str:
        if FlakyBackend.errors:
            raise FlakyBackend.errors.pop(0)
        FlakyBackend.sent.append(body)
        return f"flaky-{len(FlakyBackend.sent)}"


@pytest.fixture
def flaky(settings):
    settings.SMS_BACKEND = "tests.participants.test_tasks.FlakyBackend"
    FlakyBackend.errors = []
    FlakyBackend.sent = []
    return FlakyBackend


def test_a_gateway_error_is_retried_and_the_message_sent_once(
    participant, flaky, django_capture_on_commit_callbacks, eager_retries
):
    flaky.errors = [sms.TransientSmsError("gateway timeout"), sms.TransientSmsError("503")]
    message = queue(participant, django_capture_on_commit_callbacks)

    assert sms_send.delay(message.pk).get() == "sent"

    message.refresh_from_db()
    assert flaky.sent == ["Hello"]
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, "503")


def test_a_message_is_marked_failed_once_the_retries_are_exhausted(
    participant, flaky, django_capture_on_commit_callbacks, eager_retries
):
    flaky.errors = [sms.TransientSmsError("gateway down")] * (SMS_MAX_RETRIES + 1)
    message = queue(participant, django_capture_on_commit_callbacks)

    assert sms_send.delay(message.pk).get() == "failed"

    message.refresh_from_db()
    assert flaky.sent == []
    assert message.status == OutboundMessage.Status.FAILED
    assert message.attempts == SMS_MAX_RETRIES + 1
    assert "gateway down" in message.last_error
    assert sms_send.delay(message.pk).get() == "skipped"  # a failed message stays failed


def test_a_permanent_gateway_error_fails_the_message_without_retrying(
    participant, flaky, django_capture_on_commit_callbacks
):
    flaky.errors = [sms.PermanentSmsError("invalid number"), sms.TransientSmsError("unused")]
    message = queue(participant, django_capture_on_commit_callbacks)

    assert sms_send.delay(message.pk).get() == "failed"

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        "failed", 1, "invalid number"
    )  # fmt: skip
    assert len(flaky.errors) == 1  # not retried


def test_an_unreachable_broker_leaves_the_reminder_recorded_and_the_message_queued(
    reminders, site1, clinician, sms_file, django_capture_on_commit_callbacks, monkeypatch
):
    participant = randomized(reminders, site1, clinician)
    opens = visit(participant, "w10").window_start

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    monkeypatch.setattr(sms_send, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        summary = send_visit_reminders(opens.isoformat())

    assert summary["MOD"]["queued"] == 1
    assert visit(participant, "w10").reminder_sent_on == opens
    assert OutboundMessage.objects.get().status == OutboundMessage.Status.QUEUED
    assert sent_sms(sms_file) == []  # sms_send_stale sends it once the broker is back


def test_messages_whose_task_was_lost_are_queued_again(
    participant, sms_file, django_capture_on_commit_callbacks
):
    lost = queue(participant, django_capture_on_commit_callbacks)  # its task never ran
    fresh = queue(participant, django_capture_on_commit_callbacks)
    retrying = queue(participant, django_capture_on_commit_callbacks)
    retry_lost = queue(participant, django_capture_on_commit_callbacks)
    now = timezone.now()
    long_ago = now - STALE_AFTER - dt.timedelta(minutes=1)
    OutboundMessage.objects.filter(pk__in=[lost.pk, retrying.pk, retry_lost.pk]).update(
        created_at=long_ago, next_attempt_at=long_ago
    )
    # Failed once: one has its retry pending in a few minutes, the other's retry is long
    # overdue (lost with the broker).
    OutboundMessage.objects.filter(pk=retrying.pk).update(
        attempts=1, next_attempt_at=now + dt.timedelta(minutes=5)
    )
    OutboundMessage.objects.filter(pk=retry_lost.pk).update(attempts=1)

    assert sms_send_stale.delay().get() == 2

    assert len(sent_sms(sms_file)) == 2
    statuses = dict(OutboundMessage.objects.values_list("pk", "status"))
    assert statuses == {
        lost.pk: "sent",
        fresh.pk: "queued",
        retrying.pk: "queued",
        retry_lost.pk: "sent",
    }
    assert OutboundMessage.objects.get(pk=retry_lost.pk).attempts == 2


# --- manage.py run_daily_jobs ---------------------------------------------------------------


def test_run_daily_jobs_sends_the_digests_and_reminders_of_the_day_once(
    followup, reminders, day, sms_file, mailoutbox, django_capture_on_commit_callbacks
):
    # Reminders: the window opening in 3 days, and the one opening today (caught up).
    set_window(followup["upcoming2"], "w10", day + 3 * DAY, day + 13 * DAY)
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_daily_jobs", "--day", day.isoformat(), stdout=out)
        call_command("run_daily_jobs", "--day", day.isoformat(), stdout=io.StringIO())

    output = out.getvalue()
    assert f"Coordinator digests for MOD ({day.isoformat()}): 2 coordinator(s)." in output
    assert f"Visit reminders for MOD ({day.isoformat()}): 2 SMS queued." in output
    assert "Sent in this process" in output
    assert len(mailoutbox) == 2
    assert sorted(m["to"] for m in sent_sms(sms_file)) == sorted(
        [followup["upcoming2"].phone, followup["due2"].phone]
    )


def test_run_daily_jobs_refuses_a_malformed_day(db):
    with pytest.raises(CommandError, match="not a date"):
        call_command("run_daily_jobs", "--day", "10/03/2025")


def test_run_daily_jobs_reports_a_failing_mail_server_and_a_rerun_sends_the_rest(
    followup, day, mailoutbox, monkeypatch
):
    def smtp_down(*args, **kwargs):
        raise smtplib.SMTPConnectError(421, "try later")

    monkeypatch.setattr(reminder_services, "send_mail", smtp_down)
    with pytest.raises(CommandError, match="run the command again later"):
        call_command("run_daily_jobs", "--day", day.isoformat(), stdout=io.StringIO())
    assert not DigestLog.objects.exists()

    monkeypatch.undo()
    call_command("run_daily_jobs", "--day", day.isoformat(), stdout=io.StringIO())
    assert len(mailoutbox) == 2
