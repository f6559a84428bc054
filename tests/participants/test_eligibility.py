"""Tests for participants.eligibility, without Django."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from participants.eligibility import Criterion, ineligibility_reasons

ADULT = Criterion(id=1, kind="inclusion", question="Aged 18 to 65?", ineligible_answer=False)
MODIC = Criterion(
    id=2, kind="inclusion", question="Modic type 1 changes on MRI?", ineligible_answer=False
)
PREGNANT = Criterion(id=3, kind="exclusion", question="Pregnant?", ineligible_answer=True)
SURGERY = Criterion(
    id=4, kind="exclusion", question="Previous lumbar surgery?", ineligible_answer=True
)
CRITERIA = [ADULT, MODIC, PREGNANT, SURGERY]
ELIGIBLE = {1: True, 2: True, 3: False, 4: False}


def test_all_criteria_satisfied_gives_no_reasons():
    assert ineligibility_reasons(CRITERIA, ELIGIBLE) == []


def test_an_inclusion_criterion_answered_no_is_a_reason():
    reasons = ineligibility_reasons(CRITERIA, {**ELIGIBLE, 1: False})
    assert reasons == ["Inclusion criterion not met: Aged 18 to 65? (answered no)"]


def test_an_exclusion_criterion_answered_yes_is_a_reason():
    reasons = ineligibility_reasons(CRITERIA, {**ELIGIBLE, 3: True})
    assert reasons == ["Exclusion criterion applies: Pregnant? (answered yes)"]


def test_every_failed_criterion_is_reported_in_checklist_order():
    reasons = ineligibility_reasons(CRITERIA, {1: True, 2: False, 3: True, 4: True})
    assert reasons == [
        "Inclusion criterion not met: Modic type 1 changes on MRI? (answered no)",
        "Exclusion criterion applies: Pregnant? (answered yes)",
        "Exclusion criterion applies: Previous lumbar surgery? (answered yes)",
    ]


def test_an_unanswered_criterion_is_an_error_not_eligibility():
    answers = {1: True, 2: True, 4: False}  # "Pregnant?" left blank
    with pytest.raises(ValueError, match="Pregnant"):
        ineligibility_reasons(CRITERIA, answers)


def test_an_unanswered_criterion_is_an_error_even_when_another_answer_already_excludes():
    with pytest.raises(ValueError, match="unanswered"):
        ineligibility_reasons(CRITERIA, {1: False})


def test_an_empty_checklist_is_eligible():
    assert ineligibility_reasons([], {}) == []


@settings(max_examples=100, deadline=None)
@given(
    criteria=st.lists(
        st.builds(
            Criterion,
            id=st.integers(1, 10_000),
            kind=st.sampled_from(["inclusion", "exclusion"]),
            question=st.text(min_size=1, max_size=20),
            ineligible_answer=st.booleans(),
        ),
        max_size=8,
        unique_by=lambda c: c.id,
    ),
    data=st.data(),
)
def test_one_reason_per_criterion_answered_with_its_ineligible_answer(criteria, data):
    answers = {c.id: data.draw(st.booleans(), label=str(c.id)) for c in criteria}
    reasons = ineligibility_reasons(criteria, answers)
    failed = [c for c in criteria if answers[c.id] == c.ineligible_answer]
    assert len(reasons) == len(failed)
    for reason, criterion in zip(reasons, failed, strict=True):
        assert criterion.question in reason
        expected_label = (
            "Inclusion criterion not met"
            if criterion.kind == "inclusion"
            else "Exclusion criterion applies"
        )
        assert reason.startswith(expected_label + ": ")
