"""Reversing a status change entered in error: the pure decision (participants.status_reversal,
property-tested), the service that applies it (append-only rows, the previous status and
follow-up restored, visits the change closed reopened unless recorded since, SMS again),
and the participant's pages."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import random

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from hypothesis import given
from hypothesis import strategies as st
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from participants import services, status_reversal
from participants.models import Participant, StatusChange, Visit
from participants.services.followup import ALLOWED_CHANGES
from participants.status_reversal import Change, ClosedVisit
from tests import factories
from tests.participants.test_followup import backdate, randomized, today, visit
from tests.participants.test_views import url

Status = Participant.Status
Outcome = Visit.Outcome
D0 = dt.date(2026, 1, 1)


# --- The decision (pure) -----------------------------------------------------------------------


def test_the_module_is_pure():
    tree = ast.parse(inspect.getsource(status_reversal))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.split(".")[0] in {"django", "participants", "trial"} for name in imported)


@st.composite
def histories(draw):
    """A participant's status history built by random forward changes (the service's allowed
    transitions) and reversals of the latest effective change, with the state (status,
    follow-up allowed, status date) after each step; every reversal's expected result is the
    state before the change it reverses."""
    status, followup, changed_on = Status.ACTIVE.value, True, None
    changes: list[Change] = []
    stack: list[tuple[Change, tuple]] = []  # effective changes and the state before each
    checks: list[tuple[list[Change], Change, tuple, tuple]] = []
    day = D0
    for n in range(1, draw(st.integers(1, 12)) + 1):
        day += dt.timedelta(days=draw(st.integers(0, 30)))
        options = sorted(ALLOWED_CHANGES[status])
        if status == Status.WITHDRAWN and followup:
            options.append(Status.WITHDRAWN.value)
        reverse = bool(stack) and (not options or draw(st.booleans()))
        if reverse:
            target, before = stack.pop()
            checks.append((list(changes), target, (status, followup), before))
            changes.append(
                Change(n, status, before[0], target.effective_on,
                       before[1] if before[0] == Status.WITHDRAWN else None, reverses_id=target.id)
            )  # fmt: skip
            status, followup, changed_on = before
            continue
        if not options:
            break
        to = draw(st.sampled_from(options))
        allowed = None
        if to == Status.WITHDRAWN:
            allowed = False if status == Status.WITHDRAWN else draw(st.booleans())
        change = Change(n, status, to, day, allowed)
        stack.append((change, (status, followup, changed_on)))
        changes.append(change)
        status = to
        followup = allowed if to == Status.WITHDRAWN else followup
        changed_on = day
    return changes, checks, (status, followup, changed_on), stack


@given(histories())
def test_a_reversal_restores_exactly_the_state_before_the_change_it_reverses(history):
    changes, checks, _, _ = history
    for before_changes, target, (status, followup), expected in checks:
        assert status_reversal.reversible(before_changes) == target
        decision = status_reversal.decide(
            changes=before_changes,
            change_id=target.id,
            status=status,
            followup_allowed=followup,
            visits=(),
        )
        assert decision.refusal is None
        assert (decision.to_status, decision.followup_allowed, decision.status_changed_on) == (
            expected
        )
        assert decision.from_status == status


@given(histories())
def test_only_the_latest_effective_change_can_be_reversed(history):
    changes, _, (status, followup, _), stack = history
    latest = stack[-1][0] if stack else None
    assert status_reversal.reversible(changes) == latest
    for change in changes:
        decision = status_reversal.decide(
            changes=changes, change_id=change.id, status=status, followup_allowed=followup,
            visits=(),
        )  # fmt: skip
        if change == latest:
            assert decision.refusal is None
        elif change.reverses_id is not None:
            assert decision.refusal == "is_reversal"
        elif any(c.reverses_id == change.id for c in changes):
            assert decision.refusal == "already_reversed"
        else:
            assert decision.refusal == "not_latest"


@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, None]),
            st.sampled_from(["open", "completed", "missed", "not_required"]),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_visits_the_change_closed_reopen_unless_something_was_recorded_since(specs):
    visits = [
        ClosedVisit(id=i, outcome=outcome, closed_by_id=by, recorded_since=since)
        for i, (by, outcome, since) in enumerate(specs, 1)
    ]
    change = Change(2, Status.ACTIVE, Status.LOST, D0, None)
    decision = status_reversal.decide(
        changes=[change], change_id=2, status=Status.LOST, followup_allowed=True, visits=visits
    )
    closed = {v.id for v in visits if v.closed_by_id == 2}
    assert set(decision.reopen) | set(decision.kept) == closed
    assert not set(decision.reopen) & set(decision.kept)
    for v in visits:
        if v.id in decision.reopen:
            assert v.outcome in ("missed", "not_required") and not v.recorded_since


def test_an_unknown_change_or_a_status_that_moved_is_refused():
    change = Change(1, Status.ACTIVE, Status.WITHDRAWN, D0, False)
    decide = status_reversal.decide
    assert decide(changes=[change], change_id=9, status="withdrawn", followup_allowed=False,
                  visits=()).refusal == "not_latest"  # fmt: skip
    assert decide(changes=[change], change_id=1, status="deceased", followup_allowed=False,
                  visits=()).refusal == "status_moved"  # fmt: skip


# --- The service -------------------------------------------------------------------------------


def withdraw(participant, by, *, followup_allowed=False, on=None, reason="Asked to stop"):
    return services.participant_status_change(
        participant=participant, to_status=Status.WITHDRAWN,
        effective_on=on or participant.randomized_on, reason=reason,
        followup_allowed=followup_allowed, by=by,
    )  # fmt: skip


def latest_change(participant) -> StatusChange:
    return StatusChange.objects.filter(participant=participant).order_by("-at", "-pk").first()


def test_a_withdrawal_entered_in_error_is_reversed_and_its_visits_open_again(
    modic, site1, clinician, coordinator
):
    participant = backdate(randomized(modic, site1, clinician), 20)
    before = {v.pk: v.outcome for v in participant.visits.all()}
    withdraw(participant, clinician)
    assert set(participant.visits.values_list("outcome", flat=True)) == {
        Outcome.COMPLETED, Outcome.NOT_REQUIRED,
    }  # fmt: skip
    change = latest_change(participant)

    result = services.status_change_reverse(
        change=change, reason="Wrong participant: entered in error", by=coordinator
    )

    participant.refresh_from_db()
    assert participant.status == Status.ACTIVE
    assert participant.followup_allowed is True
    assert participant.status_changed_on is None
    assert {v.pk: v.outcome for v in participant.visits.all()} == before
    for v in participant.visits.exclude(definition__at_randomization=True):
        assert (v.missed_reason, v.recorded_by, v.recorded_at, v.closed_by) == (
            "",
            None,
            None,
            None,
        )
        last = v.history.order_by("-history_id").first()
        assert last.history_change_reason.endswith("Wrong participant: entered in error")
        assert last.history_user == coordinator
    # Append-only: the withdrawal stays, and the reversal is a row of its own.
    rows = list(StatusChange.objects.filter(participant=participant).order_by("at", "pk"))
    assert [(r.from_status, r.to_status, r.reverses_id) for r in rows] == [
        (Status.ACTIVE, Status.WITHDRAWN, None),
        (Status.WITHDRAWN, Status.ACTIVE, change.pk),
    ]
    assert result.reversal == rows[1]
    assert (rows[1].reason, rows[1].by) == ("Wrong participant: entered in error", coordinator)
    history = participant.history.order_by("-history_id").first()
    assert history.history_change_reason.endswith("Wrong participant: entered in error")
    assert history.history_user == coordinator


def test_a_reversed_loss_to_follow_up_reopens_the_visits_it_marked_missed(modic, site1, clinician):
    participant = backdate(randomized(modic, site1, clinician), 100)  # the 10-week window closed
    services.participant_status_change(
        participant=participant, to_status=Status.LOST, effective_on=today(modic),
        reason="No answer for months", by=clinician,
    )  # fmt: skip
    assert visit(participant, "w10").outcome == Outcome.MISSED
    assert visit(participant, "y1").outcome == Outcome.OPEN
    services.status_change_reverse(
        change=latest_change(participant), reason="Was on holiday", by=clinician
    )
    assert visit(participant, "w10").outcome == Outcome.OPEN
    assert Participant.objects.get(pk=participant.pk).status == Status.ACTIVE


def test_a_visit_recorded_since_the_change_is_left_as_it_is(modic, site1, clinician):
    participant = backdate(randomized(modic, site1, clinician), 100)
    services.participant_status_change(
        participant=participant, to_status=Status.LOST, effective_on=today(modic),
        reason="No answer for months", by=clinician,
    )  # fmt: skip
    w10 = visit(participant, "w10")
    later = w10.recorded_at + dt.timedelta(minutes=5)
    Visit.objects.filter(pk=w10.pk).update(recorded_at=later, missed_reason="Refused on the phone")

    result = services.status_change_reverse(
        change=latest_change(participant), reason="Was on holiday", by=clinician
    )

    w10.refresh_from_db()
    assert (w10.outcome, w10.missed_reason) == (Outcome.MISSED, "Refused on the phone")
    assert [v.pk for v in result.kept] == [w10.pk]


def test_reversals_unwind_changes_one_at_a_time_latest_first(modic, site1, clinician):
    participant = backdate(randomized(modic, site1, clinician), 100)
    services.participant_status_change(
        participant=participant, to_status=Status.LOST, effective_on=today(modic) - dt.timedelta(2),
        reason="Not reachable", by=clinician,
    )  # fmt: skip
    withdraw(participant, clinician, on=today(modic))
    lost, withdrawal = StatusChange.objects.filter(participant=participant).order_by("at", "pk")

    with pytest.raises(ValidationError, match="latest"):
        services.status_change_reverse(change=lost, reason="Error", by=clinician)
    services.status_change_reverse(change=withdrawal, reason="Error", by=clinician)
    participant.refresh_from_db()
    assert (participant.status, participant.followup_allowed) == (Status.LOST, True)
    assert participant.status_changed_on == today(modic) - dt.timedelta(2)
    assert visit(participant, "y1").outcome == Outcome.OPEN
    assert visit(participant, "w10").outcome == Outcome.MISSED  # the loss still stands

    with pytest.raises(ValidationError, match="already reversed"):
        services.status_change_reverse(change=withdrawal, reason="Again", by=clinician)
    services.status_change_reverse(change=lost, reason="Error", by=clinician)
    participant.refresh_from_db()
    assert (participant.status, participant.status_changed_on) == (Status.ACTIVE, None)
    assert visit(participant, "w10").outcome == Outcome.OPEN


def test_a_reversal_itself_cannot_be_reversed(modic, site1, clinician):
    participant = randomized(modic, site1, clinician)
    withdraw(participant, clinician)
    result = services.status_change_reverse(
        change=latest_change(participant), reason="Error", by=clinician
    )
    with pytest.raises(ValidationError, match="new status change"):
        services.status_change_reverse(change=result.reversal, reason="Undo", by=clinician)


def test_a_reversal_needs_a_reason(modic, site1, clinician):
    participant = randomized(modic, site1, clinician)
    withdraw(participant, clinician)
    with pytest.raises(ValidationError) as err:
        services.status_change_reverse(change=latest_change(participant), reason=" ", by=clinician)
    assert "reason" in err.value.message_dict
    assert Participant.objects.get(pk=participant.pk).status == Status.WITHDRAWN


def test_a_death_recorded_in_error_is_reversed_and_follow_up_resumes(modic, site1, clinician):
    participant = randomized(modic, site1, clinician)
    withdraw(participant, clinician, followup_allowed=True)
    services.participant_status_change(
        participant=participant, to_status=Status.DECEASED, effective_on=today(modic),
        reason="Reported by GP", by=clinician,
    )  # fmt: skip
    assert visit(participant, "w10").outcome == Outcome.NOT_REQUIRED
    services.status_change_reverse(
        change=latest_change(participant), reason="The GP meant another patient", by=clinician
    )
    participant.refresh_from_db()
    assert (participant.status, participant.followup_allowed) == (Status.WITHDRAWN, True)
    assert participant.in_followup
    assert visit(participant, "w10").outcome == Outcome.OPEN


def test_a_refusal_of_further_follow_up_is_reversed_to_withdrawn_with_follow_up(
    modic, site1, clinician
):
    participant = randomized(modic, site1, clinician)
    withdraw(participant, clinician, followup_allowed=True)
    withdraw(participant, clinician, followup_allowed=False, on=today(modic))
    assert visit(participant, "w10").outcome == Outcome.NOT_REQUIRED
    result = services.status_change_reverse(
        change=latest_change(participant), reason="Misunderstood the call", by=clinician
    )
    participant.refresh_from_db()
    assert (participant.status, participant.followup_allowed) == (Status.WITHDRAWN, True)
    assert (result.reversal.from_status, result.reversal.to_status) == ("withdrawn", "withdrawn")
    assert result.reversal.followup_allowed is True
    assert visit(participant, "w10").outcome == Outcome.OPEN


def test_a_withdrawal_before_randomization_is_reversed_to_enrolled(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_status_change(
        participant=participant, to_status=Status.WITHDRAWN, effective_on=today(modic),
        reason="Changed their mind", followup_allowed=False, by=clinician,
    )  # fmt: skip
    services.status_change_reverse(
        change=latest_change(participant), reason="Wrong patient", by=clinician
    )
    participant.refresh_from_db()
    assert (participant.status, participant.followup_allowed) == (Status.ENROLLED, True)
    services.participant_randomize(participant=participant, by=clinician, rng=random.Random(1))


def test_the_weekly_sms_comes_back_after_a_withdrawal_is_reversed(
    modic, clinician, django_capture_on_commit_callbacks
):
    from outcomes.sms import tracking
    from outcomes.sms.models import SmsWeek
    from tests.outcomes.sms.test_tracking import SUNDAY, at

    participant = randomized(modic, modic.sites.get(code="01"), clinician)
    randomized_on = SUNDAY - dt.timedelta(days=10)
    Participant.objects.filter(pk=participant.pk).update(
        randomized_on=randomized_on, consent_date=randomized_on, randomized_at=at(randomized_on, 9)
    )
    participant.refresh_from_db()
    withdraw(participant, clinician)
    with django_capture_on_commit_callbacks(execute=True):
        tracking.sms_weekly_send(trial=modic, now=at(SUNDAY, 18))
    assert not SmsWeek.objects.filter(participant=participant).exists()

    services.status_change_reverse(
        change=latest_change(participant), reason="Entered in error", by=clinician
    )
    with django_capture_on_commit_callbacks(execute=True):
        tracking.sms_weekly_send(trial=modic, now=at(SUNDAY, 18, 15))
    assert SmsWeek.objects.filter(participant=participant).count() == 1


def test_status_changes_are_never_deleted_or_changed(modic, site1, clinician):
    participant = randomized(modic, site1, clinician)
    withdraw(participant, clinician)
    change = latest_change(participant)
    with pytest.raises(PermissionError):
        change.delete()
    change.reason = "Rewritten"
    with pytest.raises(PermissionError):
        change.save()
    assert StatusChange.objects.get(pk=change.pk).reason == "Asked to stop"


def test_the_database_allows_one_reversal_of_a_change(modic, site1, clinician):
    participant = randomized(modic, site1, clinician)
    withdraw(participant, clinician)
    change = latest_change(participant)
    services.status_change_reverse(change=change, reason="Error", by=clinician)
    with pytest.raises(IntegrityError), transaction.atomic():
        StatusChange.objects.create(
            participant=participant, from_status="active", to_status="withdrawn",
            effective_on=change.effective_on, reason="Twice", followup_allowed=False,
            by=clinician, reverses=change,
        )  # fmt: skip


# --- The pages ---------------------------------------------------------------------------------


def test_the_participant_page_offers_to_reverse_the_latest_change_only(
    client, modic, site1, clinician
):
    participant = backdate(randomized(modic, site1, clinician), 100)
    services.participant_status_change(
        participant=participant, to_status=Status.LOST, effective_on=today(modic),
        reason="Not reachable", by=clinician,
    )  # fmt: skip
    client.force_login(clinician)
    page = client.get(url("participant_detail", modic, participant.pk))
    reverse_url = url("status_change_reverse", modic, participant.pk)
    assertContains(page, reverse_url, count=1)

    form = client.get(reverse_url)
    assertContains(form, "Not reachable")
    change = latest_change(participant)
    response = client.post(reverse_url, {"change": change.pk, "reason": ""})
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    response = client.post(reverse_url, {"change": change.pk, "reason": "Found: was abroad"})
    assertRedirects(response, url("participant_detail", modic, participant.pk))

    page = client.get(url("participant_detail", modic, participant.pk))
    assertContains(page, "reversed")
    assertContains(page, "Found: was abroad")
    assertNotContains(page, reverse_url)  # nothing left to reverse


def test_a_stale_reversal_form_does_not_reverse_a_newer_change(
    client, modic, site1, clinician, coordinator
):
    participant = backdate(randomized(modic, site1, clinician), 100)
    services.participant_status_change(
        participant=participant, to_status=Status.LOST, effective_on=today(modic),
        reason="Not reachable", by=clinician,
    )  # fmt: skip
    shown = latest_change(participant)
    # Someone else records another change after the form was opened.
    withdraw(participant, coordinator, on=today(modic))
    client.force_login(clinician)
    response = client.post(
        url("status_change_reverse", modic, participant.pk),
        {"change": shown.pk, "reason": "Error"},
    )
    assert response.status_code == 200
    assertContains(response, "latest")
    assert Participant.objects.get(pk=participant.pk).status == Status.WITHDRAWN
    assert not StatusChange.objects.filter(reverses__isnull=False).exists()
