"""The dashboard's maintained SMS totals (outcomes.sms.sms_totals) equal a recount of the answers
and weeks after everything that stores them: the weekly job, answers, clarifications,
extras, late replies, opt-out; concurrent answers on PostgreSQL; the bulk loaders; and the
check command finds and repairs a difference."""

# The SMS fixtures are test_tracking's, imported: pytest passes them by argument name,
# which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import random
import uuid

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from outcomes.results import analysis_data, selectors
from outcomes.sms import sms_totals, tracking
from outcomes.sms.models import SmsAnswer, SmsParticipantTotal, SmsQuestionWeekTotal, SmsWeek
from participants.models import Participant
from tests.outcomes.sms.test_tracking import (  # noqa: F401 - fixtures
    DAY,
    SUNDAY,
    WEEK,
    _celery_eager,
    at,
    enroll,
    outbox,
    reply,
    sms_file,
    weekly,
)
from tests.participants.test_concurrency import run_concurrently


def arms_of(participants) -> set[str]:
    return {p.allocation.arm.code for p in participants}


@pytest.fixture
def tracked(enroll):
    """Twelve participants in both arms, randomized over three weeks."""
    people = [enroll(SUNDAY - (3 + 7 * (i % 3)) * DAY) for i in range(12)]
    assert len(arms_of(people)) == 2
    return people


def replies_for_weeks(tracked, weekly, reply, weeks: int, seed: int = 3) -> None:
    """`weeks` Sundays of the weekly job, each followed by a random mix of replies: valid
    answers, unreadable ones, a few extras after completion, silence."""
    rng = random.Random(seed)
    for n in range(weeks):
        sunday = SUNDAY + n * WEEK
        weekly(at(sunday, 18, 1))
        for minute, p in enumerate(tracked):
            for k, body in enumerate(
                rng.choice([["3", "1"], ["7"], ["x", "2", "0"], [], ["5", "0", "4"], ["9", "6"]])
            ):
                reply(p, body, at(sunday, 19, minute) + k * dt.timedelta(seconds=20))


def test_totals_equal_a_recount_after_weeks_of_replies(modic, tracked, weekly, reply):
    replies_for_weeks(tracked, weekly, reply, weeks=3)
    assert SmsAnswer.objects.count() > 20
    assert sms_totals.compare(modic.pk) == []
    # An opt-out, a late reply and the next week: still exact.
    reply(tracked[0], "STOP", at(SUNDAY + 3 * WEEK, 9))
    reply(tracked[1], "4", at(SUNDAY + 3 * WEEK, 17))
    weekly(at(SUNDAY + 3 * WEEK, 18, 1))
    assert sms_totals.compare(modic.pk) == []


def test_the_dashboard_summaries_equal_the_answers_summarised_directly(
    modic, tracked, weekly, reply
):
    replies_for_weeks(tracked, weekly, reply, weeks=2)
    answers = pd.DataFrame.from_records(
        list(
            SmsAnswer.objects.values_list(
                "question__code", "week__week", "participant__allocation__arm__code",
                "participant_id", "value",
            )
        ),
        columns=["question", "week", "arm", "participant", "value"],
    )  # fmt: skip
    cells, means = analysis_data.sms_summaries(modic)

    direct = answers.groupby(["question", "week", "arm"])["value"].agg(["count", "mean"])
    got = cells.set_index(["question", "week", "arm"]).sort_index()
    assert got["count"].to_dict() == direct["count"].to_dict()
    assert got["mean"].to_dict() == pytest.approx(direct["mean"].to_dict())

    per_person = answers.groupby(["question", "arm", "participant"])["value"].mean()
    got = means.set_index(["question", "arm", "participant"])["mean"].sort_index()
    assert got.to_dict() == pytest.approx(per_person.to_dict())


def test_response_rates_count_weeks_sent_answered_and_complete(modic, tracked, weekly, reply):
    replies_for_weeks(tracked, weekly, reply, weeks=2)
    rows = selectors.sms_response_rates(modic)
    weeks = SmsWeek.objects.filter(trial=modic).select_related("participant__allocation__arm")
    expected: dict[tuple, list[int]] = {}
    for w in weeks:
        cell = expected.setdefault((w.week, w.participant.allocation.arm.code), [0, 0, 0])
        cell[0] += 1
        cell[1] += w.answered > 0
        cell[2] += w.completed_at is not None
    assert {(r["week"], r["arm"]): [r["sent"], r["answered"], r["complete"]] for r in rows} == (
        expected
    )
    assert [(r["week"], r["arm"]) for r in rows] == sorted(expected)


