"""Score rules as data (pure, no database): the four current instruments, written as the JSON
definitions in outcomes/instruments/definitions/, score exactly as outcomes.instruments.scoring
does, on every possible answer (exhaustively where small, with hypothesis for the RMDQ)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outcomes.instruments import scoring
from outcomes.instruments.answers import validate_answers
from outcomes.instruments.definition import dump, load, problems
from outcomes.instruments.score_rules import ScoreRule, ScoreRuleError, compute, compute_scores

DEFINITIONS = Path(__file__).resolve().parents[3] / "outcomes" / "instruments" / "definitions"
UK = scoring.EQ5DValueSet.from_dict("uk-tto-dolan-1997", scoring.EQ5D_UK_TTO_DOLAN_1997)
VALUE_SETS = {"uk-tto-dolan-1997": UK}


def shipped(name: str):
    return load(json.loads((DEFINITIONS / f"{name}.json").read_text(encoding="utf-8")))


def scores_of(definition, answers: dict) -> dict:
    """Scores computed the way entry will: raw strings → validate_answers → score rules."""
    cleaned, errors = validate_answers(definition, answers)
    assert errors == []
    return compute_scores(definition, cleaned, VALUE_SETS)


def raw(value) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize("answer", [None, *range(11)])
def test_the_pain_definition_scores_as_scoring_pain_nrs(answer):
    score = scores_of(shipped("pain_nrs"), {"pain": raw(answer)})["pain_nrs"]
    expected = scoring.pain_nrs(answer)
    assert score == expected
    assert type(score) is type(expected)


def test_the_rmdq_definition_has_the_23_statements_in_order():
    definition = shipped("rmdq")
    labels = tuple(item.label["en"] for item in definition.items)
    assert labels == scoring.RMDQ_ITEM_WORDING


@given(st.lists(st.sampled_from([True, False, None]), min_size=23, max_size=23))
def test_the_rmdq_definition_scores_as_scoring_rmdq(answers):
    posted = {f"item_{n}": {True: "1", False: "0", None: ""}[a] for n, a in enumerate(answers, 1)}
    score = scores_of(shipped("rmdq"), posted)["rmdq_score"]
    expected = scoring.rmdq(answers)
    assert score == expected
    assert type(score) is type(expected)


@pytest.mark.parametrize("answer", [True, False])
def test_the_rmdq_definition_scores_all_yes_and_all_no_as_scoring_rmdq(answer):
    posted = {f"item_{n}": "1" if answer else "0" for n in range(1, 24)}
    assert scores_of(shipped("rmdq"), posted)["rmdq_score"] == scoring.rmdq([answer] * 23)


def test_the_eq5d_definition_gives_scoring_s_index_on_every_health_state_and_gap():
    definition = shipped("eq5d_3l")
    names = [item.name for item in definition.items[:5]]
    for levels in itertools.product([None, 1, 2, 3], repeat=5):
        index = scores_of(definition, {n: raw(v) for n, v in zip(names, levels, strict=True)})
        profile = scoring.eq5d_profile(dict(zip(scoring.EQ5D_DIMENSIONS, levels, strict=True)))
        assert index["eq5d_index"] == scoring.eq5d_index(profile, UK), levels


def test_the_eq5d_definition_names_the_dimensions_and_levels_as_scoring_does():
    definition = shipped("eq5d_3l")
    dimensions = definition.items[:5]
    assert [item.label["en"] for item in dimensions] == [
        scoring.EQ5D_DIMENSION_LABELS[dim] for dim in scoring.EQ5D_DIMENSIONS
    ]
    for item in dimensions:
        assert tuple(c.label["en"] for c in item.choices) == scoring.EQ5D_LEVEL_NAMES


@pytest.mark.parametrize("answer", [None, *range(101)])
def test_the_eq5d_definition_scores_the_vas_as_scoring_eq5d_vas(answer):
    score = scores_of(shipped("eq5d_3l"), {"vas": raw(answer)})["eq5d_vas"]
    assert score == scoring.eq5d_vas(answer)
    assert type(score) is type(scoring.eq5d_vas(answer))


@pytest.mark.parametrize("answer", [None, *range(1, 8)])
def test_the_global_definition_scores_improved_as_scoring_global_improved(answer):
    score = scores_of(shipped("global_7"), {"global_change": raw(answer)})["improved"]
    assert score is scoring.global_improved(answer)


def test_the_global_definition_has_the_question_and_choices_of_scoring():
    item = shipped("global_7").items[0]
    assert item.label["en"] == scoring.GLOBAL_QUESTION
    assert tuple((int(c.code), c.label["en"]) for c in item.choices) == scoring.GLOBAL_CHOICES


# --- The rules ---------------------------------------------------------------------------------

ITEMS = ("a", "b", "c", "d")


def test_mean_needs_its_minimum_number_of_answered_items():
    rule = ScoreRule("m", "mean", ITEMS, min_answered=3)
    assert compute(rule, {"a": 1, "b": 2, "c": 4}, {}) == Decimal(7) / 3
    assert compute(rule, {"a": 1, "b": 2}, {}) is None


def test_a_pro_rated_mean_is_the_mean_times_the_number_of_items_rounded_half_up():
    rule = ScoreRule("m", "mean", ITEMS, min_answered=2, prorate=True, decimals=0)
    assert compute(rule, {"a": 1, "b": 2}, {}) == 6  # 1.5 × 4
    assert compute(rule, {"a": 1, "b": 2, "c": 2}, {}) == 7  # 6.67 → 7
    half = ScoreRule("m", "mean", ("a", "b"), min_answered=1, decimals=0)
    assert compute(half, {"a": 2, "b": 3}, {}) == 3  # 2.5 → 3, where round() gives 2
    assert compute(half, {"a": 1, "b": 2}, {}) == 2  # 1.5 → 2


def test_sum_does_not_impute_a_missing_item():
    rule = ScoreRule("s", "sum", ITEMS)
    assert compute(rule, {"a": 1, "b": 2, "c": 3, "d": 4}, {}) == 10
    assert compute(rule, {"a": 1, "b": 2, "c": 3}, {}) is None


def test_count_counts_answers_among_the_choices():
    rule = ScoreRule("n", "count", ITEMS, choices=("1", "2"), min_answered=2)
    assert compute(rule, {"a": "1", "b": "2", "c": "3"}, {}) == 2
    assert compute(rule, {"a": "3"}, {}) is None


def test_an_expression_score_is_rounded_to_its_decimals():
    rule = ScoreRule("e", "expression", expression="[a] / 3", decimals=2)
    assert compute(rule, {"a": 2}, {}) == Decimal("0.67")
    assert compute(rule, {}, {}) is None


def test_a_lookup_without_its_value_set_is_an_error_not_a_missing_score():
    definition = shipped("eq5d_3l")
    with pytest.raises(ScoreRuleError):
        compute_scores(definition, {}, {})


@pytest.mark.parametrize(
    ("rule", "path", "key"),
    [
        (
            {"name": "s", "rule": "sum", "items": ["pain", "nowhere"]},
            "scores[0].items[1]",
            "score.unknown_item",
        ),
        (
            {"name": "s", "rule": "sum", "items": ["pain"], "choices": ["1"]},
            "scores[0].choices",
            "score.key_not_used",
        ),
        (
            {"name": "s", "rule": "mean", "items": ["pain"], "min_answered": 2},
            "scores[0].min_answered",
            "score.min_answered_out_of_range",
        ),
        (
            {"name": "s", "rule": "count", "items": ["pain"]},
            "scores[0].choices",
            "score.no_choices",
        ),
        (
            {"name": "s", "rule": "lookup", "items": ["pain"], "value_set": "x"},
            "scores[0].items",
            "score.lookup_needs_five_dimensions",
        ),
        (
            {"name": "s", "rule": "median", "items": ["pain"]},
            "scores[0].rule",
            "score.unknown_rule",
        ),
        (
            {"name": "pain", "rule": "sum", "items": ["pain"]},
            "scores[0].name",
            "score.name_duplicate",
        ),
        (
            {"name": "s", "rule": "expression", "expression": "[pain] +"},
            "scores[0].expression",
            "expression.unexpected_end",
        ),
    ],
)
def test_a_score_rule_that_cannot_work_is_reported_with_its_path(rule, path, key):
    data = json.loads((DEFINITIONS / "pain_nrs.json").read_text(encoding="utf-8"))
    data["scores"] = [rule]
    assert (path, key) in {(p.path, p.key) for p in problems(data)}


def test_a_rule_rounding_to_whole_numbers_keeps_its_zero_decimals_through_dump_and_load():
    data = json.loads((DEFINITIONS / "pain_nrs.json").read_text(encoding="utf-8"))
    data["scores"] = [
        {"name": "s", "rule": "mean", "items": ["pain"], "min_answered": 1, "decimals": 0}
    ]
    assert dump(load(data)) == data
