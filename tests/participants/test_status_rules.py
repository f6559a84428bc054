"""Which status changes are allowed and when a visit's outcomes may be entered: the pure
rules (participants.status_rules), the status change decided from plain values, and the
pages showing an action exactly when the service accepts it."""

from __future__ import annotations

import ast
import datetime as dt
import inspect

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from pytest_django.asserts import assertContains, assertNotContains

from outcomes.instruments.services import visit_record_outcomes
from participants import services, status_rules
from participants.models import Participant, Visit
from participants.status_rules import Participant as Facts
from participants.status_rules import decide_status_change
from tests import factories
from tests.participants.test_followup import randomized, today
from tests.participants.test_views import url

D = dt.date(2026, 3, 10)


def test_the_module_is_pure():
    tree = ast.parse(inspect.getsource(status_rules))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name.split(".")[0] in ("django", "participants")}


def test_its_statuses_and_outcomes_are_the_models():
    assert set(status_rules.STATUSES) == set(Participant.Status.values)
    assert set(status_rules.ALLOWED_CHANGES) == set(Participant.Status.values)
    assert {
        status_rules.OPEN,
        status_rules.VISIT_COMPLETED,
        status_rules.MISSED,
        status_rules.NOT_REQUIRED,
    } == set(Visit.Outcome.values)


# --- The rules, from plain values -----------------------------------------------------------


def test_before_randomization_an_enrolled_participant_may_only_withdraw():
    allowed = status_rules.allowed_changes
    assert allowed(status="enrolled", randomized=False, followup_allowed=True) == {"withdrawn"}
    assert allowed(status="withdrawn", randomized=False, followup_allowed=True) == set()


def test_a_withdrawn_participant_allowing_follow_up_may_still_refuse_it():
    allowed = status_rules.allowed_changes
    assert allowed(status="withdrawn", randomized=True, followup_allowed=True) == {
        "withdrawn",
        "deceased",
    }
    assert allowed(status="withdrawn", randomized=True, followup_allowed=False) == {"deceased"}
    assert allowed(status="deceased", randomized=True, followup_allowed=True) == set()


@pytest.mark.parametrize(
    ("status", "randomized", "followup", "outcome", "enterable"),
    [
        ("active", True, True, "open", True),
        ("active", True, True, "completed", True),
        ("active", True, True, "missed", False),
        ("active", True, True, "not_required", False),
        ("lost", True, True, "open", True),
        ("completed", True, True, "completed", True),
        ("withdrawn", True, True, "open", True),
        ("withdrawn", True, False, "open", False),
        ("deceased", True, True, "open", False),
        ("enrolled", False, True, "open", False),
    ],
)
def test_outcomes_are_enterable_in_follow_up_on_a_visit_neither_missed_nor_not_required(
    status, randomized, followup, outcome, enterable
):
    in_followup = status_rules.in_followup(
        status=status, randomized=randomized, followup_allowed=followup
    )
    assert status_rules.outcomes_enterable(in_followup=in_followup, visit_outcome=outcome) is (
        enterable
    )


def facts(**changes) -> Facts:
    values = {
        "status": "active",
        "randomized": True,
        "followup_allowed": True,
        "earliest": D - dt.timedelta(days=100),
        "status_changed_on": None,
    }
    return Facts(**{**values, **changes})


def decide(p: Facts, to_status: str, **changes):
    values = {
        "effective_on": D,
        "reason": "Moved abroad",
        "followup_allowed": True if to_status == "withdrawn" else None,
        "today": D,
    }
    return decide_status_change(p, to_status=to_status, **{**values, **changes})


@pytest.mark.parametrize(
    ("p", "to_status", "changes", "refusal", "field"),
    [
        (facts(), "asleep", {}, "unknown_status", "to_status"),
        (facts(), "active", {}, "already", "to_status"),
        (facts(status="deceased"), "active", {}, "not_allowed", "to_status"),
        (facts(), "lost", {"reason": ""}, "no_reason", "reason"),
        (facts(), "lost", {"effective_on": D + dt.timedelta(days=1)}, "in_future", "effective_on"),
        (facts(earliest=D), "lost", {"effective_on": D - dt.timedelta(days=1)},
         "before_enrollment", "effective_on"),
        (facts(status="lost", status_changed_on=D), "active",
         {"effective_on": D - dt.timedelta(days=1)}, "before_previous_change", "effective_on"),
        (facts(last_attended_on=D), "deceased", {"effective_on": D - dt.timedelta(days=1)},
         "death_before_visit", "effective_on"),
        (facts(), "withdrawn", {"followup_allowed": None}, "followup_unsaid", "followup_allowed"),
        (facts(open_visits=2), "completed", {}, "visits_open", "to_status"),
        (facts(status="withdrawn", followup_allowed=False), "withdrawn",
         {"followup_allowed": False}, "already", "to_status"),
    ],
)  # fmt: skip
def test_a_status_change_is_refused_with_its_reason(p, to_status, changes, refusal, field):
    decision = decide(p, to_status, **changes)
    assert (decision.refusal, decision.field) == (refusal, field)