def test_the_dashboard_reads_the_totals_in_a_fixed_number_of_queries(
    modic, tracked, weekly, reply, django_assert_max_num_queries
):
    replies_for_weeks(tracked, weekly, reply, weeks=1)
    with django_assert_max_num_queries(2) as first:
        analysis_data.sms_summaries(modic)
    replies_for_weeks(tracked, weekly, reply, weeks=2, seed=5)
    with django_assert_max_num_queries(len(first.captured_queries)):
        analysis_data.sms_summaries(modic)
    assert "smsanswer" not in " ".join(q["sql"] for q in first.captured_queries).lower()


def test_rebuild_gives_the_same_totals_as_answering_one_by_one(modic, tracked, weekly, reply):
    replies_for_weeks(tracked, weekly, reply, weeks=2)
    before = sms_totals.stored(modic.pk)
    sms_totals.rebuild([modic.pk])
    assert sms_totals.stored(modic.pk) == before


def test_an_answer_from_someone_without_an_allocation_adds_nothing_and_fails_nothing(
    modic, tracked, weekly, reply
):
    # Cannot happen through the services (only randomized participants are sent questions),
    # but a bulk-loaded or repaired database might have it: the answer must still be stored,
    # so the totals must not raise, and they must stay equal to the recount (inner join).
    replies_for_weeks(tracked, weekly, reply, weeks=1)
    before = sms_totals.stored(modic.pk)
    question = SmsQuestionWeekTotal.objects.filter(trial=modic).first().question_id
    nobody = Participant.objects.order_by("-pk").first().pk + 1_000
    sms_totals.answer_recorded(
        trial_id=modic.pk, participant_id=nobody, question_id=question, week=1, value=3,
        first_of_week=True, completes_week=True,
    )  # fmt: skip
    assert sms_totals.stored(modic.pk) == before
    assert sms_totals.compare(modic.pk) == []


def test_the_check_command_reports_a_difference_and_repairs_it(
    modic, tracked, weekly, reply, capsys
):
    replies_for_weeks(tracked, weekly, reply, weeks=1)
    call_command("sms_totals_check")
    assert "equal the recount" in capsys.readouterr().out

    SmsQuestionWeekTotal.objects.filter(trial=modic).update(answers=999)
    SmsParticipantTotal.objects.filter(trial=modic).delete()
    with pytest.raises(CommandError, match="differ for MOD"):
        call_command("sms_totals_check", trial="MOD")
    out = capsys.readouterr().out
    assert "stored (999," in out

    call_command("sms_totals_check", trial="MOD", repair=True)
    assert "repaired" in capsys.readouterr().out
    assert sms_totals.compare(modic.pk) == []
    with pytest.raises(CommandError, match="No trial"):
        call_command("sms_totals_check", trial="NOPE")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_answers_in_the_same_week_and_arm_lose_no_count(modic, enroll, weekly):
    """Twenty participants randomized the same day answer at the same moment, each on their
    own connection: they all add to the same (question, week, arm) rows."""
    assert connection.vendor == "postgresql"
    people = [enroll(SUNDAY - 3 * DAY) for _ in range(20)]
    weekly(at(SUNDAY, 18, 1))

    def answer(p: Participant, body: str):
        return lambda: tracking.sms_receive(
            gateway_message_id=f"SM{uuid.uuid4().hex}",
            from_number=p.phone,
            body=body,
            received_at=at(SUNDAY, 19),
        )

    run_concurrently([answer(p, str(i % 8)) for i, p in enumerate(people)])
    run_concurrently([answer(p, str((i * 3) % 8)) for i, p in enumerate(people)])
    assert SmsAnswer.objects.count() == 40
    assert sms_totals.compare(modic.pk) == []
    totals = SmsQuestionWeekTotal.objects.filter(trial=modic)
    assert sum(t.answers for t in totals) == 40
