"""Weekly two-way SMS tracking through the services: the weekly job, replies, reminders,
opt-out and opt-in, status changes, the calendar (DST included) and the outbox.

Messages really go out: the FileBackend writes each sent SMS as a JSON line and
`django_capture_on_commit_callbacks(execute=True)` runs the sends queued on commit, with
Celery eager. The demo trial's schedule is used: Sundays 18:00 Europe/Copenhagen, 62 weeks,
a reminder after 24 hours, Danish by default, two questions answered 0-7.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from outcomes.sms import gateways as sms
from outcomes.sms import services as sms_services
from outcomes.sms import sms_rules, tracking
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsSchedule, SmsWeek
from outcomes.sms.selectors import participant_sms_conversation
from outcomes.sms.tasks import STALE_AFTER, sms_send, sms_send_stale
from participants import services
from participants.models import Participant
from tests import factories
from trial.celery import app

ZONE = ZoneInfo("Europe/Copenhagen")
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
HOUR = dt.timedelta(hours=1)
Kind = OutboundMessage.Kind
In = InboundMessage.Kind

# A summer Sunday well away from the DST changes; its send time, 18:00 CEST, is 16:00 UTC.
SUNDAY = dt.date(2026, 6, 7)

Q1_DA = "Hvor mange dage i den seneste uge har dine lændesmerter været generende?"
Q2_DA = "Hvor mange dage i den seneste uge har du været sygemeldt"
Q1_EN = "How many days in the past week has your low back pain been bothersome?"
THANKS_DA = "Tak for dine svar."
CLARIFY_DA = "Vi kunne ikke læse dit svar."
OPTED_IN_DA = "Du får igen de ugentlige spørgsmål."
REMINDER_DA = "Påmindelse:"


def at(day: dt.date, hour: int = 18, minute: int = 0) -> dt.datetime:
    """A local wall-clock time in the trial's zone."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE)


# --- Fixtures and helpers ---------------------------------------------------------------------


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


class Outbox:
    """What the FileBackend has sent, read back."""

    def __init__(self, path):
        self.path = path

    def all(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]

    def to(self, participant: Participant) -> list[str]:
        return [m["body"] for m in self.all() if m["to"] == participant.phone]


@pytest.fixture
def outbox(sms_file) -> Outbox:
    return Outbox(sms_file)


_numbers = itertools.count(1)


@pytest.fixture
def enroll(modic, site1, clinician):
    """A participant randomized on a given date, with a number of their own."""

    def make(randomized_on: dt.date, *, language: str = "", site=None) -> Participant:
        participant = factories.enrolled_participant(modic, site or site1, clinician)
        services.participant_randomize(
            participant=participant, by=clinician, rng=random.Random(participant.pk)
        )
        # Tests may write the ORM directly: move the randomization into the past.
        Participant.objects.filter(pk=participant.pk).update(
            randomized_on=randomized_on,
            randomized_at=at(randomized_on, 10),
            consent_date=randomized_on - DAY,
            phone=f"+452{next(_numbers):07d}",
            sms_language=language,
        )
        return Participant.objects.get(pk=participant.pk)

    return make


@pytest.fixture
def weekly(modic, django_capture_on_commit_callbacks):
    """Run the weekly job at `now` and send what it queued."""

    def run(now: dt.datetime) -> tracking.WeeklyResult:
        with django_capture_on_commit_callbacks(execute=True):
            return tracking.sms_weekly_send(trial=modic, now=now)

    return run


@pytest.fixture
def remind(modic, django_capture_on_commit_callbacks):
    def run(now: dt.datetime) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return tracking.sms_reminders_send(trial=modic, now=now)

    return run


@pytest.fixture
def reply(django_capture_on_commit_callbacks):
    """An inbound SMS from the participant's phone (or any number), handled and answered."""

    def receive(who, body: str, when: dt.datetime, gateway_id: str = "") -> InboundMessage:
        number = who.phone if isinstance(who, Participant) else who
        with django_capture_on_commit_callbacks(execute=True):
            message, _ = tracking.sms_receive(
                gateway_message_id=gateway_id or f"SM{uuid.uuid4().hex}",
                from_number=number,
                body=body,
                to_number="+4570000000",
                received_at=when,
            )
        return message

    return receive


def week_of(participant: Participant, week: int) -> SmsWeek:
    return SmsWeek.objects.get(participant=participant, week=week)


def answers(participant: Participant) -> list[tuple[int, str, int]]:
    return list(
        SmsAnswer.objects.filter(participant=participant)
        .order_by("week__week", "question__order")
        .values_list("week__week", "question__code", "value")
    )


