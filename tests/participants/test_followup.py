"""Follow-up services: visits planned at randomization, re-planning after a schedule
change, attendance and misses, contact attempts and participant status changes.

Participants are randomized today; tests that need the past move the randomization (and
consent, and the planned visit dates) back with `backdate`, as if it had happened then.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, transaction

from participants import services
from participants.models import Allocation, ContactAttempt, Participant, StatusChange, Visit
from participants.services import followup, randomization
from tests import factories
from trial.models import Trial, VisitDefinition

Status = Participant.Status
Outcome = Visit.Outcome
DAY = dt.timedelta(days=1)


# --- Helpers -------------------------------------------------------------------------------


def randomize(participant, by, seed=1) -> Participant:
    services.participant_randomize(participant=participant, by=by, rng=random.Random(seed))
    return Participant.objects.get(pk=participant.pk)


def randomized(trial, site, by, seed=1) -> Participant:
    return randomize(factories.enrolled_participant(trial, site, by), by, seed)


def today(trial) -> dt.date:
    return services.trial_today(trial)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def visit(participant, code: str) -> Visit:
    return Visit.objects.get(participant=participant, definition__code=code)


def backdate(participant, n: int) -> Participant:
    """Pretend the participant consented and was randomized `n` days earlier."""
    p = Participant.objects.get(pk=participant.pk)
    Participant.objects.filter(pk=p.pk).update(
        consent_date=p.consent_date - days(n),
        randomized_on=p.randomized_on - days(n),
        randomized_at=p.randomized_at - days(n),
    )
    for v in Visit.objects.filter(participant=p):
        Visit.objects.filter(pk=v.pk).update(
            target_date=v.target_date - days(n),
            window_start=v.window_start - days(n),
            window_end=v.window_end - days(n),
            attended_on=v.attended_on - days(n) if v.attended_on else None,
        )
    return Participant.objects.get(pk=p.pk)


def visit_state(v: Visit):
    """Everything stored about a visit, and how many history rows it has."""
    return Visit.objects.filter(pk=v.pk).values().get(), Visit.history.filter(id=v.pk).count()


def participant_state(p: Participant):
    return (
        Participant.objects.filter(pk=p.pk).values().get(),
        sorted(Visit.objects.filter(participant=p).values_list("pk", "outcome")),
        StatusChange.objects.filter(participant=p).count(),
        p.history.count(),
    )


def change(participant, to_status, by, *, on=None, reason="Reason given", **kwargs):
    return services.participant_status_change(
        participant=participant,
        to_status=to_status,
        effective_on=on or today(participant.trial),
        reason=reason,
        by=by,
        **kwargs,
    )


# --- 1. Visits planned at randomization ---------------------------------------------------


def test_randomization_plans_the_three_modic_visits_with_their_windows(enrolled, clinician):
    participant = randomize(enrolled, clinician)
    r = participant.randomized_on
    assert r == today(participant.trial)
    visits = list(
        Visit.objects.filter(participant=participant).select_related("definition")
    )  # ordered by target date
    assert [v.definition.code for v in visits] == ["baseline", "w10", "y1"]
    baseline, w10, y1 = visits

    assert baseline.outcome == Outcome.COMPLETED
    assert baseline.attended_on == r
    assert baseline.in_window is True
    assert (baseline.target_date, baseline.window_start, baseline.window_end) == (r, r, r)
    assert baseline.recorded_by == clinician
    assert baseline.recorded_at is not None

    assert (w10.target_date, w10.window_start, w10.window_end) == (
        r + days(70), r + days(70 - 7), r + days(70 + 21),
    )  # fmt: skip
    assert (y1.target_date, y1.window_start, y1.window_end) == (
        r + days(434), r + days(434 - 14), r + days(434 + 42),
    )  # fmt: skip
    for v in (w10, y1):
        assert v.outcome == Outcome.OPEN
        assert v.attended_on is None and v.in_window is None
        assert v.recorded_by is None and v.recorded_at is None
    for v in visits:
        assert v.trial_id == participant.trial_id
        assert v.site_id == participant.site_id


def test_visits_of_a_participant_at_another_site_carry_that_site(modic, site2, clinician_site2):
    participant = randomized(modic, site2, clinician_site2)
    assert set(Visit.objects.filter(participant=participant).values_list("site_id", flat=True)) == {
        site2.pk
    }


def test_every_planned_visit_has_a_creation_history_row_by_the_randomizing_user(
    enrolled, clinician
):
    participant = randomize(enrolled, clinician)
    visit_ids = set(Visit.objects.filter(participant=participant).values_list("pk", flat=True))
    history = Visit.history.filter(id__in=visit_ids)
    assert {h.id for h in history} == visit_ids
    assert history.count() == 3
    assert {h.history_type for h in history} == {"+"}
    assert {h.history_user for h in history} == {clinician}


def test_a_refused_randomization_plans_no_visits(enrolled, clinician):
    Trial.objects.filter(pk=enrolled.trial_id).update(status=Trial.Status.CLOSED)
    with pytest.raises(ValidationError, match="not recruiting"):
        randomize(enrolled, clinician)
    assert not Visit.objects.exists()
    assert not Visit.history.exists()


def test_visits_are_planned_in_the_randomization_transaction(enrolled, clinician, monkeypatch):
    """A failure after the visits are written undoes the allocation and the visits alike."""
    real_execute = randomization.batch.execute

    def write_then_fail(statements):
        real_execute(statements)
        assert Visit.objects.filter(participant=enrolled).count() == 3
        assert Visit.history.filter(participant_id=enrolled.pk).count() == 3
        raise RuntimeError("crash after planning")

    monkeypatch.setattr(randomization.batch, "execute", write_then_fail)
    with pytest.raises(RuntimeError, match="crash after planning"):
        randomize(enrolled, clinician)
    assert not Visit.objects.exists()
    assert not Visit.history.exists()
    assert not Allocation.objects.exists()
    participant = Participant.objects.get(pk=enrolled.pk)
    assert participant.status == Status.ENROLLED
    assert participant.number is None


# --- 2. Schedule changes and re-planning ---------------------------------------------------


def move_w10_to_week_12(trial) -> VisitDefinition:
    definition = trial.visit_definitions.get(code="w10")
    definition.offset_days = 84
    definition.save()
    return definition


def test_a_schedule_change_affects_only_participants_randomized_afterwards(modic, site1, clinician):
    before = randomized(modic, site1, clinician)
    move_w10_to_week_12(modic)
    after = randomized(modic, site1, clinician)

    r = before.randomized_on
    w10 = visit(before, "w10")
    assert (w10.target_date, w10.window_start, w10.window_end) == (
        r + days(70), r + days(63), r + days(91),
    )  # fmt: skip
    r = after.randomized_on
    w10 = visit(after, "w10")
    assert (w10.target_date, w10.window_start, w10.window_end) == (
        r + days(84), r + days(77), r + days(105),
    )  # fmt: skip


def test_replanning_moves_open_visits_and_leaves_recorded_ones_alone(
    modic, site1, clinician, coordinator
):
    open_one = randomized(modic, site1, clinician)
    missed_one = randomized(modic, site1, clinician)
    attended_one = randomized(modic, site1, clinician)
    services.visit_record_missed(
        visit=visit(missed_one, "w10"), reason="Abroad", early_reason="Abroad all summer",
        by=clinician,
    )  # fmt: skip
    services.visit_record_attendance(
        visit=visit(attended_one, "w10"), attended_on=today(modic),
        early_reason="Seen early: travelling", by=clinician,
    )  # fmt: skip
    untouched = {
        v.pk: visit_state(v)
        for v in Visit.objects.exclude(participant=open_one, definition__code="w10")
    }
    move_w10_to_week_12(modic)

    changed = services.visits_replan(trial=modic, by=coordinator, reason="Amendment 2: week 12")

    assert changed == 1
    r = open_one.randomized_on
    w10 = visit(open_one, "w10")
    assert (w10.target_date, w10.window_start, w10.window_end) == (
        r + days(84), r + days(77), r + days(105),
    )  # fmt: skip
    assert w10.outcome == Outcome.OPEN
    for v in Visit.objects.exclude(pk=w10.pk):
        assert visit_state(v) == untouched[v.pk], v
    # Nothing left to do: a second run changes nothing.
    assert services.visits_replan(trial=modic, by=coordinator, reason="Again") == 0


def test_replanning_adds_visits_of_a_new_definition_to_those_still_followed(
    modic, site1, clinician, coordinator
):
    followed = randomized(modic, site1, clinician)
    lost = randomized(modic, site1, clinician)
    change(lost, Status.LOST, coordinator)
    withdrawn_from_followup = randomized(modic, site1, clinician)
    change(withdrawn_from_followup, Status.WITHDRAWN, coordinator, followup_allowed=False)
    dead = randomized(modic, site1, clinician)
    change(dead, Status.DECEASED, coordinator)
    not_randomized = factories.enrolled_participant(modic, site1, clinician)
    VisitDefinition.objects.create(
        trial=modic, code="m6", label="6 months", offset_days=182, window_before=14,
        window_after=14, order=3,
    )  # fmt: skip

    changed = services.visits_replan(trial=modic, by=coordinator, reason="Amendment 3: 6 months")

    assert changed == 2
    for participant in (followed, lost):
        m6 = visit(participant, "m6")
        r = participant.randomized_on
        assert (m6.target_date, m6.window_start, m6.window_end) == (
            r + days(182), r + days(168), r + days(196),
        )  # fmt: skip
        assert m6.outcome == Outcome.OPEN
        assert (m6.trial_id, m6.site_id) == (modic.pk, site1.pk)
        assert m6.history.get().history_change_reason == "Amendment 3: 6 months"
    for participant in (withdrawn_from_followup, dead, not_randomized):
        assert not Visit.objects.filter(participant=participant, definition__code="m6").exists()


def test_replanning_needs_a_reason_and_changes_nothing_without_one(
    modic, site1, clinician, coordinator
):
    participant = randomized(modic, site1, clinician)
    move_w10_to_week_12(modic)
    before = visit_state(visit(participant, "w10"))
    for reason in ("", "   "):
        with pytest.raises(ValidationError, match="reason"):
            services.visits_replan(trial=modic, by=coordinator, reason=reason)
    assert visit_state(visit(participant, "w10")) == before


def test_the_visit_history_records_who_replanned_and_why(modic, site1, clinician, coordinator):
    participant = randomized(modic, site1, clinician)
    old_target = visit(participant, "w10").target_date
    move_w10_to_week_12(modic)
    services.visits_replan(trial=modic, by=coordinator, reason="  Amendment 2: week 12 ")

    latest = visit(participant, "w10").history.order_by("-history_id").first()
    assert latest.history_type == "~"
    assert latest.history_user == coordinator
    assert latest.history_change_reason == "Amendment 2: week 12"
    assert latest.prev_record.target_date == old_target
    assert latest.target_date == old_target + days(14)


# --- 3. Visit status on a given day --------------------------------------------------------

START, END = dt.date(2026, 3, 10), dt.date(2026, 3, 31)


@pytest.mark.parametrize(
    ("outcome", "on", "expected"),
    [
        (Outcome.OPEN, START - DAY, "upcoming"),
        (Outcome.OPEN, START, "due"),
        (Outcome.OPEN, END, "due"),
        (Outcome.OPEN, END + DAY, "overdue"),
        (Outcome.COMPLETED, START - DAY, "completed"),
        (Outcome.COMPLETED, END + DAY, "completed"),
        (Outcome.MISSED, START, "missed"),
        (Outcome.MISSED, END + DAY, "missed"),
        (Outcome.NOT_REQUIRED, START - DAY, "not_required"),
        (Outcome.NOT_REQUIRED, END + DAY, "not_required"),
    ],
)
def test_visit_status_follows_from_the_window_and_what_was_recorded(outcome, on, expected):
    v = Visit(target_date=START + days(7), window_start=START, window_end=END, outcome=outcome)
    assert v.status(on) == expected


def test_a_planned_visit_becomes_due_then_overdue_as_time_passes(enrolled, clinician):
    participant = randomize(enrolled, clinician)
    t = today(participant.trial)
    assert visit(participant, "w10").status(t) == "upcoming"
    assert visit(participant, "baseline").status(t) == "completed"
    backdate(participant, 63)
    assert visit(participant, "w10").status(t) == "due"
    backdate(participant, 91 - 63 + 1)  # now randomized 92 days ago
    assert visit(participant, "w10").status(t) == "overdue"
    assert visit(participant, "y1").status(t) == "upcoming"


# --- 4. Attendance -------------------------------------------------------------------------


def test_attendance_inside_the_window_is_recorded_as_completed_in_window(
    enrolled, clinician, coordinator
):
    participant = backdate(randomize(enrolled, clinician), 70)
    w10 = services.visit_record_attendance(
        visit=visit(participant, "w10"), attended_on=today(participant.trial), by=coordinator
    )
    stored = Visit.objects.get(pk=w10.pk)
    assert stored.outcome == Outcome.COMPLETED
    assert stored.attended_on == today(participant.trial)
    assert stored.in_window is True
    assert stored.recorded_by == coordinator
    assert stored.recorded_at is not None
    assert stored.status(today(participant.trial)) == "completed"
    latest = stored.history.order_by("-history_id").first()
    assert latest.history_user == coordinator
    assert latest.outcome == Outcome.COMPLETED


@pytest.mark.parametrize(
    ("day", "in_window"),
    [(62, False), (63, True), (70, True), (91, True), (92, False), (100, False)],
)
def test_attendance_outside_the_window_is_completed_but_flagged(
    enrolled, clinician, coordinator, day, in_window
):
    participant = backdate(randomize(enrolled, clinician), 100)
    early = day < 63  # before the window opens: only with a confirmed reason
    services.visit_record_attendance(
        visit=visit(participant, "w10"),
        attended_on=participant.randomized_on + days(day),
        early_reason="Seen early: travelling" if early else "",
        by=coordinator,
    )
    w10 = visit(participant, "w10")
    assert w10.outcome == Outcome.COMPLETED
    assert w10.in_window is in_window
    assert w10.early_reason == ("Seen early: travelling" if early else "")


def test_an_attendance_before_the_window_opens_is_refused_without_a_reason(
    enrolled, clinician, coordinator
):
    """The audit's case: the 1-year visit of a participant randomized today."""
    participant = randomize(enrolled, clinician)
    y1 = visit(participant, "y1")
    before = visit_state(y1)
    for reason in ("", "   "):
        with pytest.raises(ValidationError) as err:
            services.visit_record_attendance(
                visit=y1, attended_on=today(participant.trial), early_reason=reason, by=coordinator
            )
        assert "opens on" in err.value.message_dict["early_reason"][0]
    assert visit_state(y1) == before


