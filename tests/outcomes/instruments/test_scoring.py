"""The instruments' scoring rules (outcomes.instruments.scoring): pure functions, tested without Django.

The EQ-5D-3L anchors below are computed by hand from Dolan's published UK TTO N3 model
(Med Care 1997;35:1095-108), not from the module's own table, so a wrong coefficient in
outcomes.instruments.scoring fails these tests rather than being checked against itself.
"""

from __future__ import annotations

import ast
import copy
import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.instruments import scoring
from outcomes.instruments.scoring import (
    EQ5D_DIMENSIONS,
    EQ5D_UK_TTO_DOLAN_1997,
    GLOBAL_CHOICES,
    EQ5DValueSet,
    ScoringError,
    eq5d_index,
    eq5d_profile,
    eq5d_vas,
    global_improved,
    pain_nrs,
    rmdq,
)

SETTINGS = settings(max_examples=200, deadline=None)

UK = EQ5DValueSet.from_dict("uk-tto-dolan-1997", EQ5D_UK_TTO_DOLAN_1997)

# Dolan 1997, UK TTO, N3 model (Table 4 of the paper), written out independently of the module:
#   index = 1 - 0.081 (if any level > 1) - decrements - 0.269 (if any level is 3)
#   level 2 / level 3 decrements:
#     mobility 0.069 / 0.314        self-care 0.104 / 0.214     usual activities 0.036 / 0.094
#     pain/discomfort 0.123 / 0.386 anxiety/depression 0.071 / 0.236
PUBLISHED_CONSTANT = Decimal("0.081")
PUBLISHED_N3 = Decimal("0.269")
PUBLISHED_DECREMENTS = {
    "MO": {2: Decimal("0.069"), 3: Decimal("0.314")},
    "SC": {2: Decimal("0.104"), 3: Decimal("0.214")},
    "UA": {2: Decimal("0.036"), 3: Decimal("0.094")},
    "PD": {2: Decimal("0.123"), 3: Decimal("0.386")},
    "AD": {2: Decimal("0.071"), 3: Decimal("0.236")},
}

ALL_STATES = ["".join(levels) for levels in itertools.product("123", repeat=5)]


def published_index(profile: str) -> Decimal:
    """The UK TTO index of a state, exactly, from the coefficients above."""
    levels = [int(ch) for ch in profile]
    if all(level == 1 for level in levels):
        return Decimal(1)
    index = Decimal(1) - PUBLISHED_CONSTANT
    for dim, level in zip(EQ5D_DIMENSIONS, levels, strict=True):
        if level > 1:
            index -= PUBLISHED_DECREMENTS[dim][level]
    if 3 in levels:
        index -= PUBLISHED_N3
    return index


def worse_by_one_level(profile: str) -> list[str]:
    """Every state that is the given one with a single dimension one level worse."""
    return [
        profile[:i] + str(int(ch) + 1) + profile[i + 1 :]
        for i, ch in enumerate(profile)
        if ch != "3"
    ]


# --- Pain NRS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", range(11))
def test_a_pain_rating_from_0_to_10_is_its_own_score(value):
    assert pain_nrs(value) == value


def test_an_unanswered_pain_rating_has_no_score():
    assert pain_nrs(None) is None


@pytest.mark.parametrize("value", [-1, 11, 3.5, True, False, "5"])
def test_a_pain_rating_outside_the_whole_numbers_0_to_10_is_refused(value):
    with pytest.raises(ScoringError):
        pain_nrs(value)


@SETTINGS
@given(st.integers().filter(lambda v: not 0 <= v <= 10))
def test_any_whole_number_outside_0_to_10_is_refused_as_a_pain_rating(value):
    with pytest.raises(ScoringError):
        pain_nrs(value)


# --- Roland-Morris -------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.booleans(), min_size=23, max_size=23))
def test_the_rmdq_score_is_the_number_of_yes_answers_between_0_and_23(items):
    score = rmdq(items)
    assert score == items.count(True)
    assert type(score) is int
    assert 0 <= score <= 23