def missed(participant: Participant) -> int:
    return Participant.objects.values_list("sms_missed_weeks", flat=True).get(pk=participant.pk)


# --- A whole week -----------------------------------------------------------------------------


def test_a_week_goes_question_clarification_answer_second_question_answer_thank_you(
    enroll, weekly, reply, outbox
):
    p = enroll(SUNDAY - 3 * DAY)

    result = weekly(at(SUNDAY, 18, 1))

    assert (result.send_date, result.opened, result.already_open) == (SUNDAY, 1, 0)
    (question,) = outbox.to(p)
    assert question.startswith(Q1_DA)
    week = week_of(p, 1)
    assert (week.send_date, week.current_question.code) == (SUNDAY, "bothersome")

    invalid = reply(p, "3 eller 4", at(SUNDAY, 19))

    assert invalid.kind == In.INVALID
    assert (invalid.value, invalid.body, invalid.week_id) == (None, "3 eller 4", week.pk)
    assert outbox.to(p)[-1].startswith(CLARIFY_DA)
    assert "fra 0 til 7" in outbox.to(p)[-1]
    assert SmsAnswer.objects.count() == 0

    first = reply(p, "3 dage", at(SUNDAY, 19, 5))

    assert (first.kind, first.value, first.question.code) == (In.ANSWER, 3, "bothersome")
    assert outbox.to(p)[-1].startswith(Q2_DA)
    assert first.reply.body == outbox.to(p)[-1]

    second = reply(p, "nul", at(SUNDAY, 19, 10))

    assert (second.kind, second.value) == (In.ANSWER, 0)
    assert outbox.to(p)[-1] == "Tak for dine svar. Vi skriver igen i næste uge."
    assert answers(p) == [(1, "bothersome", 3), (1, "sick_leave", 0)]
    week.refresh_from_db()
    assert (week.answered, week.current_question, week.clarifications) == (2, None, 1)
    assert week.completed_at == at(SUNDAY, 19, 10)
    assert len(outbox.to(p)) == 4  # question, clarification, question, thank-you
    kinds = list(OutboundMessage.objects.order_by("pk").values_list("kind", "status"))
    assert kinds == [
        (Kind.SMS_QUESTION, "sent"),
        (Kind.SMS_CLARIFICATION, "sent"),
        (Kind.SMS_QUESTION, "sent"),
        (Kind.SMS_THANKS, "sent"),
    ]


def test_a_participant_with_english_gets_english_texts(enroll, weekly, reply, outbox):
    p = enroll(SUNDAY - 3 * DAY, language="en")

    weekly(at(SUNDAY, 18, 1))
    reply(p, "two", at(SUNDAY, 19))
    reply(p, "0", at(SUNDAY, 19, 1))

    bodies = outbox.to(p)
    assert bodies[0].startswith(Q1_EN)
    assert bodies[-1].startswith("Thank you for your answers.")
    assert answers(p) == [(1, "bothersome", 2), (1, "sick_leave", 0)]


def test_answers_are_stored_per_participant_week_and_question(enroll, weekly, reply):
    a, b = enroll(SUNDAY - 3 * DAY), enroll(SUNDAY - 10 * DAY)

    weekly(at(SUNDAY, 18))
    reply(a, "5", at(SUNDAY, 20))
    reply(b, "1", at(SUNDAY, 20))
    reply(b, "7", at(SUNDAY, 20, 1))
    weekly(at(SUNDAY + WEEK, 18))
    reply(a, "4", at(SUNDAY + WEEK, 20))

    assert answers(a) == [(1, "bothersome", 5), (2, "bothersome", 4)]
    assert answers(b) == [(2, "bothersome", 1), (2, "sick_leave", 7)]


# --- Reminders --------------------------------------------------------------------------------


def test_an_unanswered_week_gets_one_reminder_after_the_delay_not_before_and_not_twice(
    enroll, weekly, remind, outbox
):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))

    assert remind(at(SUNDAY + DAY, 17, 59)) == 0  # 23 h 59 min: too early
    assert len(outbox.to(p)) == 1

    assert remind(at(SUNDAY + DAY, 18, 0)) == 1

    reminder = outbox.to(p)[-1]
    assert reminder.startswith(f"{REMINDER_DA} {Q1_DA}")
    assert remind(at(SUNDAY + DAY, 18, 15)) == 0
    assert remind(at(SUNDAY + 5 * DAY, 12)) == 0
    assert len(outbox.to(p)) == 2
    assert OutboundMessage.objects.filter(kind=Kind.SMS_REMINDER).count() == 1


