"""Visit reminders (outcomes.sms.visit_reminders and the task
participants.tasks.send_visit_reminders), with Celery eager: sent once, to whom, caught up,
rolled back. The outbox and manage.py run_daily_jobs: tests/participants/test_tasks.py, whose
helpers these tests share."""

from __future__ import annotations

import pytest

from outcomes.sms import visit_reminders
from outcomes.sms.models import OutboundMessage
from outcomes.sms.tasks import send_visit_reminders
from participants import services
from participants.models import Participant, Visit
from tests.participants.test_tasks import DAY, randomized, sent_sms, set_window, visit
from trial.celery import app
from trial.models import Trial

Status = Participant.Status


@pytest.fixture(autouse=True)
def _celery_eager():
    """Run tasks in process even if the environment names a broker."""
    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    app.conf.update(task_always_eager=saved[0], task_eager_propagates=saved[1])


@pytest.fixture
def sms_file(settings, tmp_path):
    settings.SMS_BACKEND = "outcomes.sms.gateways.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    return tmp_path / "sms.jsonl"


@pytest.fixture
def reminders(modic):
    Trial.objects.filter(pk=modic.pk).update(visit_reminder_days=3)
    return Trial.objects.get(pk=modic.pk)


def change_status(participant, to_status, by, **kwargs):
    services.participant_status_change(
        participant=participant,
        to_status=to_status,
        effective_on=services.trial_today(participant.trial),
        reason="test",
        by=by,
        **kwargs,
    )


def test_visit_reminders_keep_their_celery_task_name_in_the_sms_app():
    """The beat schedule and tasks queued by an earlier release name the task as before."""
    assert app.tasks["participants.tasks.send_visit_reminders"] == send_visit_reminders


def test_reminders_go_out_once_and_only_to_active_participants_who_may_be_followed(
    reminders, site1, clinician, sms_file, django_capture_on_commit_callbacks
):
    active = randomized(reminders, site1, clinician, seed=1)
    refused = randomized(reminders, site1, clinician, seed=2)
    withdrawn_followed = randomized(reminders, site1, clinician, seed=3)
    deceased = randomized(reminders, site1, clinician, seed=4)
    lost = randomized(reminders, site1, clinician, seed=5)
    no_phone = randomized(reminders, site1, clinician, seed=6)
    change_status(refused, Status.WITHDRAWN, clinician, followup_allowed=False)
    change_status(withdrawn_followed, Status.WITHDRAWN, clinician, followup_allowed=True)
    change_status(deceased, Status.DECEASED, clinician)
    change_status(lost, Status.LOST, clinician)
    Participant.objects.filter(pk=no_phone.pk).update(phone="")
    opens = visit(active, "w10").window_start  # everyone was randomized today
    remind_on = opens - 3 * DAY

    with django_capture_on_commit_callbacks(execute=True):
        too_early = send_visit_reminders((remind_on - DAY).isoformat())
        first = send_visit_reminders(remind_on.isoformat())
        again = send_visit_reminders(remind_on.isoformat())
        next_day = send_visit_reminders((remind_on + DAY).isoformat())

    assert too_early["MOD"]["queued"] == 0
    assert first == {"MOD": {"day": remind_on.isoformat(), "queued": 1}}
    assert again["MOD"]["queued"] == 0
    assert next_day["MOD"]["queued"] == 0
    (message,) = sent_sms(sms_file)
    assert message["to"] == active.phone
    assert message["body"] == (
        f"Reminder from {reminders.name}: your 10 weeks visit is due from "
        f"{opens:%d %b}. Please contact the trial team to book it."
    )
    assert visit(active, "w10").reminder_sent_on == remind_on
    assert visit(active, "y1").reminder_sent_on is None
    stored = OutboundMessage.objects.get()
    assert (stored.participant, stored.kind, stored.status, stored.attempts) == (
        active, OutboundMessage.Kind.VISIT_REMINDER, OutboundMessage.Status.SENT, 1
    )  # fmt: skip
    assert stored.gateway_message_id == message["id"]


def test_a_missed_reminder_day_is_caught_up_until_the_window_opens_but_not_after(
    reminders, site1, clinician, sms_file, django_capture_on_commit_callbacks
):
    late = randomized(reminders, site1, clinician, seed=1)
    later = randomized(reminders, site1, clinician, seed=2)
    opens = visit(late, "w10").window_start
    set_window(later, "w10", opens + DAY, opens + 10 * DAY)

    with django_capture_on_commit_callbacks(execute=True):
        on_opening_day = send_visit_reminders(opens.isoformat())

    assert on_opening_day["MOD"]["queued"] == 2
    assert {m["to"] for m in sent_sms(sms_file)} == {late.phone, later.phone}

    Visit.objects.update(reminder_sent_on=None)
    with django_capture_on_commit_callbacks(execute=True):
        after_opening = send_visit_reminders((opens + 2 * DAY).isoformat())
    assert after_opening["MOD"]["queued"] == 0


def test_trials_without_reminder_days_send_no_reminders(
    modic, site1, clinician, sms_file, django_capture_on_commit_callbacks
):
    Trial.objects.filter(pk=modic.pk).update(visit_reminder_days=None)
    participant = randomized(modic, site1, clinician)
    opens = visit(participant, "w10").window_start

    with django_capture_on_commit_callbacks(execute=True):
        summary = send_visit_reminders(opens.isoformat())

    assert summary == {}
    assert sent_sms(sms_file) == []


def test_a_reminder_is_not_sent_when_the_sms_transaction_rolls_back(
    reminders, site1, clinician, sms_file, django_capture_on_commit_callbacks, monkeypatch
):
    participant = randomized(reminders, site1, clinician)
    opens = visit(participant, "w10").window_start

    def broken_queue(**kwargs):
        raise RuntimeError("database trouble")

    monkeypatch.setattr(visit_reminders, "sms_queue", broken_queue)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        send_visit_reminders(opens.isoformat())

    assert visit(participant, "w10").reminder_sent_on is None  # reminded on the next run
    assert sent_sms(sms_file) == []