def test_the_rmdq_scores_all_no_as_0_and_all_yes_as_23():
    assert rmdq([False] * 23) == 0
    assert rmdq([True] * 23) == 23
    assert rmdq(tuple([True] * 5 + [False] * 18)) == 5


@SETTINGS
@given(
    st.lists(st.one_of(st.booleans(), st.none()), min_size=22, max_size=22),
    st.integers(min_value=0, max_value=22),
)
def test_the_rmdq_score_is_missing_when_any_item_is_unanswered(items, position):
    items.insert(position, None)
    assert rmdq(items) is None


@pytest.mark.parametrize("length", [0, 22, 24])
def test_an_rmdq_with_other_than_23_items_is_refused(length):
    with pytest.raises(ScoringError):
        rmdq([True] * length)


@pytest.mark.parametrize("bad_item", [1, 0, "yes", "no"])
def test_an_rmdq_item_that_is_not_yes_no_or_unanswered_is_refused(bad_item):
    items: list = [False] * 23
    items[7] = bad_item
    with pytest.raises(ScoringError):
        rmdq(items)


def test_a_non_yes_no_rmdq_item_is_refused_even_when_another_item_is_unanswered():
    items: list = [False] * 23
    items[0] = None
    items[1] = "yes"
    with pytest.raises(ScoringError):
        rmdq(items)


# --- EQ-5D-3L index ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("11111", 1.0),  # full health
        ("11112", 0.848),  # 1 - 0.081 - 0.071
        ("21111", 0.850),  # 1 - 0.081 - 0.069
        ("11211", 0.883),  # 1 - 0.081 - 0.036
        ("12111", 0.815),  # 1 - 0.081 - 0.104
        ("11121", 0.796),  # 1 - 0.081 - 0.123
        ("11113", 0.414),  # 1 - 0.081 - 0.236 - 0.269
        ("22222", 0.516),  # 1 - 0.081 - (0.069 + 0.104 + 0.036 + 0.123 + 0.071)
        ("33333", -0.594),  # 1 - 0.081 - (0.314 + 0.214 + 0.094 + 0.386 + 0.236) - 0.269
    ],
)
def test_the_uk_tto_value_set_gives_the_published_index_of_anchor_states(profile, expected):
    assert eq5d_index(profile, UK) == expected


def test_the_modules_uk_value_set_has_dolans_published_coefficients():
    assert UK.constant == float(PUBLISHED_CONSTANT)
    assert UK.n3 == float(PUBLISHED_N3)
    assert {dim: dict(levels) for dim, levels in UK.decrements.items()} == {
        dim: {level: float(value) for level, value in levels.items()}
        for dim, levels in PUBLISHED_DECREMENTS.items()
    }


@pytest.mark.parametrize("profile", ALL_STATES)
def test_every_health_state_scores_its_published_uk_index_to_3_decimals(profile):
    index = eq5d_index(profile, UK)
    assert index == float(published_index(profile))
    assert round(index, 3) == index


def test_no_health_state_scores_above_1_and_only_full_health_scores_exactly_1():
    indices = {profile: eq5d_index(profile, UK) for profile in ALL_STATES}
    assert len(indices) == 243
    assert all(index <= 1 for index in indices.values())
    assert [profile for profile, index in indices.items() if index == 1.0] == ["11111"]


def test_the_worst_health_state_is_33333_at_minus_0_594():
    indices = {profile: eq5d_index(profile, UK) for profile in ALL_STATES}
    lowest = min(indices.values())
    assert lowest == -0.594
    assert [profile for profile, index in indices.items() if index == lowest] == ["33333"]


def test_worsening_any_one_dimension_by_one_level_never_raises_the_index():
    checked = 0
    for profile in ALL_STATES:
        for worse in worse_by_one_level(profile):
            assert eq5d_index(worse, UK) <= eq5d_index(profile, UK), (profile, worse)
            checked += 1
    assert checked == 5 * 2 * 81  # each dimension: 81 states at level 1 and 81 at level 2