def test_a_reminder_asks_the_question_still_open(enroll, weekly, remind, reply, outbox):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    reply(p, "2", at(SUNDAY, 19))

    assert remind(at(SUNDAY + 2 * DAY, 9)) == 1

    assert outbox.to(p)[-1].startswith(f"{REMINDER_DA} {Q2_DA}")


def test_an_answered_week_gets_no_reminder(enroll, weekly, remind, reply, outbox):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    reply(p, "2", at(SUNDAY, 19))
    reply(p, "2", at(SUNDAY, 19, 1))

    assert remind(at(SUNDAY + 2 * DAY, 9)) == 0

    assert not any(body.startswith(REMINDER_DA) for body in outbox.to(p))


def test_no_reminder_for_a_week_once_the_next_week_has_opened(enroll, weekly, remind, outbox):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    # The reminder job was down all week; the next week opens first.
    weekly(at(SUNDAY + WEEK, 18))

    assert remind(at(SUNDAY + WEEK, 18, 7)) == 0  # week 2 is only 7 minutes old

    assert week_of(p, 1).reminder_sent_at is None
    assert remind(at(SUNDAY + WEEK + DAY, 18, 7)) == 1  # week 2's own reminder
    assert week_of(p, 2).reminder_sent_at is not None
    assert len(outbox.to(p)) == 3


def test_no_reminder_to_a_participant_who_opted_out_during_the_week(
    enroll, weekly, remind, reply, outbox
):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    reply(p, "STOP", at(SUNDAY, 20))

    assert remind(at(SUNDAY + 2 * DAY, 9)) == 0
    assert len(outbox.to(p)) == 1


# --- Opt-out and opt-in -----------------------------------------------------------------------


@pytest.mark.parametrize("body", ["STOP", "stopp", "Unsubscribe", " stop! "])
def test_an_opt_out_is_recorded_cancels_what_is_queued_and_stops_everything(
    body, enroll, weekly, reply, outbox, modic, django_capture_on_commit_callbacks
):
    p = enroll(SUNDAY - 3 * DAY)
    # The question is queued but its send task has not run yet.
    with django_capture_on_commit_callbacks(execute=False):
        tracking.sms_weekly_send(trial=modic, now=at(SUNDAY, 18))
    question = OutboundMessage.objects.get(participant=p)

    message = reply(p, body, at(SUNDAY, 18, 1))

    assert message.kind == In.OPT_OUT
    assert message.participant == p
    p.refresh_from_db()
    assert p.sms_opted_out_at == at(SUNDAY, 18, 1)
    question.refresh_from_db()
    assert question.status == OutboundMessage.Status.CANCELLED
    assert sms_send.delay(question.pk).get() == "skipped"  # the late task sends nothing
    assert outbox.to(p) == []  # no confirmation either
    # Nothing more: not the next week, and a later number is only logged.
    assert weekly(at(SUNDAY + WEEK, 18)).opened == 0
    later = reply(p, "3", at(SUNDAY + WEEK, 19))
    assert later.kind == In.NOT_TRACKED
    assert outbox.to(p) == []
    assert OutboundMessage.objects.filter(participant=p).count() == 1


def test_start_opts_back_in_with_a_confirmation_and_the_next_week_is_sent(
    enroll, weekly, reply, outbox
):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    reply(p, "stop", at(SUNDAY, 19))
    assert weekly(at(SUNDAY + WEEK, 18)).opened == 0

    message = reply(p, "Start", at(SUNDAY + WEEK + 2 * DAY, 9))

    assert message.kind == In.OPT_IN
    p.refresh_from_db()
    assert p.sms_opted_out_at is None
    assert outbox.to(p)[-1].startswith(OPTED_IN_DA)
    assert message.reply.kind == Kind.SMS_OPT_IN

    assert weekly(at(SUNDAY + 2 * WEEK, 18)).opened == 1

    assert outbox.to(p)[-1].startswith(Q1_DA)
    assert week_of(p, 3).send_date == SUNDAY + 2 * WEEK
    reply(p, "1", at(SUNDAY + 2 * WEEK, 19))
    assert answers(p) == [(3, "bothersome", 1)]


def test_a_message_from_an_unknown_number_is_logged_without_a_reply(enroll, weekly, reply, outbox):
    enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))

    message = reply("+4599887766", "3", at(SUNDAY, 19))
    stop = reply("+4599887766", "STOP", at(SUNDAY, 19, 1))
    junk = reply("not a number", "hello", at(SUNDAY, 19, 2))

    assert [m.kind for m in (message, stop, junk)] == [In.UNKNOWN_NUMBER] * 3
    assert (message.body, message.participant, message.value) == ("3", None, None)
    assert len(outbox.all()) == 1  # only the participant's question
    assert SmsAnswer.objects.count() == 0


