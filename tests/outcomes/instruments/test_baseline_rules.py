"""The baseline form's instruments decided from plain values (outcomes.instruments.baseline_rules): each
refusal and error, the values sourced from scores, and the entries to write. No database."""

from __future__ import annotations

import ast
import inspect

import pytest

from outcomes.instruments import baseline_rules
from outcomes.instruments.baseline_rules import Due, Given, decide, entry_changes

NOT_DONE = ("not_reached", "refused", "too_ill", "other")
PAIN = Due(1, "pain", "Pain NRS", "pain_nrs", "pain", "Baseline pain")
RMDQ = Due(2, "rmdq", "Roland–Morris", "rmdq", "rmdq_score", "Baseline disability")
EQ5D = Due(3, "eq5d", "EQ-5D-3L", "eq5d_3l")


def scored(instrument: Due, score, **fields) -> Given:
    values = {"score": score, "not_done": "", "not_done_note": ""}
    return Given(instrument.id, instrument.name, stored=({"value": score}, values), **fields)


def not_done(instrument: Due, reason="refused", note="") -> Given:
    values = {"score": None, "not_done": reason, "not_done_note": note}
    return Given(instrument.id, instrument.name, reason, note, stored=({}, values))


def decided(given, due=(PAIN, RMDQ, EQ5D), own_values=()):
    return decide(due=due, given=given, not_done_codes=NOT_DONE, own_values=own_values)


def errors(decision) -> dict:
    return {e.key: e.code for e in decision.errors}


def test_the_module_is_pure():
    tree = ast.parse(inspect.getsource(baseline_rules))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "collections.abc", "dataclasses"}


def test_a_complete_form_stores_every_instrument_and_sources_the_scores():
    decision = decided([scored(PAIN, 7), scored(RMDQ, 12), not_done(EQ5D)])
    assert (decision.refusal, decision.errors) == (None, ())
    assert decision.sourced_values == {"pain": 7, "rmdq_score": 12}
    assert list(decision.store) == [1, 2, 3]
    assert decision.remap == {"pain": "pain-value", "rmdq_score": "rmdq-__all__"}
    assert decision.explained == frozenset()


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ([scored(Due(9, "x", "Other scale", "pain_nrs"), 1)], "not_due"),
        ([scored(PAIN, 7), scored(PAIN, 6)], "twice"),
    ],
)
def test_an_instrument_not_due_or_entered_twice_refuses_the_whole_form(given, refusal):
    decision = decided(given)
    assert decision.refusal == refusal
    assert decision.refused in ("Other scale", "Pain NRS")


@pytest.mark.parametrize(
    ("eq5d", "key", "code"),
    [
        (None, "eq5d-__all__", "missing"),
        (not_done(EQ5D, reason="bored"), "eq5d-not_done", "unknown_not_done"),
        (not_done(EQ5D, reason="other"), "eq5d-not_done_note", "note_needed"),
        (
            Given(3, "EQ-5D-3L", scoring_error="VAS must lie in 0–100", scoring_field="vas"),
            "eq5d-vas",
            "unscorable",
        ),
    ],
)
def test_an_instrument_without_usable_data_is_an_error_next_to_its_field(eq5d, key, code):
    given = [scored(PAIN, 7), scored(RMDQ, 12)] + ([eq5d] if eq5d else [])
    decision = decided(given)
    assert errors(decision) == {key: code}
    assert 3 not in decision.store


def test_other_with_a_note_is_stored():
    decision = decided([scored(PAIN, 7), scored(RMDQ, 12), not_done(EQ5D, "other", "Fire alarm")])
    assert decision.errors == () and 3 in decision.store


@pytest.mark.parametrize(
    ("pain", "key", "code"),
    [
        (not_done(PAIN), "pain-not_done", "sourced_not_done"),
        (scored(PAIN, None), "pain-value", "sourced_no_rating"),
    ],
)
def test_an_instrument_whose_score_randomization_needs_must_be_done_and_scored(pain, key, code):
    decision = decided([pain, scored(RMDQ, 12), not_done(EQ5D)])
    assert errors(decision) == {key: code}
    assert decision.sourced_values["pain"] is None
    assert "pain" in decision.explained


def test_an_unscored_roland_morris_asks_for_every_item():
    decision = decided([scored(PAIN, 7), scored(RMDQ, None), not_done(EQ5D)])
    assert errors(decision) == {"rmdq-__all__": "sourced_items_missing"}


def test_a_sourced_instrument_with_its_own_error_leaves_the_variable_explained():
    decision = decided([scored(RMDQ, 12), not_done(EQ5D)])
    assert errors(decision) == {"pain-__all__": "missing"}
    assert decision.explained == frozenset({"pain"})
    assert decision.sourced_values == {"pain": None, "rmdq_score": 12}


def test_a_sourced_variable_given_as_a_value_too_is_a_programming_error():
    with pytest.raises(ValueError, match="taken from pain"):
        decided([scored(PAIN, 7), scored(RMDQ, 12), not_done(EQ5D)], own_values=["pain"])


def test_entries_are_created_changed_left_alone_or_deleted_by_comparison():
    same = ({"value": 7}, {"score": 7})
    changes = entry_changes(
        existing={1: same, 2: ({"value": 3}, {"score": 3}), 9: same},
        store={1: same, 2: ({"value": 4}, {"score": 4}), 3: same},
    )
    assert (changes.create, changes.update, changes.delete) == ((3,), (2,), (9,))