@pytest.mark.parametrize("profile", ["1111", "111111", "11114", "11110", "abcde", "", "1111 "])
def test_an_index_of_anything_but_five_digits_1_to_3_is_refused(profile):
    with pytest.raises(ScoringError):
        eq5d_index(profile, UK)


def test_a_missing_health_state_has_no_index():
    assert eq5d_index(None, UK) is None


# --- EQ-5D-3L profile ----------------------------------------------------------------------------


def test_the_health_state_is_the_five_levels_in_dimension_order():
    # Given in a different order from the dimensions, to show the order is the instrument's.
    levels = {"AD": 3, "PD": 2, "UA": 2, "SC": 1, "MO": 1}
    assert eq5d_profile(levels) == "11223"


@SETTINGS
@given(st.tuples(*[st.integers(min_value=1, max_value=3)] * 5))
def test_any_five_levels_make_the_health_state_that_eq5d_index_accepts(levels):
    profile = eq5d_profile(dict(zip(EQ5D_DIMENSIONS, levels, strict=True)))
    assert profile == "".join(str(level) for level in levels)
    assert eq5d_index(profile, UK) == float(published_index(profile))


@pytest.mark.parametrize("dim", EQ5D_DIMENSIONS)
def test_the_health_state_is_missing_when_any_dimension_is_unanswered(dim):
    levels: dict = dict.fromkeys(EQ5D_DIMENSIONS, 2)
    assert eq5d_profile({**levels, dim: None}) is None
    del levels[dim]
    assert eq5d_profile(levels) is None


@pytest.mark.parametrize("bad_level", [0, 4, True, 2.0, "2"])
@pytest.mark.parametrize("dim", EQ5D_DIMENSIONS)
def test_an_eq5d_level_other_than_1_2_or_3_is_refused(dim, bad_level):
    levels: dict = dict.fromkeys(EQ5D_DIMENSIONS, 1)
    levels[dim] = bad_level
    with pytest.raises(ScoringError):
        eq5d_profile(levels)


# --- EQ-5D-3L value sets -------------------------------------------------------------------------


def test_the_uk_value_set_parses_from_its_stored_form():
    value_set = EQ5DValueSet.from_dict("uk-tto-dolan-1997", EQ5D_UK_TTO_DOLAN_1997)
    assert value_set.code == "uk-tto-dolan-1997"
    assert value_set.constant == 0.081
    assert value_set.n3 == 0.269
    assert set(value_set.decrements) == set(EQ5D_DIMENSIONS)
    assert value_set.decrements["PD"] == {2: 0.123, 3: 0.386}


def uk_data_with(change) -> dict:
    """A deep copy of the stored UK data, then changed in place by `change`."""
    data = {
        "constant": EQ5D_UK_TTO_DOLAN_1997["constant"],
        "n3": EQ5D_UK_TTO_DOLAN_1997["n3"],
        "decrements": {
            dim: dict(levels) for dim, levels in EQ5D_UK_TTO_DOLAN_1997["decrements"].items()
        },
    }
    change(data)
    return data


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.pop("constant"), id="no constant"),
        pytest.param(lambda d: d.pop("n3"), id="no n3"),
        pytest.param(lambda d: d.pop("decrements"), id="no decrements"),
        pytest.param(lambda d: d["decrements"].pop("AD"), id="no AD dimension"),
        pytest.param(lambda d: d["decrements"]["MO"].pop("3"), id="no MO level 3"),
        pytest.param(lambda d: d["decrements"]["UA"].pop("2"), id="no UA level 2"),
        pytest.param(lambda d: d["decrements"]["SC"].update({"1": 0.0}), id="extra level 1"),
        pytest.param(lambda d: d.update(constant="a lot"), id="non-numeric constant"),
        pytest.param(lambda d: d.update(n3=None), id="null n3"),
        pytest.param(lambda d: d["decrements"]["PD"].update({"3": "x"}), id="non-numeric PD 3"),
        pytest.param(lambda d: d["decrements"]["PD"].update({"3": [1]}), id="list PD 3"),
        pytest.param(lambda d: d["decrements"]["AD"].update({"two": 0.1}), id="level not a number"),
    ],
)
def test_an_incomplete_or_non_numeric_value_set_is_refused(change):
    with pytest.raises(ScoringError):
        EQ5DValueSet.from_dict("broken", uk_data_with(change))