# --- Participants no longer followed ----------------------------------------------------------


def set_status(participant: Participant, status: str, by) -> None:
    if status == Participant.Status.WITHDRAWN:
        services.participant_status_change(
            participant=participant, to_status=status, effective_on=participant.randomized_on,
            reason="No longer wishes to take part", followup_allowed=False, by=by,
        )  # fmt: skip
    else:
        # Tests may write the ORM directly (completing needs every visit recorded first).
        Participant.objects.filter(pk=participant.pk).update(status=status)


NOT_FOLLOWED = ["withdrawn", "deceased", "lost", "completed"]


@pytest.mark.parametrize("status", NOT_FOLLOWED)
def test_participants_no_longer_followed_get_nothing_and_their_replies_are_only_logged(
    status, enroll, weekly, reply, outbox, clinician
):
    followed = enroll(SUNDAY - 10 * DAY)
    gone = enroll(SUNDAY - 10 * DAY)
    weekly(at(SUNDAY - WEEK, 18))
    set_status(gone, status, clinician)

    result = weekly(at(SUNDAY, 18))

    assert result.opened == 1
    assert SmsWeek.objects.filter(participant=gone).count() == 1  # only the earlier week
    message = reply(gone, "4", at(SUNDAY, 19))
    assert (message.kind, message.participant, message.reply) == (In.NOT_TRACKED, gone, None)
    assert outbox.to(gone) == [outbox.to(followed)[0]]  # the week before the change only
    assert len(outbox.to(followed)) == 2
    assert answers(gone) == []


@pytest.mark.parametrize("status", NOT_FOLLOWED)
def test_a_question_queued_before_the_participant_left_is_cancelled_at_send_time(
    status, enroll, modic, clinician, outbox, django_capture_on_commit_callbacks
):
    p = enroll(SUNDAY - 3 * DAY)
    with django_capture_on_commit_callbacks(execute=False):
        tracking.sms_weekly_send(trial=modic, now=at(SUNDAY, 18))
    question = OutboundMessage.objects.get(participant=p)
    set_status(p, status, clinician)

    assert sms_send.delay(question.pk).get() == "cancelled"

    question.refresh_from_db()
    assert question.status == OutboundMessage.Status.CANCELLED
    assert question.last_error
    assert outbox.all() == []


# --- Answers: first wins, late, extra, clarifications -----------------------------------------


def test_the_first_valid_answer_wins_and_replies_after_completion_are_kept_as_extra(
    enroll, weekly, reply, outbox
):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    reply(p, "2", at(SUNDAY, 19))
    reply(p, "1", at(SUNDAY, 19, 1))
    sent = len(outbox.to(p))

    extra = reply(p, "Undskyld, det var 3 dage", at(SUNDAY, 19, 2))
    another = reply(p, "5", at(SUNDAY + DAY, 8))

    assert [extra.kind, another.kind] == [In.EXTRA, In.EXTRA]
    assert extra.body == "Undskyld, det var 3 dage"
    assert extra.week == week_of(p, 1)
    assert (extra.value, extra.reply) == (None, None)
    assert answers(p) == [(1, "bothersome", 2), (1, "sick_leave", 1)]
    assert len(outbox.to(p)) == sent  # no reply to extras


def test_late_answers_count_until_the_next_week_opens_then_go_to_the_new_week(
    enroll, weekly, reply
):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))

    late = reply(p, "4", at(SUNDAY + 6 * DAY, 17, 59))  # a minute before week 2
    weekly(at(SUNDAY + WEEK, 18))
    after = reply(p, "6", at(SUNDAY + WEEK, 18, 1))

    assert (late.kind, late.week) == (In.ANSWER, week_of(p, 1))
    assert (after.kind, after.week) == (In.ANSWER, week_of(p, 2))
    assert answers(p) == [(1, "bothersome", 4), (2, "bothersome", 6)]
    assert week_of(p, 1).current_question.code == "sick_leave"  # left half answered


def test_clarifications_are_capped_per_week(enroll, weekly, reply, outbox, modic):
    cap = SmsSchedule.objects.get(trial=modic).max_clarifications
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))

    replies = [reply(p, "Out of office", at(SUNDAY, 19, i)) for i in range(cap + 2)]

    assert [m.kind for m in replies] == [In.INVALID] * (cap + 2)
    assert sum(m.reply is not None for m in replies) == cap
    assert sum(b.startswith(CLARIFY_DA) for b in outbox.to(p)) == cap
    assert week_of(p, 1).clarifications == cap
    # A new week, a new allowance.
    weekly(at(SUNDAY + WEEK, 18))
    assert reply(p, "??", at(SUNDAY + WEEK, 19)).reply is not None