@pytest.mark.parametrize(
    ("p", "to_status", "followup", "close_as", "close_before", "followup_after", "row_followup"),
    [
        (facts(), "deceased", None, "not_required", None, True, None),
        (facts(), "withdrawn", False, "not_required", None, False, False),
        (facts(), "withdrawn", True, "", None, True, True),
        (facts(), "lost", None, "missed", D, True, None),
        (facts(), "completed", None, "", None, True, None),
        (facts(status="lost"), "active", None, "", None, True, None),
        (facts(status="withdrawn"), "withdrawn", False, "not_required", None, False, False),
        (facts(status="withdrawn", followup_allowed=False), "deceased", None,
         "not_required", None, False, None),
    ],
)  # fmt: skip
def test_a_status_change_closes_the_visits_it_ends_and_records_the_follow_up(
    p, to_status, followup, close_as, close_before, followup_after, row_followup
):
    decision = decide(p, to_status, followup_allowed=followup)
    assert decision.refusal is None
    assert (decision.close_as, decision.close_before) == (close_as, close_before)
    assert decision.followup_allowed is followup_after
    assert decision.change_followup_allowed is row_followup


# --- The pages show an action exactly when the service accepts it ------------------------------

STATES = {
    # name: (randomized, status, followup_allowed)
    "enrolled": (False, "enrolled", True),
    "withdrawn before randomization": (False, "withdrawn", False),
    "active": (True, "active", True),
    "lost": (True, "lost", True),
    "withdrawn, follow-up allowed": (True, "withdrawn", True),
    "withdrawn, follow-up refused": (True, "withdrawn", False),
    "completed": (True, "completed", True),
    "deceased": (True, "deceased", True),
}


def in_state(trial, site, by, state: str) -> Participant:
    """A participant in `state`, its open visits closed (so that completing is possible)."""
    is_randomized, status, followup = STATES[state]
    if is_randomized:
        participant = randomized(trial, site, by)
        Visit.objects.filter(participant=participant, outcome="open").update(outcome="not_required")
    else:
        participant = factories.enrolled_participant(trial, site, by)
    Participant.objects.filter(pk=participant.pk).update(status=status, followup_allowed=followup)
    return Participant.objects.get(pk=participant.pk)


def accepts(action) -> bool:
    """Whether the service accepts `action`; whatever it writes is rolled back."""
    try:
        with transaction.atomic():
            action()
            transaction.set_rollback(True)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("state", STATES)
def test_the_status_page_offers_a_change_exactly_when_the_service_accepts_it(
    client, modic, site1, clinician, state
):
    participant = in_state(modic, site1, clinician, state)
    client.force_login(clinician)
    page = client.get(url("participant_status", modic, participant.pk))
    offered = {value for value, _label in page.context["allowed"]}
    detail = client.get(url("participant_detail", modic, participant.pk))
    for to_status in Participant.Status.values:
        accepted = accepts(
            lambda to_status=to_status: services.participant_status_change(
                participant=participant,
                to_status=to_status,
                effective_on=today(modic),
                reason="Reason given",
                by=clinician,
                # Withdrawn → withdrawn is the refusal of further follow-up.
                followup_allowed=False if to_status == "withdrawn" else None,
            )
        )
        assert (to_status in offered) is accepted, to_status
    rules_say = status_rules.allowed_changes(
        status=participant.status,
        randomized=participant.is_randomized,
        followup_allowed=participant.followup_allowed,
    )
    assert offered == rules_say
    if not participant.is_randomized:
        withdrawal = "withdrawn" in offered
        (assertContains if withdrawal else assertNotContains)(detail, "Record withdrawal")


@pytest.mark.parametrize("state", [s for s, (randomized, *_) in STATES.items() if randomized])
def test_the_participant_page_offers_outcome_entry_exactly_when_the_service_accepts_it(
    client, modic, site1, clinician, state
):
    participant = in_state(modic, site1, clinician, state)
    # The baseline visit attended, the next open, the last missed.
    _baseline, second, last = Visit.objects.filter(participant=participant).order_by("target_date")
    Visit.objects.filter(pk=second.pk).update(outcome="open")
    Visit.objects.filter(pk=last.pk).update(outcome="missed", missed_reason="Abroad")
    client.force_login(clinician)
    detail = client.get(url("participant_detail", modic, participant.pk))
    for v in Visit.objects.filter(participant=participant):
        link = url("visit_outcomes", modic, v.pk)
        accepted = accepts(lambda v=v: visit_record_outcomes(visit=v, entries=[], by=clinician))
        assert (link in detail.content.decode()) is accepted, (v.outcome, state)
        assert accepted is status_rules.outcomes_enterable(
            in_followup=participant.in_followup, visit_outcome=v.outcome
        )