def test_an_attendance_before_the_window_opens_with_a_reason_is_kept_with_it_in_the_history(
    enrolled, clinician, coordinator
):
    participant = randomize(enrolled, clinician)
    services.visit_record_attendance(
        visit=visit(participant, "y1"), attended_on=today(participant.trial),
        early_reason=" Emigrates next month; seen before leaving ", by=coordinator,
    )  # fmt: skip
    y1 = visit(participant, "y1")
    assert (y1.outcome, y1.in_window) == (Outcome.COMPLETED, False)
    assert y1.early_reason == "Emigrates next month; seen before leaving"
    latest = y1.history.order_by("-history_id").first()
    assert latest.early_reason == y1.early_reason and latest.history_user == coordinator


def test_the_database_refuses_an_attendance_before_the_window_without_a_reason(enrolled, clinician):
    participant = randomize(enrolled, clinician)
    y1 = visit(participant, "y1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Visit.objects.filter(pk=y1.pk).update(
            outcome=Outcome.COMPLETED, attended_on=today(participant.trial), in_window=False
        )


@pytest.mark.parametrize(("days_ago", "early"), [(0, True), (80, True), (91, True), (92, False)])
def test_a_miss_before_the_window_closes_needs_a_reason_and_after_it_none(
    enrolled, clinician, coordinator, days_ago, early
):
    """The 10-week window closes on day 91: until then the visit can still take place."""
    participant = backdate(randomize(enrolled, clinician), days_ago)
    w10 = visit(participant, "w10")
    if early:
        before = visit_state(w10)
        with pytest.raises(ValidationError) as err:
            services.visit_record_missed(visit=w10, reason="Not reached", by=coordinator)
        assert "open until" in err.value.message_dict["early_reason"][0]
        assert visit_state(w10) == before
    services.visit_record_missed(
        visit=w10, reason="Not reached", early_reason="Refused any further visit",
        by=coordinator,
    )  # fmt: skip
    w10 = visit(participant, "w10")
    assert w10.outcome == Outcome.MISSED
    # Kept only when it was needed.
    assert w10.early_reason == ("Refused any further visit" if early else "")