def test_the_same_inbound_message_delivered_twice_is_handled_once(enroll, weekly, reply, outbox):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))

    first = reply(p, "3", at(SUNDAY, 19), gateway_id="SM-redelivered")
    again = reply(p, "3", at(SUNDAY, 19), gateway_id="SM-redelivered")

    assert again.pk == first.pk
    assert InboundMessage.objects.count() == 1
    assert answers(p) == [(1, "bothersome", 3)]
    assert len(outbox.to(p)) == 2  # the first question and the second, once
    assert week_of(p, 1).current_question.code == "sick_leave"


def test_sms_receive_says_whether_the_message_was_new(enroll, weekly):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))

    _, new = tracking.sms_receive(gateway_message_id="SM1", from_number=p.phone, body="3")
    _, again = tracking.sms_receive(gateway_message_id="SM1", from_number=p.phone, body="3")

    assert (new, again) == (True, False)


def test_an_answer_takes_a_fixed_small_number_of_statements(
    enroll, weekly, reply, django_assert_max_num_queries
):
    """The webhook's throughput is mostly round trips (make bench: the inbound webhook):
    no lookup before the INSERT (the unique message id finds redeliveries), no savepoint
    around the queued reply; the totals' statements count once on PostgreSQL (one batch)."""
    from django.db import connection

    first, second = enroll(SUNDAY - 3 * DAY), enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18))
    reply(first, "3", at(SUNDAY, 19))  # fills the per-process SMS configuration cache
    # The receipt itself: savepoint, ..., release (sending happens after commit, elsewhere).
    bound = 10 if connection.vendor == "postgresql" else 12
    with django_assert_max_num_queries(bound) as captured:
        tracking.sms_receive(
            gateway_message_id="SM-counted", from_number=second.phone, body="3",
            received_at=at(SUNDAY, 19),
        )  # fmt: skip
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum(q.startswith("SAVEPOINT") for q in sql) == 1, sql  # the receipt's own block
    assert sql[1].startswith('INSERT INTO "outcomes_inboundmessage"'), sql  # no lookup first
    assert answers(second) == [(1, "bothersome", 3)]


# --- The weekly job ---------------------------------------------------------------------------


def test_rerunning_the_weekly_job_opens_nothing_twice(enroll, weekly, outbox):
    people = [enroll(SUNDAY - d * DAY) for d in (1, 8, 20)]

    first = weekly(at(SUNDAY, 18))
    again = weekly(at(SUNDAY, 18, 15))
    later = weekly(at(SUNDAY + 3 * DAY, 9))  # a late run in the same week

    assert (first.opened, first.already_open) == (3, 0)
    assert (again.opened, again.already_open) == (0, 3)
    assert (later.send_date, later.opened) == (SUNDAY, 0)
    assert [len(outbox.to(p)) for p in people] == [1, 1, 1]
    assert SmsWeek.objects.count() == 3
    assert missed(people[2]) == 0


def test_small_batches_give_the_same_result(enroll, weekly, reply, outbox, monkeypatch):
    monkeypatch.setattr(tracking.weekly, "BATCH_SIZE", 2)
    people = [enroll(SUNDAY - d * DAY) for d in (1, 2, 3, 9, 10)]
    weekly(at(SUNDAY, 18))
    reply(people[0], "1", at(SUNDAY, 19))

    result = weekly(at(SUNDAY + WEEK, 18))

    assert (result.opened, result.already_open) == (5, 0)
    assert weekly(at(SUNDAY + WEEK, 18, 30)).already_open == 5
    assert [len(outbox.to(p)) for p in people] == [3, 2, 2, 2, 2]
    assert [w.week for w in SmsWeek.objects.filter(send_date=SUNDAY + WEEK).order_by("pk")] == [
        2, 2, 2, 3, 3,
    ]  # fmt: skip
    assert [missed(p) for p in people] == [0, 1, 1, 1, 1]


def test_only_participants_randomized_in_range_get_a_week(enroll, weekly, modic):
    weeks = SmsSchedule.objects.get(trial=modic).weeks
    today = enroll(SUNDAY)  # randomized on the send day: week 1 is the next Sunday
    yesterday = enroll(SUNDAY - DAY)  # week 1 is today
    last = enroll(SUNDAY - 7 * weeks * DAY)  # today is their last week
    beyond = enroll(SUNDAY - (7 * weeks + 1) * DAY)  # finished last Sunday

    weekly(at(SUNDAY, 18))

    weeks_opened = dict(SmsWeek.objects.values_list("participant_id", "week"))
    assert weeks_opened == {yesterday.pk: 1, last.pk: weeks}
    weekly(at(SUNDAY + WEEK, 18))
    weeks_opened = dict(
        SmsWeek.objects.filter(send_date=SUNDAY + WEEK).values_list("participant_id", "week")
    )
    assert weeks_opened == {today.pk: 1, yesterday.pk: 2}  # `last` is done, `beyond` too
    assert not SmsWeek.objects.filter(participant=beyond).exists()


