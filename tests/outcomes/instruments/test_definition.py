"""Instrument definitions as data, and answers checked against them (pure, no database)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.instruments.answers import NOT_ASKED, MissingCode, validate_answers
from outcomes.instruments.definition import (
    Choice,
    Definition,
    DefinitionInvalid,
    Item,
    dump,
    load,
    problems,
)
from outcomes.instruments.definition_checks import RESERVED_WORDS, variable_name_problem
from outcomes.instruments.score_rules import ScoreRule

DEFINITIONS = Path(__file__).resolve().parents[3] / "outcomes" / "instruments" / "definitions"


def en(text: str) -> dict:
    return {"en": text}


def knee() -> dict:
    """A small questionnaire with a branch, a checkbox item and a calculated score."""
    return {
        "name": "knee",
        "version": "2",
        "description": en("Knee pain and function"),
        "languages": ["en"],
        "items": [
            {"name": "section_pain", "type": "descriptive", "label": en("Pain")},
            {
                "name": "pain",
                "type": "integer",
                "label": en("Knee pain now"),
                "required": True,
                "min": 0,
                "max": 10,
                "missing_codes": ["refused"],
            },
            {"name": "swelling", "type": "yes_no", "label": en("Any swelling?")},
            {
                "name": "swelling_days",
                "type": "integer",
                "label": en("Days with swelling"),
                "show_if": "[swelling] = '1'",
                "required": True,
                "min": 0,
                "max": 7,
            },
            {
                "name": "weight",
                "type": "decimal",
                "label": en("Weight (kg)"),
                "precision": 1,
                "min": 30,
                "max": 250.5,
            },
            {
                "name": "aids",
                "type": "multiple_choice",
                "label": en("Walking aids"),
                "choices": [
                    {"code": "1", "label": en("Stick")},
                    {"code": "2", "label": en("Frame")},
                ],
            },
            {
                "name": "frame_since",
                "type": "date",
                "label": en("Frame since"),
                "show_if": "[aids(2)] = 1",
            },
            {
                "name": "walk",
                "type": "single_choice",
                "label": en("Walking"),
                "choices": [{"code": "0", "label": en("Easy")}, {"code": "2", "label": en("Hard")}],
                "missing_codes": ["dont_know"],
            },
            {"name": "woke_at", "type": "time", "label": en("Woke at")},
            {"name": "notes", "type": "text", "label": en("Notes"), "max_length": 10},
            {"name": "health", "type": "vas", "label": en("Health today")},
            {
                "name": "burden",
                "type": "calculated",
                "label": en("Burden"),
                "calculation": "[pain] + [walk] + if([swelling] = 1, [swelling_days], 0)",
            },
        ],
        "scores": [{"name": "burden_score", "rule": "expression", "expression": "[burden] * 2"}],
    }


# --- The format --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DEFINITIONS.glob("*.json")), ids=lambda p: p.stem)
def test_each_shipped_definition_loads_and_dumps_back_to_the_same_json(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert dump(load(data)) == data
    assert data["citation"]


def test_the_four_current_instruments_are_shipped_as_definitions():
    assert {p.stem for p in DEFINITIONS.glob("*.json")} == {
        "pain_nrs",
        "rmdq",
        "eq5d_3l",
        "global_7",
    }


def test_a_definition_with_every_item_type_loads_and_dumps_back_exactly():
    data = knee()
    definition = load(copy.deepcopy(data))
    assert dump(definition) == data
    assert definition.item("weight").maximum == Decimal("250.5")
    assert definition.item("aids").codes == ("1", "2")


def test_loading_something_that_is_not_a_definition_reports_rather_than_crashes():
    for data in (None, [], {"items": "x"}, {"items": [1, {"choices": [2]}]}):
        found = problems(data)
        assert found


# --- Validation: every problem, each with its path ---------------------------------------------


def paths_and_keys(data) -> set[tuple[str, str]]:
    return {(p.path, p.key) for p in problems(data)}


def test_validation_reports_all_problems_at_once_each_with_its_path():
    data = knee()
    items = data["items"]
    items[5]["choices"][1]["code"] = "1"  # duplicate code
    items[1]["name"] = "if"  # reserved in Stata and R
    items[2]["label"] = {}  # no English label
    items[3]["show_if"] = "[later] = 1"
    items.append({"name": "later", "type": "yes_no", "label": en("Later")})
    items[11]["calculation"] = "[notes] + 1"  # text used as a number
    data["scores"][0]["expression"] = "[nothing] * 2"
    found = paths_and_keys(data)
    assert ("items[5].choices[1].code", "choice.code_duplicate") in found
    assert ("items[1].name", "item.name_reserved") in found
    assert ("items[2].label.en", "definition.text_missing") in found
    assert ("items[3].show_if", "expression.later_item") in found
    assert ("items[11].calculation", "expression.not_a_number") in found
    assert ("scores[0].expression", "expression.unknown_item") in found
    with pytest.raises(DefinitionInvalid) as caught:
        load(data)
    assert len(caught.value.problems) >= 6


def test_wrong_shapes_and_wrong_meanings_are_reported_together_each_once():
    data = knee()
    data["items"][1]["required"] = "yes"  # shape: not a boolean
    data["items"][1]["type"] = "slider"  # shape: unknown type, so its keys are not judged
    data["items"][5]["choices"][1]["code"] = "1"  # meaning: duplicate code
    data["items"][2]["name"] = 7  # shape: not a string; not also "invalid name"
    found = [(p.path, p.key) for p in problems(data)]
    assert sorted(found) == sorted(
        [
            ("items[1].type", "item.unknown_type"),
            ("items[1].required", "definition.not_a_boolean"),
            ("items[2].name", "definition.not_a_string"),
            ("items[5].choices[1].code", "choice.code_duplicate"),
            # The show-if of items[3] and the calculation read "swelling", which is now gone:
            ("items[3].show_if", "expression.unknown_item"),
            ("items[11].calculation", "expression.unknown_item"),
            # ... and the show-if of items[6] reads choice 2 of "aids", which has none now.
            ("items[6].show_if", "expression.unknown_choice"),
        ]
    )


@pytest.mark.parametrize(
    ("show_if", "key"),
    [
        ("[nowhere] = 1", "expression.unknown_item"),
        ("[notes] = 'x'", "expression.cycle"),
        ("[swelling] = ", "expression.unexpected_end"),
        ("[swelling(1)] = 1", "expression.choice_of_single_answer"),
        ("[aids(9)] = 1 and [aids(2)] = 1", "expression.unknown_choice"),
        ("[aids] = 1", "expression.needs_choice"),
        ("[aids(2)] + [woke_at] > 1", "expression.not_a_number"),
        ("[section_pain] = 1", "expression.not_a_value"),
    ],
)
def test_a_show_if_that_cannot_work_is_reported_on_its_item(show_if, key):
    data = knee()
    data["items"][9]["show_if"] = show_if
    assert ("items[9].show_if", key) in paths_and_keys(data)


def test_a_parse_error_in_a_show_if_carries_its_position():
    data = knee()
    data["items"][3]["show_if"] = "[swelling] $ 1"
    (problem,) = [p for p in problems(data) if p.path == "items[3].show_if"]
    assert problem.params["position"] == 11


@pytest.mark.parametrize(
    ("change", "path", "key"),
    [
        ({"type": "slider"}, "items[1].type", "item.unknown_type"),
        ({"max_length": 20}, "items[1].max_length", "item.key_not_for_type"),
        ({"min": 11}, "items[1].max", "item.max_below_min"),
        ({"min": 0.5}, "items[1].min", "item.bound_not_whole"),
        ({"missing_codes": ["maybe"]}, "items[1].missing_codes[0]", "item.missing_code_unknown"),
        (
            {"missing_codes": ["not_asked"]},
            "items[1].missing_codes[0]",
            "item.missing_code_unknown",
        ),
        ({"name": "Swelling"}, "items[2].name", "item.name_duplicate"),
        ({"colour": "red"}, "items[1].colour", "definition.unknown_key"),
        (
            {"label": {"en": "Pain", "da": "Smerte"}},
            "items[1].label",
            "definition.unknown_language",
        ),
    ],
)
def test_item_problems_are_reported_with_their_path(change, path, key):
    data = knee()
    data["items"][1] |= change
    assert (path, key) in paths_and_keys(data)


def test_type_specific_keys_are_required_where_the_type_needs_them():
    data = knee()
    del data["items"][4]["precision"]
    del data["items"][5]["choices"]
    del data["items"][11]["calculation"]
    found = paths_and_keys(data)
    assert ("items[4].precision", "item.key_needed_for_type") in found
    assert ("items[5].choices", "item.key_needed_for_type") in found
    assert ("items[11].calculation", "item.key_needed_for_type") in found


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("pain_1", None),
        ("a" * 32, None),
        ("a" * 33, "item.name_invalid"),
        ("1st", "item.name_invalid"),
        ("_n", "item.name_invalid"),
        ("knee-pain", "item.name_invalid"),
        ("smerte_æ", "item.name_invalid"),
        ("if", "item.name_reserved"),
        ("NA", "item.name_reserved"),
        ("str10", "item.name_reserved"),
        ("strL", "item.name_reserved"),
        ("WITH", "item.name_reserved"),
        ("function", "item.name_reserved"),
        ("EQ", "item.name_reserved"),
    ],
)
def test_variable_names_must_suit_stata_spss_and_r(name, key):
    assert variable_name_problem(name) == key


def test_the_reserved_words_cover_the_three_packages():
    assert {"byte", "double", "using", "by", "to", "ne", "repeat", "true", "nan"} <= RESERVED_WORDS


# --- Answers -----------------------------------------------------------------------------------

FULL = {
    "pain": "4",
    "swelling": "1",
    "swelling_days": "3",
    "weight": "72.5",
    "aids": ["2", "1"],
    "frame_since": "2024-02-29",
    "walk": "2",
    "woke_at": "06:30",
    "notes": "fine",
    "health": "80",
}


def test_valid_answers_are_parsed_by_type_and_the_calculation_computed():
    cleaned, errors = validate_answers(load(knee()), FULL)
    assert errors == []
    assert cleaned == {
        "pain": 4,
        "swelling": 1,
        "swelling_days": 3,
        "weight": Decimal("72.5"),
        "aids": ("1", "2"),
        "frame_since": dt.date(2024, 2, 29),
        "walk": "2",
        "woke_at": dt.time(6, 30),
        "notes": "fine",
        "health": 80,
        "burden": Decimal(9),
    }


def test_a_hidden_item_is_not_asked_even_when_a_stale_value_was_posted():
    cleaned, errors = validate_answers(load(knee()), FULL | {"swelling": "0", "aids": "1"})
    assert errors == []
    assert cleaned["swelling_days"] == NOT_ASKED
    assert cleaned["frame_since"] == NOT_ASKED
    assert cleaned["burden"] == Decimal(6)


def test_a_missing_data_code_is_stored_as_such_and_satisfies_required():
    cleaned, errors = validate_answers(
        load(knee()), FULL | {"pain": "refused", "walk": "dont_know"}
    )
    assert errors == []
    assert cleaned["pain"] == MissingCode("refused")
    assert cleaned["walk"] == MissingCode("dont_know")
    assert cleaned["burden"] is None


def test_a_missing_data_code_the_item_does_not_offer_is_an_error():
    _, errors = validate_answers(load(knee()), FULL | {"walk": "refused"})
    assert [(e.path, e.key) for e in errors] == [("walk", "answer.not_a_choice")]


@pytest.mark.parametrize(
    ("name", "raw", "key"),
    [
        ("pain", "", "answer.required"),
        ("pain", "11", "answer.above_maximum"),
        ("pain", "-1", "answer.below_minimum"),
        ("pain", "4.0", "answer.not_a_whole_number"),
        ("swelling_days", "", "answer.required"),
        ("swelling", "maybe", "answer.not_yes_or_no"),
        ("weight", "72.55", "answer.too_many_decimals"),
        ("weight", "250.6", "answer.above_maximum"),
        ("weight", "seventy", "answer.not_a_number"),
        ("aids", ["3"], "answer.not_a_choice"),
        ("frame_since", "2023-02-29", "answer.not_a_date"),
        ("frame_since", "29/02/2024", "answer.not_a_date"),
        ("walk", "1", "answer.not_a_choice"),
        ("woke_at", "25:00", "answer.not_a_time"),
        ("notes", "x" * 11, "answer.too_long"),
        ("health", "101", "answer.above_maximum"),
        ("health", 50, "answer.not_text"),
    ],
)
def test_bad_input_gives_one_error_on_its_item(name, raw, key):
    _, errors = validate_answers(load(knee()), FULL | {name: raw})
    assert [(e.path, e.key) for e in errors] == [(name, key)]


@pytest.mark.parametrize(
    ("raw", "expected"), [("72.50", "72.5"), ("72", "72.0"), ("+72.5", "72.5")]
)
def test_a_decimal_is_read_at_its_precision_and_trailing_zeros_are_not_extra_places(raw, expected):
    cleaned, errors = validate_answers(load(knee()), FULL | {"weight": raw})
    assert errors == []
    assert str(cleaned["weight"]) == expected


def test_an_unanswered_optional_item_is_none():
    cleaned, errors = validate_answers(load(knee()), FULL | {"weight": "  ", "aids": []})
    assert errors == []
    assert cleaned["weight"] is None
    assert cleaned["aids"] is None
    assert cleaned["frame_since"] == NOT_ASKED


# --- Properties --------------------------------------------------------------------------------

raw_answers = st.dictionaries(
    st.sampled_from(list(FULL) + ["burden", "section_pain", "other"]),
    st.one_of(
        st.none(),
        st.text(max_size=12),
        st.sampled_from(["0", "1", "2", "refused", "dont_know", "2024-01-01", "12:00", "7.5"]),
        st.lists(st.sampled_from(["1", "2", "3", ""]), max_size=3),
        st.integers(),
    ),
)


@settings(max_examples=300)
@given(raw_answers)
def test_validating_any_answers_never_raises_and_hidden_items_never_keep_values(answers):
    definition = load(knee())
    cleaned, errors = validate_answers(definition, answers)
    if cleaned["swelling"] != 1:
        assert cleaned["swelling_days"] == NOT_ASKED
    if not (isinstance(cleaned["aids"], tuple) and "2" in cleaned["aids"]):
        assert cleaned["frame_since"] == NOT_ASKED
    assert {e.path for e in errors} <= set(FULL)
    assert "section_pain" not in cleaned


texts = st.from_regex(r"[a-h][a-h .]{0,7}", fullmatch=True).map(en)
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda name: variable_name_problem(name) is None
)


@st.composite
def definitions(draw) -> Definition:
    items = []
    for name in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
        kind = draw(st.sampled_from(["integer", "decimal", "single_choice", "text", "yes_no"]))
        extra = {}
        if kind == "integer":
            extra = {"minimum": Decimal(draw(st.integers(-5, 0))), "maximum": Decimal(10)}
        elif kind == "decimal":
            extra = {"precision": draw(st.integers(0, 3)), "maximum": Decimal("2.5")}
        elif kind == "single_choice":
            codes = draw(st.lists(st.sampled_from("0123"), min_size=1, unique=True))
            extra = {"choices": tuple(Choice(code, draw(texts)) for code in codes)}
        elif kind == "text":
            extra = {"max_length": draw(st.integers(1, 50))}
        show_if = f"[{items[-1].name}] = 1" if items and draw(st.booleans()) else None
        items.append(
            Item(name, kind, draw(texts), required=draw(st.booleans()), show_if=show_if, **extra)
        )
    numeric = items[0].type in ("integer", "decimal", "yes_no")
    mean = ScoreRule(
        "mean_score",
        "mean",
        (items[0].name,),
        min_answered=1,
        prorate=draw(st.booleans()),
        decimals=draw(st.none() | st.integers(0, 3)),
    )
    scores = (ScoreRule("total_score", "sum", (items[0].name,)), mean) if numeric else ()
    return Definition("gen", "1", draw(texts), ("en",), tuple(items), scores)


@settings(max_examples=150)
@given(definitions())
def test_dumping_and_loading_any_definition_round_trips(definition):
    data = dump(definition)
    assert load(json.loads(json.dumps(data))) == definition
    assert dump(load(data)) == data