def test_attendance_in_the_future_is_refused_and_nothing_changes(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    w10 = visit(participant, "w10")
    before = visit_state(w10)
    with pytest.raises(ValidationError) as err:
        services.visit_record_attendance(
            visit=w10, attended_on=today(participant.trial) + DAY, by=coordinator
        )
    assert "attended_on" in err.value.message_dict
    assert visit_state(w10) == before


def test_attendance_before_randomization_is_refused_and_nothing_changes(
    enrolled, clinician, coordinator
):
    participant = backdate(randomize(enrolled, clinician), 30)
    w10 = visit(participant, "w10")
    before = visit_state(w10)
    with pytest.raises(ValidationError) as err:
        services.visit_record_attendance(
            visit=w10, attended_on=participant.randomized_on - DAY, by=coordinator
        )
    assert "attended_on" in err.value.message_dict
    assert visit_state(w10) == before


def test_attendance_cannot_be_recorded_twice(enrolled, clinician, coordinator):
    participant = backdate(randomize(enrolled, clinician), 80)
    w10 = visit(participant, "w10")
    services.visit_record_attendance(
        visit=w10, attended_on=participant.randomized_on + days(70), by=coordinator
    )
    before = visit_state(w10)
    with pytest.raises(ValidationError, match="already recorded"):
        services.visit_record_attendance(
            visit=w10, attended_on=today(participant.trial), by=clinician
        )
    assert visit_state(w10) == before
    with pytest.raises(ValidationError, match="already recorded"):
        services.visit_record_attendance(
            visit=visit(participant, "baseline"),
            attended_on=today(participant.trial),
            by=clinician,
        )


@pytest.mark.parametrize(
    ("to_status", "kwargs", "message"),
    [
        (Status.WITHDRAWN, {"followup_allowed": False}, "refused further follow-up"),
        (Status.DECEASED, {}, "has died"),
    ],
)
def test_attendance_is_refused_for_participants_out_of_follow_up(
    enrolled, clinician, coordinator, to_status, kwargs, message
):
    participant = backdate(randomize(enrolled, clinician), 70)
    change(participant, to_status, coordinator, **kwargs)
    w10 = visit(participant, "w10")
    before = visit_state(w10)
    with pytest.raises(ValidationError, match=message):
        services.visit_record_attendance(
            visit=w10, attended_on=today(participant.trial), by=coordinator
        )
    assert visit_state(w10) == before


# --- 5. Missed visits ----------------------------------------------------------------------


def test_a_missed_visit_needs_a_reason(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    w10 = visit(participant, "w10")
    before = visit_state(w10)
    for reason in ("", "  "):
        with pytest.raises(ValidationError) as err:
            services.visit_record_missed(visit=w10, reason=reason, by=coordinator)
        assert "reason" in err.value.message_dict
    assert visit_state(w10) == before


def test_a_missed_visit_is_recorded_with_reason_and_who(enrolled, clinician, coordinator):
    participant = backdate(randomize(enrolled, clinician), 100)  # the window has closed
    services.visit_record_missed(
        visit=visit(participant, "w10"), reason="  Moved abroad ", by=coordinator
    )
    w10 = visit(participant, "w10")
    assert w10.outcome == Outcome.MISSED
    assert w10.missed_reason == "Moved abroad"
    assert w10.attended_on is None and w10.in_window is None and w10.early_reason == ""
    assert w10.recorded_by == coordinator and w10.recorded_at is not None
    assert w10.status(today(participant.trial)) == "missed"
    assert w10.history.order_by("-history_id").first().history_user == coordinator


def test_a_visit_cannot_be_recorded_missed_twice_or_after_attendance(
    enrolled, clinician, coordinator
):
    participant = randomize(enrolled, clinician)
    w10 = visit(participant, "w10")
    services.visit_record_missed(
        visit=w10, reason="Abroad", early_reason="Abroad until the window closes", by=coordinator
    )
    before = visit_state(w10)
    with pytest.raises(ValidationError, match="already recorded as missed"):
        services.visit_record_missed(visit=w10, reason="Ill", by=coordinator)
    assert visit_state(w10) == before
    with pytest.raises(ValidationError, match="already recorded as completed"):
        services.visit_record_missed(
            visit=visit(participant, "baseline"), reason="Ill", by=coordinator
        )


# --- 6. Contact attempts -------------------------------------------------------------------


def test_a_contact_attempt_stores_what_was_tried_and_by_whom(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    w10 = visit(participant, "w10")
    attempt = services.contact_attempt_log(
        participant=participant,
        method=ContactAttempt.Method.PHONE,
        result=ContactAttempt.Result.NO_ANSWER,
        note="  Tried twice  ",
        visit=w10,
        by=coordinator,
    )
    stored = ContactAttempt.objects.get(pk=attempt.pk)
    assert stored.participant == participant
    assert stored.visit == w10
    assert stored.method == "phone"
    assert stored.result == "no_answer"
    assert stored.note == "Tried twice"
    assert stored.by == coordinator
    assert stored.at is not None
    without_visit = services.contact_attempt_log(
        participant=participant, method="sms", result="message", by=clinician
    )
    assert without_visit.visit is None and without_visit.note == ""


def test_a_contact_attempt_about_another_participants_visit_is_refused(
    modic, site1, clinician, coordinator
):
    participant = randomized(modic, site1, clinician)
    other = randomized(modic, site1, clinician)
    with pytest.raises(ValidationError) as err:
        services.contact_attempt_log(
            participant=participant, method="phone", result="reached",
            visit=visit(other, "w10"), by=coordinator,
        )  # fmt: skip
    assert "visit" in err.value.message_dict
    assert not ContactAttempt.objects.exists()


@pytest.mark.parametrize(
    ("method", "result", "key"),
    [("pigeon", "reached", "method"), ("phone", "maybe", "result"), ("", "", "method")],
)
def test_a_contact_attempt_with_an_unknown_method_or_result_is_refused(
    enrolled, clinician, coordinator, method, result, key
):
    participant = randomize(enrolled, clinician)
    with pytest.raises(ValidationError) as err:
        services.contact_attempt_log(
            participant=participant, method=method, result=result, by=coordinator
        )
    assert key in err.value.message_dict
    assert not ContactAttempt.objects.exists()


def test_contacts_are_not_logged_for_participants_not_yet_randomized(enrolled, coordinator):
    with pytest.raises(ValidationError, match="randomized"):
        services.contact_attempt_log(
            participant=enrolled, method="phone", result="reached", by=coordinator
        )
    assert not ContactAttempt.objects.exists()


# --- 7. Status changes ---------------------------------------------------------------------


def test_a_withdrawal_must_say_whether_follow_up_may_continue(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    before = participant_state(participant)
    with pytest.raises(ValidationError) as err:
        change(participant, Status.WITHDRAWN, coordinator)
    assert "followup_allowed" in err.value.message_dict
    assert participant_state(participant) == before


def test_withdrawal_without_follow_up_closes_open_visits_and_blocks_attendance(
    enrolled, clinician, coordinator
):
    participant = backdate(randomize(enrolled, clinician), 70)
    change(participant, Status.WITHDRAWN, coordinator, followup_allowed=False, reason="Moved")

    participant.refresh_from_db()
    assert participant.status == Status.WITHDRAWN
    assert participant.followup_allowed is False
    assert participant.in_followup is False
    assert participant.status_changed_on == today(participant.trial)
    assert visit(participant, "baseline").outcome == Outcome.COMPLETED
    for code in ("w10", "y1"):
        v = visit(participant, code)
        assert v.outcome == Outcome.NOT_REQUIRED
        assert v.status(today(participant.trial)) == "not_required"
        assert v.recorded_by == coordinator
    with pytest.raises(ValidationError, match="refused further follow-up"):
        services.visit_record_attendance(
            visit=visit(participant, "w10"), attended_on=today(participant.trial), by=clinician
        )
    assert StatusChange.objects.get(participant=participant).followup_allowed is False


def test_withdrawal_with_follow_up_keeps_visits_open_and_attendance_possible(
    enrolled, clinician, coordinator
):
    participant = backdate(randomize(enrolled, clinician), 70)
    change(participant, Status.WITHDRAWN, coordinator, followup_allowed=True)

    participant.refresh_from_db()
    assert participant.status == Status.WITHDRAWN
    assert participant.followup_allowed is True
    assert participant.in_followup is True
    assert visit(participant, "w10").outcome == Outcome.OPEN
    assert visit(participant, "y1").outcome == Outcome.OPEN
    services.visit_record_attendance(
        visit=visit(participant, "w10"), attended_on=today(participant.trial), by=clinician
    )
    w10 = visit(participant, "w10")
    assert w10.outcome == Outcome.COMPLETED and w10.in_window is True
    assert StatusChange.objects.get(participant=participant).followup_allowed is True


def test_withdrawing_twice_is_refused(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    change(participant, Status.WITHDRAWN, coordinator, followup_allowed=False)
    before = participant_state(participant)
    with pytest.raises(ValidationError, match="already withdrawn"):
        change(participant, Status.WITHDRAWN, coordinator, followup_allowed=False)
    with pytest.raises(ValidationError, match="already withdrawn"):
        change(participant, Status.WITHDRAWN, coordinator, followup_allowed=True)
    assert participant_state(participant) == before


def test_a_participant_withdrawn_with_follow_up_can_later_refuse_it(
    enrolled, clinician, coordinator
):
    participant = randomize(enrolled, clinician)
    change(participant, Status.WITHDRAWN, coordinator, followup_allowed=True)
    assert participant.visits.filter(outcome="open").count() == 2
    change(participant, Status.WITHDRAWN, coordinator, followup_allowed=False)
    participant.refresh_from_db()
    assert participant.status == Status.WITHDRAWN and not participant.followup_allowed
    assert not participant.visits.filter(outcome="open").exists()
    assert participant.visits.filter(outcome="not_required").count() == 2
    last = participant.status_changes.last()
    assert (last.from_status, last.to_status, last.followup_allowed) == (
        "withdrawn",
        "withdrawn",
        False,
    )


def test_a_withdrawn_participant_cannot_be_completed(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    change(participant, Status.WITHDRAWN, coordinator, followup_allowed=False)
    before = participant_state(participant)
    with pytest.raises(ValidationError) as err:
        change(participant, Status.COMPLETED, coordinator)
    assert "cannot become completed" in err.value.message_dict["to_status"][0]
    assert participant_state(participant) == before


def test_completing_is_refused_while_visits_are_open(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    before = participant_state(participant)
    with pytest.raises(ValidationError) as err:
        change(participant, Status.COMPLETED, coordinator)
    assert "2 visit(s) are still open" in err.value.message_dict["to_status"][0]
    assert participant_state(participant) == before


def test_completing_after_every_visit_is_recorded_works(enrolled, clinician, coordinator):
    participant = backdate(randomize(enrolled, clinician), 440)
    services.visit_record_attendance(
        visit=visit(participant, "w10"),
        attended_on=participant.randomized_on + days(70),
        by=clinician,
    )
    services.visit_record_attendance(
        visit=visit(participant, "y1"), attended_on=today(participant.trial), by=clinician
    )
    change(participant, Status.COMPLETED, coordinator, reason="Follow-up complete")
    participant.refresh_from_db()
    assert participant.status == Status.COMPLETED
    assert (
        list(Visit.objects.filter(participant=participant).values_list("outcome", flat=True))
        == [Outcome.COMPLETED] * 3
    )
    row = StatusChange.objects.get(participant=participant)
    assert (row.from_status, row.to_status) == (Status.ACTIVE, Status.COMPLETED)


def test_lost_to_follow_up_misses_opened_visits_and_keeps_later_ones(
    enrolled, clinician, coordinator
):
    participant = backdate(randomize(enrolled, clinician), 100)  # w10 window opened, y1 not
    change(participant, Status.LOST, coordinator, reason="No answer for 3 months")

    participant.refresh_from_db()
    assert participant.status == Status.LOST
    w10, y1 = visit(participant, "w10"), visit(participant, "y1")
    assert w10.outcome == Outcome.MISSED
    assert w10.missed_reason == "Participant lost to follow-up"
    assert w10.recorded_by == coordinator
    assert y1.outcome == Outcome.OPEN
    assert y1.status(today(participant.trial)) == "upcoming"


def test_losing_a_participant_misses_only_visits_whose_window_has_closed(
    enrolled, clinician, coordinator
):
    # Window of w10: days 63–91. On day 91 it is still open: the participant may yet call
    # back and attend, so the visit must stay recordable.
    still_open = backdate(randomize(enrolled, clinician), 91)
    change(still_open, Status.LOST, coordinator)
    assert visit(still_open, "w10").outcome == Outcome.OPEN
    change(still_open, Status.ACTIVE, coordinator, reason="Called back")
    services.visit_record_attendance(
        visit=visit(still_open, "w10"), attended_on=today(still_open.trial), by=coordinator
    )
    assert visit(still_open, "w10").outcome == Outcome.COMPLETED


def test_a_participant_lost_to_follow_up_can_be_found_again(enrolled, clinician, coordinator):
    participant = backdate(randomize(enrolled, clinician), 100)
    change(participant, Status.LOST, coordinator)
    change(participant, Status.ACTIVE, coordinator, reason="Called back")

    participant.refresh_from_db()
    assert participant.status == Status.ACTIVE
    assert visit(participant, "w10").outcome == Outcome.MISSED
    assert visit(participant, "y1").outcome == Outcome.OPEN
    assert list(
        StatusChange.objects.filter(participant=participant).values_list("from_status", "to_status")
    ) == [(Status.ACTIVE, Status.LOST), (Status.LOST, Status.ACTIVE)]


def test_death_makes_open_visits_not_required(enrolled, clinician, coordinator):
    participant = backdate(randomize(enrolled, clinician), 100)
    services.visit_record_attendance(
        visit=visit(participant, "w10"),
        attended_on=participant.randomized_on + days(70),
        by=clinician,
    )
    change(participant, Status.DECEASED, coordinator, reason="Reported by GP")
    participant.refresh_from_db()
    assert participant.status == Status.DECEASED
    assert visit(participant, "w10").outcome == Outcome.COMPLETED
    assert visit(participant, "y1").outcome == Outcome.NOT_REQUIRED


@pytest.mark.parametrize("when", ["tomorrow", "before randomization"])
def test_an_effective_date_in_the_future_or_before_randomization_is_refused(
    enrolled, clinician, coordinator, when
):
    participant = backdate(randomize(enrolled, clinician), 10)
    on = {
        "tomorrow": today(participant.trial) + DAY,
        "before randomization": participant.randomized_on - DAY,
    }[when]
    before = participant_state(participant)
    with pytest.raises(ValidationError) as err:
        change(participant, Status.DECEASED, coordinator, on=on)
    assert "effective_on" in err.value.message_dict
    assert participant_state(participant) == before


def test_a_status_change_needs_a_reason(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    before = participant_state(participant)
    for reason in ("", "  "):
        with pytest.raises(ValidationError) as err:
            change(participant, Status.LOST, coordinator, reason=reason)
        assert "reason" in err.value.message_dict
    assert participant_state(participant) == before


def test_every_status_change_is_audited_with_from_to_who_and_why(enrolled, clinician, coordinator):
    participant = backdate(randomize(enrolled, clinician), 20)
    steps = [
        (Status.LOST, coordinator, {}, "No answer"),
        (Status.ACTIVE, clinician, {}, "Called back"),
        (Status.WITHDRAWN, coordinator, {"followup_allowed": True}, "Stopped treatment"),
        (Status.DECEASED, clinician, {}, "Reported by family"),
    ]
    previous = Status.ACTIVE
    for n, (to_status, user, kwargs, reason) in enumerate(steps, 1):
        on = participant.randomized_on + days(n)
        change(participant, to_status, user, on=on, reason=f" {reason} ", **kwargs)
        row = StatusChange.objects.filter(participant=participant).order_by("-pk").first()
        assert StatusChange.objects.filter(participant=participant).count() == n
        assert (row.from_status, row.to_status) == (previous, to_status)
        assert row.by == user
        assert row.reason == reason
        assert row.effective_on == on
        assert row.followup_allowed == kwargs.get("followup_allowed")
        latest = participant.history.order_by("-history_id").first()
        assert latest.history_user == user
        assert latest.status == to_status
        assert latest.status_changed_on == on
        assert latest.prev_record.status == previous
        previous = to_status


def test_an_unknown_or_impossible_status_is_refused(enrolled, clinician, coordinator):
    participant = randomize(enrolled, clinician)
    before = participant_state(participant)
    for to_status in ("on_holiday", Status.ENROLLED):
        with pytest.raises(ValidationError) as err:
            change(participant, to_status, coordinator)
        assert "to_status" in err.value.message_dict
    assert participant_state(participant) == before


def test_a_participant_withdrawn_before_randomization_has_no_number_and_cannot_be_randomized(
    enrolled, clinician, coordinator
):
    change(
        enrolled, Status.WITHDRAWN, coordinator, on=enrolled.consent_date,
        reason="Changed mind", followup_allowed=False,
    )  # fmt: skip
    participant = Participant.objects.get(pk=enrolled.pk)
    assert participant.status == Status.WITHDRAWN
    assert participant.number is None
    assert participant.randomized_at is None
    row = StatusChange.objects.get(participant=participant)
    assert (row.from_status, row.to_status) == (Status.ENROLLED, Status.WITHDRAWN)

    with pytest.raises(ValidationError, match="withdrawn and cannot be randomized"):
        randomize(participant, clinician)
    participant.refresh_from_db()
    assert participant.status == Status.WITHDRAWN
    assert participant.number is None
    assert not Allocation.objects.exists()
    assert not Visit.objects.exists()
    modic = Trial.objects.get(pk=participant.trial_id)
    assert modic.allocation_count == 0


def test_a_withdrawal_before_consent_is_refused(enrolled, coordinator):
    with pytest.raises(ValidationError) as err:
        change(
            enrolled, Status.WITHDRAWN, coordinator, on=enrolled.consent_date - DAY,
            followup_allowed=False,
        )  # fmt: skip
    assert "effective_on" in err.value.message_dict
    assert Participant.objects.get(pk=enrolled.pk).status == Status.ENROLLED


# --- 8. Intention to treat -----------------------------------------------------------------


def test_withdrawn_and_deceased_participants_keep_their_allocation(
    modic, site1, clinician, coordinator
):
    withdrawn = randomized(modic, site1, clinician)
    dead = randomized(modic, site1, clinician)
    allocations = {
        a.participant_id: (a.pk, a.sequence, a.arm_id)
        for a in Allocation.objects.filter(trial=modic)
    }
    change(withdrawn, Status.WITHDRAWN, coordinator, followup_allowed=False)
    change(dead, Status.DECEASED, coordinator)

    for participant in (withdrawn, dead):
        participant = Participant.objects.get(pk=participant.pk)
        a = participant.allocation
        assert (a.pk, a.sequence, a.arm_id) == allocations[participant.pk]
        assert participant.number is not None and participant.is_randomized
        assert Visit.objects.filter(participant=participant).count() == 3
    assert Allocation.objects.filter(trial=modic).count() == 2
    assert Participant.objects.filter(trial=modic, allocation__isnull=False).count() == 2
    modic.refresh_from_db()
    assert modic.allocation_count == 2


# --- 9. Concurrency (PostgreSQL) -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_attendance_records_for_one_visit_let_exactly_one_win(
    modic, site1, clinician, coordinator, monkeypatch
):
    # Widen the race: pause between reading the visit and writing it, so without the row
    # lock both threads would read it open and both would "win".
    real_check = followup.not_in_future

    def slow_check(*args, **kwargs):
        time.sleep(0.3)
        return real_check(*args, **kwargs)

    monkeypatch.setattr(followup, "not_in_future", slow_check)
    participant = backdate(randomized(modic, site1, clinician), 70)
    w10 = visit(participant, "w10")
    on = today(modic)
    barrier = threading.Barrier(2)
    results: list[object] = []
    errors: list[BaseException] = []

    def record(user):
        try:
            barrier.wait(timeout=30)
            results.append(services.visit_record_attendance(visit=w10, attended_on=on, by=user))
        except BaseException as exc:  # noqa: BLE001 - inspected below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=record, args=(u,)) for u in (clinician, coordinator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "an attendance record hung"

    assert len(results) == 1, (results, errors)
    assert len(errors) == 1
    assert isinstance(errors[0], ValidationError)
    assert "already recorded" in errors[0].messages[0]
    stored = Visit.objects.get(pk=w10.pk)
    assert stored.outcome == Outcome.COMPLETED
    assert stored.recorded_by == results[0].recorded_by
    assert stored.history.filter(history_type="~").count() == 1


def test_a_status_change_cannot_be_dated_before_the_previous_one_or_death_before_a_visit(
    modic, site1, clinician
):
    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=participant, by=clinician, rng=random.Random(3))
    today = services.trial_today(modic)
    start = today - dt.timedelta(days=120)
    Participant.objects.filter(pk=participant.pk).update(randomized_on=start, consent_date=start)
    visit = Visit.objects.get(participant=participant, definition__code="w10")
    Visit.objects.filter(pk=visit.pk).update(
        target_date=start + dt.timedelta(days=70),
        window_start=start + dt.timedelta(days=63),
        window_end=start + dt.timedelta(days=91),
    )
    services.visit_record_attendance(
        visit=visit, attended_on=start + dt.timedelta(days=70), by=clinician
    )
    with pytest.raises(ValidationError, match="cannot precede it"):
        services.participant_status_change(
            participant=participant, to_status="deceased",
            effective_on=start + dt.timedelta(days=60), reason="Died", by=clinician,
        )  # fmt: skip
    services.participant_status_change(
        participant=participant, to_status="lost",
        effective_on=start + dt.timedelta(days=100), reason="Not reachable", by=clinician,
    )  # fmt: skip
    with pytest.raises(ValidationError, match="previous status change"):
        services.participant_status_change(
            participant=participant, to_status="deceased",
            effective_on=start + dt.timedelta(days=95), reason="Died", by=clinician,
        )  # fmt: skip
    assert Participant.objects.get(pk=participant.pk).status == "lost"