def test_missed_weeks_count_consecutive_unanswered_weeks_and_reset_on_an_answer(
    enroll, weekly, reply
):
    p = enroll(SUNDAY - 3 * DAY)
    sundays = [SUNDAY + k * WEEK for k in range(5)]
    weekly(at(sundays[0], 18))
    assert missed(p) == 0
    weekly(at(sundays[1], 18))
    assert missed(p) == 1
    weekly(at(sundays[2], 18))
    weekly(at(sundays[2], 18, 15))  # a re-run counts nothing again
    assert missed(p) == 2

    reply(p, "5", at(sundays[2], 20))  # one answer of two is an answer

    assert missed(p) == 0
    weekly(at(sundays[3], 18))
    assert missed(p) == 0
    weekly(at(sundays[4], 18))
    assert missed(p) == 1


# --- Daylight-saving time ---------------------------------------------------------------------


AUTUMN_CHANGE = dt.date(2026, 10, 25)  # a Sunday: CEST (UTC+2) ends at 03:00
SPRING_CHANGE = dt.date(2026, 3, 29)  # a Sunday: CEST begins at 02:00


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_the_weekly_job_keeps_18_00_local_after_the_autumn_change(enroll, weekly, outbox):
    p = enroll(AUTUMN_CHANGE - 10 * DAY)
    # The change day itself: 18:00 is already CET (17:00 UTC).
    assert weekly(utc(2026, 10, 25, 16, 30)).send_date == AUTUMN_CHANGE - WEEK
    assert weekly(utc(2026, 10, 25, 17, 0)).send_date == AUTUMN_CHANGE
    sent = len(outbox.to(p))
    assert sent == 2

    early = weekly(utc(2026, 11, 1, 16, 30))  # 17:30 local: not yet

    assert (early.send_date, early.opened) == (AUTUMN_CHANGE, 0)
    assert len(outbox.to(p)) == sent
    on_time = weekly(utc(2026, 11, 1, 17, 0))  # 18:00 local
    assert (on_time.send_date, on_time.opened) == (dt.date(2026, 11, 1), 1)
    assert len(outbox.to(p)) == sent + 1


def test_the_weekly_job_sends_at_18_00_summer_time_after_the_spring_change(enroll, weekly, outbox):
    p = enroll(SPRING_CHANGE - 3 * DAY)

    before = weekly(utc(2026, 3, 29, 15, 59))
    assert before.opened == 0
    assert outbox.to(p) == []
    summer = weekly(utc(2026, 3, 29, 16, 0))  # 18:00 CEST

    assert (summer.send_date, summer.opened) == (SPRING_CHANGE, 1)
    assert week_of(p, 1).send_date == SPRING_CHANGE
    assert len(outbox.to(p)) == 1


# --- The outbox -------------------------------------------------------------------------------


class FlakyBackend(sms.BaseBackend):
    """Fails with the queued errors first, then sends (a test double, not a gateway)."""

    errors: list[Exception] = []
    sent: list[tuple[str, str]] = []

    def send(self, *, to: str, body: str) -> str:
        if FlakyBackend.errors:
            raise FlakyBackend.errors.pop(0)
        FlakyBackend.sent.append((to, body))
        return f"flaky-{len(FlakyBackend.sent)}"


@pytest.fixture
def flaky(settings):
    settings.SMS_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.errors = []
    FlakyBackend.sent = []
    return FlakyBackend


@pytest.fixture
def eager_retries():
    """Let eager tasks retry in process, as a worker would."""
    app.conf.task_eager_propagates = False


def test_a_failing_gateway_then_recovery_sends_the_question_exactly_once(
    enroll, weekly, flaky, eager_retries
):
    p = enroll(SUNDAY - 3 * DAY)
    flaky.errors = [sms.TransientSmsError("gateway timeout"), sms.TransientSmsError("503")]

    weekly(at(SUNDAY, 18))

    (message,) = OutboundMessage.objects.filter(participant=p)
    assert [to for to, _ in flaky.sent] == [p.phone]
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, "503")
    assert message.gateway_message_id == "flaky-1"
    assert sms_send.delay(message.pk).get() == "skipped"
    assert len(flaky.sent) == 1