@pytest.mark.parametrize("data", [None, {}, [], "uk"])
def test_a_value_set_that_is_not_a_mapping_of_coefficients_is_refused(data):
    with pytest.raises(ScoringError):
        EQ5DValueSet.from_dict("broken", data)


# --- EQ VAS --------------------------------------------------------------------------------------


@SETTINGS
@given(st.integers(min_value=0, max_value=100))
def test_an_eq_vas_from_0_to_100_is_its_own_score(value):
    assert eq5d_vas(value) == value


def test_an_unanswered_eq_vas_has_no_score():
    assert eq5d_vas(None) is None


@pytest.mark.parametrize("value", [-1, 101, 50.5, True, "50"])
def test_an_eq_vas_outside_the_whole_numbers_0_to_100_is_refused(value):
    with pytest.raises(ScoringError):
        eq5d_vas(value)


# --- Global assessment ---------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [1, 2])
def test_much_better_and_better_count_as_improved(answer):
    assert global_improved(answer) is True


@pytest.mark.parametrize("answer", [3, 4, 5, 6, 7])
def test_slightly_better_and_the_answers_below_it_do_not_count_as_improved(answer):
    assert global_improved(answer) is False


def test_an_unanswered_global_assessment_has_no_improvement_status():
    assert global_improved(None) is None


@pytest.mark.parametrize("answer", [0, 8, -1, True, False, "1"])
def test_a_global_answer_other_than_1_to_7_is_refused(answer):
    with pytest.raises(ScoringError):
        global_improved(answer)


def test_the_global_question_offers_seven_labelled_answers_from_much_better_to_much_worse():
    assert GLOBAL_CHOICES == (
        (1, "Much better"),
        (2, "Better"),
        (3, "Slightly better"),
        (4, "Unchanged"),
        (5, "Slightly worse"),
        (6, "Worse"),
        (7, "Much worse"),
    )


# --- Purity --------------------------------------------------------------------------------------


def test_the_scoring_module_imports_nothing_from_django():
    source = Path(scoring.__file__).read_text(encoding="utf-8")
    imported = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    assert imported, "the check found no imports at all, so it is not reading the module"
    assert not [name for name in imported if name.split(".")[0] == "django"], imported
    assert not [name for name in imported if name.startswith(".")], imported
    assert "__import__" not in source and "importlib" not in source


# --- Input checking found by review ----------------------------------------------------------


@pytest.mark.parametrize("answer", [1.0, 2.0, Decimal(2), [1], "1"])
def test_the_global_answer_must_be_a_whole_number(answer):
    with pytest.raises(scoring.ScoringError):
        scoring.global_improved(answer)


def test_a_bad_eq5d_level_is_an_error_even_when_another_dimension_is_missing():
    with pytest.raises(scoring.ScoringError):
        scoring.eq5d_profile({"MO": 4})


@pytest.mark.parametrize(("call", "arg"), [("eq5d_index", 11111), ("rmdq", 5)])
def test_wrong_types_raise_scoring_errors(call, arg):
    with pytest.raises(scoring.ScoringError):
        if call == "eq5d_index":
            scoring.eq5d_index(arg, UK)
        else:
            scoring.rmdq(arg)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, True])
def test_a_value_set_coefficient_must_be_a_finite_non_negative_number(bad):
    data = copy.deepcopy(scoring.EQ5D_UK_TTO_DOLAN_1997)
    data["decrements"]["MO"]["2"] = bad
    with pytest.raises(scoring.ScoringError):
        scoring.EQ5DValueSet.from_dict("bad", data)
    data = copy.deepcopy(scoring.EQ5D_UK_TTO_DOLAN_1997)
    data["n3"] = bad
    with pytest.raises(scoring.ScoringError):
        scoring.EQ5DValueSet.from_dict("bad", data)
