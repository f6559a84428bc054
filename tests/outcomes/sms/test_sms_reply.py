"""What a reply to the weekly SMS does (outcomes.sms.sms_reply): the pure decision that
outcomes.sms.tracking.inbound._receive applies. The database side is in test_tracking."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from outcomes.sms import sms_reply, sms_rules
from outcomes.sms.models import InboundMessage
from outcomes.sms.sms_reply import Candidate, CurrentWeek, Question, TrialSms, decide_reply

CPH = ZoneInfo("Europe/Copenhagen")
SUNDAY = dt.date(2026, 6, 7)
OPENED = dt.datetime(2026, 6, 7, 18, tzinfo=CPH)
CONFIG = TrialSms(
    zone=CPH,
    send_time=dt.time(18),
    max_clarifications=1,
    questions=(Question(11, 0, 7), Question(12, 0, 7)),
)


def person(pk=1, *, trial_id=1, tracked=True, missed=0) -> Candidate:
    return Candidate(pk, trial_id, tracked, missed)


def week(pk=100, participant_id=1, *, send_date=SUNDAY, question=11, answered=0, clarified=0):
    return CurrentWeek(pk, participant_id, send_date, question, answered, clarified)


def decide(body="3", candidates=None, weeks=None, trials=None, at=OPENED + dt.timedelta(hours=1)):
    return decide_reply(
        body=body,
        candidates=candidates or [person()],
        weeks=[week()] if weeks is None else weeks,
        trials={1: CONFIG} if trials is None else trials,
        at=at,
    )


def test_the_decision_never_imports_django():
    tree = ast.parse(Path(sms_reply.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] == "django"]


def test_the_kinds_decided_are_inbound_message_kinds():
    kinds = {sms_reply.NOT_TRACKED, sms_reply.NO_QUESTION, sms_reply.EXTRA}
    kinds |= {sms_reply.INVALID, sms_reply.ANSWER}
    assert kinds <= set(InboundMessage.Kind.values)


def test_an_answer_to_the_first_question_asks_the_next_and_resets_the_silent_count():
    decided = decide("3 dage", candidates=[person(missed=2)])
    assert (decided.kind, decided.value, decided.week_id, decided.question_id) == (
        "answer", 3, 100, 11,
    )  # fmt: skip
    assert (decided.next_question_id, decided.first_of_week, decided.reset_missed) == (
        12, True, True,
    )  # fmt: skip


def test_an_answer_to_the_last_question_completes_the_week():
    decided = decide("0", weeks=[week(question=12, answered=1)])
    assert (decided.kind, decided.next_question_id, decided.first_of_week) == (
        "answer",
        None,
        False,
    )
    assert not decided.reset_missed


def test_an_unreadable_reply_is_clarified_while_the_week_has_clarifications_left():
    assert decide("3 or 4").clarify
    assert decide("3 or 4").kind == "invalid"
    assert not decide("3 or 4", weeks=[week(clarified=1)]).clarify


def test_a_participant_not_tracked_gets_nothing_and_is_named():
    decided = decide(candidates=[person(7, tracked=False)], weeks=[week(participant_id=7)])
    assert (decided.kind, decided.participant_id, decided.week_id) == ("not_tracked", 7, None)


def test_a_closed_week_no_week_or_sms_switched_off_take_no_answer_and_no_week():
    next_send = OPENED + dt.timedelta(days=7)
    assert decide(at=next_send).kind == "no_question"
    assert decide(at=next_send).week_id is None
    assert decide(at=next_send - dt.timedelta(seconds=1)).kind == "answer"
    assert decide(weeks=[]).kind == "no_question"
    assert decide(trials={1: None}).kind == "no_question"


def test_a_complete_week_takes_an_extra_message_and_a_removed_question_none():
    assert (decide(weeks=[week(question=None, answered=2)]).kind) == "extra"
    gone = decide(weeks=[week(question=99)])
    assert (gone.kind, gone.week_id, gone.question_id) == ("no_question", 100, None)


def test_of_two_participants_sharing_a_number_the_open_week_awaiting_an_answer_wins():
    candidates = [person(1), person(2)]
    done = week(100, 1, question=None, answered=2)  # opened most recently, complete
    waiting = week(200, 2, send_date=SUNDAY)
    decided = decide(candidates=candidates, weeks=[done, waiting])
    assert (decided.participant_id, decided.week_id) == (2, 200)
    # Neither awaits an answer: the most recently opened week.
    decided = decide(candidates=candidates, weeks=[done, week(200, 2, question=None)])
    assert (decided.kind, decided.participant_id) == ("extra", 1)
    # No week: the first candidate (most recently randomized).
    assert decide(candidates=candidates, weeks=[]).participant_id == 1


@given(body=st.text(max_size=30))
def test_a_reply_to_an_open_question_is_an_answer_exactly_when_it_reads_as_one(body):
    reading = sms_rules.classify(body, 0, 7)
    decided = decide(body)
    assert (decided.kind == "answer") == (reading.kind == "answer")
    assert decided.value == (reading.value if reading.kind == "answer" else None)