def test_an_unreachable_broker_leaves_the_question_queued_for_the_stale_sweeper(
    enroll, weekly, outbox, monkeypatch
):
    p = enroll(SUNDAY - 3 * DAY)

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(sms_send, "delay", broker_down)
        result = weekly(at(SUNDAY, 18))

    assert result.opened == 1  # the week is open all the same
    (message,) = OutboundMessage.objects.filter(participant=p)
    assert message.status == OutboundMessage.Status.QUEUED
    assert outbox.all() == []
    assert sms_send_stale.delay().get() == 0  # not stale yet
    OutboundMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() - STALE_AFTER - dt.timedelta(minutes=1)
    )

    assert sms_send_stale.delay(trial_id=p.trial_id + 1).get() == 0  # another trial's only
    assert outbox.all() == []
    assert sms_send_stale.delay(trial_id=p.trial_id).get() == 1

    assert [m["body"][: len(Q1_DA)] for m in outbox.all()] == [Q1_DA]
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
    assert sms_send_stale.delay().get() == 0
    assert len(outbox.all()) == 1


def test_a_duplicated_or_retried_send_task_never_sends_twice(
    enroll, weekly, outbox, modic, django_capture_on_commit_callbacks
):
    p = enroll(SUNDAY - 3 * DAY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tracking.sms_weekly_send(trial=modic, now=at(SUNDAY, 18))
    (message,) = OutboundMessage.objects.filter(participant=p)

    results = [sms_send.delay(message.pk).get() for _ in range(3)]
    for callback in callbacks:  # the original on-commit send arrives late as well
        callback()

    assert results == ["sent", "skipped", "skipped"]
    assert len(outbox.all()) == 1
    message.refresh_from_db()
    assert message.attempts == 1
    assert sms_services.sms_send_now(message_id=message.pk) == "skipped"


def test_the_webhook_delivering_the_same_message_twice_stores_and_answers_it_once(
    enroll, weekly, outbox, client, settings, django_capture_on_commit_callbacks
):
    from twilio.request_validator import RequestValidator

    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.SMS_WEBHOOK_BASE_URL = "http://testserver"
    # The webhook receives at the real time: open the week that is current now.
    now = timezone.now()
    p = enroll(sms_rules.last_send_date(now, ZONE, 6, dt.time(18)) - 3 * DAY)
    weekly(now)
    form = {"MessageSid": "SM" + "a" * 32, "From": p.phone, "To": "+4570000000", "Body": "3"}
    signature = RequestValidator("test-token").compute_signature(
        "http://testserver/sms/inbound/", form
    )

    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/sms/inbound/", form, HTTP_X_TWILIO_SIGNATURE=signature)
        assert response.status_code == 200

    assert InboundMessage.objects.count() == 1
    assert answers(p) == [(1, "bothersome", 3)]
    assert len(outbox.to(p)) == 2  # the first question, then the second once


# --- Edge cases found in review ---------------------------------------------------------------


def test_two_participants_sharing_a_phone_each_get_their_answers(enroll, weekly, reply):
    first = enroll(SUNDAY - 10 * DAY)  # week 2 on SUNDAY
    second = enroll(SUNDAY - 3 * DAY)  # week 1 on SUNDAY
    Participant.objects.filter(pk=second.pk).update(phone=first.phone)
    weekly(at(SUNDAY, 18, 1))

    for minute, body in enumerate(["3", "4", "5", "6"], 1):
        reply(first, body, at(SUNDAY, 19, minute))

    # The first two complete one participant's week; the next two go to the other's open
    # week, not to the completed one as extras.
    assert sorted(v for _, _, v in answers(first) + answers(second)) == [3, 4, 5, 6]
    assert {len(answers(first)), len(answers(second))} == {2}
    assert InboundMessage.objects.filter(kind=In.EXTRA).count() == 0


def test_moving_the_send_weekday_mid_week_opens_no_second_week(modic, enroll, weekly, outbox):
    friday = SUNDAY - 2 * DAY
    p = enroll(friday)  # week 1 on SUNDAY
    other = enroll(SUNDAY - 20 * DAY)  # week 3 on SUNDAY
    weekly(at(SUNDAY, 18, 1))
    SmsSchedule.objects.filter(trial=modic).update(weekday=SmsSchedule.Weekday.WEDNESDAY)
    tracking.clear_sms_config_cache()  # a queryset update sends no signal

    wednesday = SUNDAY + 3 * DAY
    result = weekly(at(wednesday, 18, 1))

    # p's Wednesday would again be "week 1": skipped, not a crash of the whole batch.
    assert SmsWeek.objects.filter(participant=p).count() == 1
    assert len(outbox.to(p)) == 1
    # other's Wednesday is week 4 (a new number), opened normally.
    assert result.opened == 1
    assert list(SmsWeek.objects.filter(participant=other).values_list("week", flat=True)) == [
        3,
        4,
    ]


def test_a_reply_after_the_last_week_has_closed_is_kept_raw_and_not_stored(
    modic, enroll, weekly, reply, outbox
):
    schedule = SmsSchedule.objects.get(trial=modic)
    p = enroll(SUNDAY - schedule.weeks * WEEK)  # SUNDAY is its last week
    weekly(at(SUNDAY, 18, 1))
    assert week_of(p, schedule.weeks).send_date == SUNDAY

    on_time = reply(p, "2", at(SUNDAY + 6 * DAY, 23))
    late = reply(p, "3", at(SUNDAY + WEEK, 18, 30))

    assert on_time.kind == In.ANSWER
    assert (late.kind, late.value, late.body, late.week) == (In.NO_QUESTION, None, "3", None)
    assert answers(p) == [(schedule.weeks, "bothersome", 2)]
    assert not outbox.to(p)[-1].startswith(THANKS_DA)


def _unanswered_week(modic, p: Participant, week: int, send_date: dt.date) -> SmsWeek:
    """An earlier week the participant never answered (written directly: opening it through
    the weekly job would take a run per week)."""
    first = modic.sms_questions.order_by("order").first()
    return SmsWeek.objects.create(
        trial=modic, site=p.site, participant=p, week=week, send_date=send_date,
        opened_at=at(send_date, 18, 1), current_question=first,
    )  # fmt: skip


def test_a_reply_after_the_last_week_is_filed_under_no_week_not_an_old_unanswered_one(
    modic, enroll, weekly, reply
):
    """The audit saw "No question open · week 50": the reply went to the participant's last
    week still awaiting an answer, twelve weeks old, instead of the current one."""
    schedule = SmsSchedule.objects.get(trial=modic)
    p = enroll(SUNDAY - schedule.weeks * WEEK)  # SUNDAY is its last week
    _unanswered_week(modic, p, schedule.weeks - 12, SUNDAY - 12 * WEEK)
    weekly(at(SUNDAY, 18, 1))
    reply(p, "2", at(SUNDAY, 19))
    reply(p, "0", at(SUNDAY, 19, 5))
    assert week_of(p, schedule.weeks).completed_at is not None

    extra = reply(p, "Tak", at(SUNDAY + 2 * DAY, 12))
    late = reply(p, "4", at(SUNDAY + WEEK, 18, 30))

    assert (extra.kind, extra.week) == (In.EXTRA, week_of(p, schedule.weeks))
    assert (late.kind, late.week, late.value) == (In.NO_QUESTION, None, None)
    assert answers(p) == [(schedule.weeks, "bothersome", 2), (schedule.weeks, "sick_leave", 0)]
    # The conversation shows no week for it.
    rows = list(participant_sms_conversation(p, 1))
    assert [r.week for r in rows if r.direction == "in" and r.kind == In.NO_QUESTION] == [None]


def test_a_reply_in_the_current_week_goes_to_it_even_with_an_older_week_unanswered(
    modic, enroll, weekly, reply
):
    p = enroll(SUNDAY - 20 * DAY)  # week 3 on SUNDAY
    _unanswered_week(modic, p, 2, SUNDAY - WEEK)
    weekly(at(SUNDAY, 18, 1))
    message = reply(p, "5", at(SUNDAY, 20))
    assert (message.kind, message.week, message.value) == (In.ANSWER, week_of(p, 3), 5)
    assert answers(p) == [(3, "bothersome", 5)]


def test_failed_messages_can_be_queued_again_by_a_person_and_then_go_once(
    enroll, weekly, outbox, manager, django_capture_on_commit_callbacks
):
    p = enroll(SUNDAY - 3 * DAY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            sms.FileBackend,
            "send",
            lambda self, **kw: (_ for _ in ()).throw(sms.PermanentSmsError("account suspended")),
        )
        weekly(at(SUNDAY, 18, 1))
    message = OutboundMessage.objects.get(participant=p)
    assert message.status == "failed"

    with django_capture_on_commit_callbacks(execute=True):
        assert sms_services.sms_requeue_failed(message_ids=[message.pk], by=manager) == 1
        assert sms_services.sms_requeue_failed(message_ids=[message.pk], by=manager) == 0

    message.refresh_from_db()
    assert message.status == "sent"
    assert "Re-queued by mgr" in message.last_error
    assert len(outbox.to(p)) == 1
