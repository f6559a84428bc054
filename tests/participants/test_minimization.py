"""Tests for participants.minimization (Pocock & Simon 1975), without Django.

Run alone with `pytest tests/participants/test_minimization.py -p no:django`.
"""

from __future__ import annotations

import ast
import bisect
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from participants import eligibility, minimization
from participants.minimization import (
    MEASURES,
    Decision,
    MinimizationError,
    allocate,
    choose,
    imbalance,
    level_for_value,
    p_allowed,
    probabilities,
    scores,
)

FAST = settings(max_examples=150, deadline=None)

# The module's own notion of a tie; used to compare scores that are sums of floats.
TOL = 1e-9


# --------------------------------------------------------------------------- strategies

ARM_CODES = ("A", "B", "C", "D", "E")


@st.composite
def trials(draw, min_arms: int = 2, max_arms: int = 5):
    """(arms, counts, weights): counts[factor][arm] for the patient's level of each factor.

    Weights have at most three decimals, as the module assumes. Some arms may be missing
    from a factor's counts (they count as 0).
    """
    n_arms = draw(st.integers(min_arms, max_arms))
    arms = list(ARM_CODES[:n_arms])
    arms = draw(st.permutations(arms))
    n_factors = draw(st.integers(0, 5))
    counts = {}
    weights = {}
    for i in range(n_factors):
        factor = f"factor{i}"
        per_arm = draw(st.dictionaries(st.sampled_from(arms), st.integers(0, 60), max_size=n_arms))
        counts[factor] = per_arm
        weights[factor] = draw(st.integers(1, 5000)) / 1000
    return list(arms), counts, weights


measures = st.sampled_from(MEASURES)
p_values = st.floats(min_value=0.5, max_value=1.0)
seeds = st.integers(0, 2**32 - 1)
draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


class FixedDraw(random.Random):
    """An rng whose `random()` returns a chosen value, to drive `allocate` by hand."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# --------------------------------------------------------------------------- imbalance


def test_imbalance_range_is_max_minus_min():
    assert imbalance([3, 7, 5], "range") == 4.0


def test_imbalance_variance_and_sd_are_population_statistics():
    # [1, 2, 3]: mean 2, squared deviations 1 + 0 + 1 = 2, over n = 3 (not n - 1).
    assert math.isclose(imbalance([1, 2, 3], "variance"), 2 / 3)
    assert math.isclose(imbalance([1, 2, 3], "sd"), math.sqrt(2 / 3))


@FAST
@given(
    counts=st.lists(st.integers(0, 100), min_size=1, max_size=5),
    measure=measures,
    shift=st.integers(0, 50),
)
def test_imbalance_is_non_negative_zero_for_equal_counts_and_shift_invariant(
    counts, measure, shift
):
    value = imbalance(counts, measure)
    assert value >= 0
    assert math.isclose(imbalance([c + shift for c in counts], measure), value, abs_tol=TOL)
    assert imbalance([counts[0]] * len(counts), measure) == 0


# --------------------------------------------------------------------------- probabilities


@FAST
@given(trial=trials(), measure=measures, p=p_values)
def test_probabilities_sum_to_one(trial, measure, p):
    arms, counts, weights = trial
    probs = probabilities(arms, scores(arms, counts, weights, measure), p)
    assert set(probs) == set(arms)
    assert all(0.0 <= value <= 1.0 for value in probs.values())
    assert math.isclose(sum(probs.values()), 1.0, rel_tol=1e-12)


@FAST
@given(trial=trials(), measure=measures, p=p_values, seed=seeds)
def test_allocated_probabilities_sum_to_one_and_the_chosen_arm_is_possible(trial, measure, p, seed):
    arms, counts, weights = trial
    assume(p_allowed(p, [1] * len(arms)))  # allocate refuses a lower p
    decision = allocate(
        arms=arms,
        counts=counts,
        weights=weights,
        measure=measure,
        p=p,
        rng=random.Random(seed),
    )
    assert math.isclose(sum(decision.probabilities.values()), 1.0, rel_tol=1e-12)
    assert decision.probabilities[decision.arm] > 0
    assert decision.method == "minimization"


@FAST
@given(trial=trials(), measure=measures, seed=seeds)
def test_with_p_one_the_chosen_arm_always_has_the_minimal_total_score(trial, measure, seed):
    arms, counts, weights = trial
    decision = allocate(
        arms=arms,
        counts=counts,
        weights=weights,
        measure=measure,
        p=1.0,
        rng=random.Random(seed),
    )
    assert decision.scores == scores(arms, counts, weights, measure)
    assert decision.scores[decision.arm] <= min(decision.scores.values()) + TOL


@FAST
@given(
    arms=st.lists(st.sampled_from(ARM_CODES), min_size=2, max_size=5, unique=True),
    levels=st.lists(st.integers(0, 60), max_size=5),
    measure=measures,
    p=st.floats(min_value=0.0, max_value=1.0),
)
def test_when_all_arms_tie_probabilities_are_uniform_whatever_p(arms, levels, measure, p):
    # Every arm has the same count for every factor: by symmetry every arm scores the same.
    counts = {f"f{i}": {arm: level for arm in arms} for i, level in enumerate(levels)}
    weights = {factor: 1.5 for factor in counts}
    totals = scores(arms, counts, weights, measure)
    probs = probabilities(arms, totals, p)
    assert probs == {arm: 1.0 / len(arms) for arm in arms}


@pytest.mark.parametrize("p", [0.0, 0.5, 0.8, 1.0])
def test_with_no_factors_every_arm_scores_zero_and_is_equally_likely(p):
    arms = ["A", "B", "C"]
    totals = scores(arms, {}, {}, "range")
    assert totals == {"A": 0.0, "B": 0.0, "C": 0.0}
    assert probabilities(arms, totals, p) == {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}


def test_modic_like_two_arm_example_gives_p_to_the_minimizing_arm():
    # Four factors as in a Modic-changes trial; counts are the earlier participants in each
    # arm who share the new patient's level. Range measure, p = 0.8, sex weighted 2.
    arms = ["A", "B"]
    counts = {
        "sex": {"A": 10, "B": 8},
        "age": {"A": 5, "B": 7},
        "pain": {"A": 3, "B": 3},
        "modic": {"A": 6, "B": 4},
    }
    weights = {"sex": 2, "age": 1, "pain": 1, "modic": 1}
    # Patient to A: sex 11-8=3 (x2 = 6), age |6-7|=1, pain |4-3|=1, modic 7-4=3 -> 11.
    # Patient to B: sex 10-9=1 (x2 = 2), age |5-8|=3, pain |3-4|=1, modic 6-5=1 -> 7.
    # B alone minimizes: B gets p = 0.8, A gets 1 - p = 0.2.
    totals = scores(arms, counts, weights, "range")
    assert totals == {"A": 11.0, "B": 7.0}
    probs = probabilities(arms, totals, 0.8)
    assert probs["B"] == 0.8
    assert math.isclose(probs["A"], 0.2, rel_tol=1e-12)

    # The same through allocate, with the draw fixed either side of A's interval [0, 0.2).
    below = allocate(
        arms=arms,
        counts=counts,
        weights=weights,
        measure="range",
        p=0.8,
        rng=FixedDraw(0.19),
    )
    above = allocate(
        arms=arms,
        counts=counts,
        weights=weights,
        measure="range",
        p=0.8,
        rng=FixedDraw(0.2),
    )
    assert below == Decision(
        arm="A", method="minimization", scores=totals, probabilities=probs, draw=0.19
    )
    assert above.arm == "B"


def test_tied_minimizing_arms_share_p_and_the_others_share_one_minus_p():
    arms = ["A", "B", "C", "D"]
    totals = {"A": 2.0, "B": 5.0, "C": 2.0, "D": 3.0}
    probs = probabilities(arms, totals, 0.8)
    assert math.isclose(probs["A"], 0.4) and math.isclose(probs["C"], 0.4)
    assert math.isclose(probs["B"], 0.1) and math.isclose(probs["D"], 0.1)


def test_totals_within_rounding_error_count_as_a_tie():
    # 0.1 + 0.2 != 0.3 in floating point, yet those totals are the same score.
    probs = probabilities(["A", "B", "C"], {"A": 0.1 + 0.2, "B": 0.3, "C": 1.0}, 0.9)
    assert probs["A"] == probs["B"] == pytest.approx(0.45)
    assert probs["C"] == pytest.approx(0.1)


@FAST
@given(
    arms=st.lists(st.sampled_from(ARM_CODES), min_size=2, max_size=5, unique=True),
    data=st.data(),
    p=st.floats(min_value=0.0, max_value=1.0),
)
def test_minimizing_arms_share_p_equally_and_the_others_share_the_rest_equally(arms, data, p):
    totals = {arm: float(data.draw(st.integers(0, 4), label=arm)) for arm in arms}
    probs = probabilities(arms, totals, p)
    best = min(totals.values())
    minimal = [arm for arm in arms if totals[arm] == best]
    others = [arm for arm in arms if totals[arm] != best]
    if not others:
        assert probs == {arm: 1 / len(arms) for arm in arms}
        return
    for arm in minimal:
        assert math.isclose(probs[arm], p / len(minimal))
    for arm in others:
        assert math.isclose(probs[arm], (1 - p) / len(others), abs_tol=1e-15)


# --------------------------------------------------------------------------- measures


def test_range_and_variance_can_prefer_different_arms():
    # Three arms, two factors of weight 1, counts for the patient's levels:
    #   f1: A=0 B=1 C=1        f2: A=2 B=0 C=3
    #
    # f1 with the patient added to A: [1,1,1] range 0, variance 0
    #                          to B: [0,2,1] range 2, mean 1, variance (1+1+0)/3 = 2/3
    #                          to C: [0,1,2] range 2, mean 1, variance (1+0+1)/3 = 2/3
    # f2 with the patient added to A: [3,0,3] range 3, mean 2, variance (1+4+1)/3 = 2
    #                          to B: [2,1,3] range 2, mean 2, variance (0+1+1)/3 = 2/3
    #                          to C: [2,0,4] range 4, mean 2, variance (0+4+4)/3 = 8/3
    #
    # Total range:    A 0+3 = 3,  B 2+2 = 4,        C 2+4 = 6      -> A minimizes.
    # Total variance: A 0+2 = 2,  B 2/3+2/3 = 4/3,  C 2/3+8/3 = 10/3 -> B minimizes.
    arms = ["A", "B", "C"]
    counts = {"f1": {"A": 0, "B": 1, "C": 1}, "f2": {"A": 2, "B": 0, "C": 3}}
    weights = {"f1": 1, "f2": 1}

    by_range = scores(arms, counts, weights, "range")
    assert by_range == {"A": 3.0, "B": 4.0, "C": 6.0}
    by_variance = scores(arms, counts, weights, "variance")
    assert by_variance == pytest.approx({"A": 2.0, "B": 4 / 3, "C": 10 / 3})

    for seed in range(20):
        for measure, expected in (("range", "A"), ("variance", "B")):
            decision = allocate(
                arms=arms,
                counts=counts,
                weights=weights,
                measure=measure,
                p=1.0,
                rng=random.Random(seed),
            )
            assert decision.arm == expected, (measure, seed)
            assert decision.probabilities[expected] == 1.0


def test_weights_scale_each_factor_contribution():
    arms = ["A", "B"]
    counts = {"f1": {"A": 1}, "f2": {"B": 1}}
    # Unweighted the arms tie (each candidate: one factor at range 0, the other at 2).
    assert scores(arms, counts, {"f1": 1, "f2": 1}, "range") == {"A": 2.0, "B": 2.0}
    # Weighting f1 makes adding to A (which worsens f1) cost more.
    assert scores(arms, counts, {"f1": 3, "f2": 1}, "range") == {"A": 6.0, "B": 2.0}


def test_an_arm_missing_from_a_factors_counts_counts_as_zero():
    arms = ["A", "B", "C"]
    sparse = scores(arms, {"f": {"B": 2}}, {"f": 1}, "variance")
    explicit = scores(arms, {"f": {"A": 0, "B": 2, "C": 0}}, {"f": 1}, "variance")
    assert sparse == explicit


# --------------------------------------------------------------------------- simulation

SIM_ARMS = ("A", "B")
SIM_FACTORS = ("sex", "age", "pain", "modic")


def simulate_trial(seed: int, *, simple_randomization: bool, patients: int = 200) -> int:
    """Total imbalance after a simulated trial: sum over every level of every factor of
    |arm A - arm B|. Patients' levels depend only on `seed`, so minimization and simple
    randomization see the same patients in the same order."""
    patient_rng = random.Random(seed)
    allocation_rng = random.Random(seed + 1_000_003)
    tally = {(f, level): dict.fromkeys(SIM_ARMS, 0) for f in SIM_FACTORS for level in (0, 1)}
    for _ in range(patients):
        levels = {f: patient_rng.randrange(2) for f in SIM_FACTORS}
        decision = allocate(
            arms=SIM_ARMS,
            counts={f: dict(tally[(f, levels[f])]) for f in SIM_FACTORS},
            weights=dict.fromkeys(SIM_FACTORS, 1),
            measure="range",
            p=0.8,
            rng=allocation_rng,
            simple_randomization=simple_randomization,
        )
        for f in SIM_FACTORS:
            tally[(f, levels[f])][decision.arm] += 1
    return sum(abs(per_arm["A"] - per_arm["B"]) for per_arm in tally.values())


def test_minimization_balances_factors_better_than_simple_randomization():
    # 20 simulated trials of 200 patients, 2 arms, 4 binary factors, fixed seeds.
    # Simple randomization leaves each of the 8 levels (~100 patients each) off by about
    # sqrt(100) * 0.8 = 8, about 60 in total; minimization with p = 0.8 keeps the total near
    # 10. Requiring less than half is a wide margin, yet a broken minimization fails it: an
    # implementation that preferred the *worst* arm would push the imbalance well above
    # simple randomization's, and one that ignored the scores would match it.
    seeds_ = range(20)
    minimized = [simulate_trial(s, simple_randomization=False) for s in seeds_]
    randomized = [simulate_trial(s, simple_randomization=True) for s in seeds_]
    mean_minimized = sum(minimized) / len(minimized)
    mean_randomized = sum(randomized) / len(randomized)
    assert mean_minimized < mean_randomized / 2, (mean_minimized, mean_randomized)


def test_simple_randomization_gives_equal_probabilities_but_still_reports_scores():
    arms = ["A", "B", "C"]
    counts = {"f": {"A": 5, "B": 0, "C": 0}}
    decision = allocate(
        arms=arms,
        counts=counts,
        weights={"f": 1},
        measure="range",
        p=1.0,
        rng=random.Random(1),
        simple_randomization=True,
    )
    assert decision.method == "random"
    assert decision.probabilities == {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}
    assert decision.scores == scores(arms, counts, {"f": 1}, "range")


def test_simple_randomization_can_choose_an_arm_minimization_with_p_one_never_would():
    # A is clearly the worst arm; with p = 1 it can never be chosen, but during the
    # initial simple randomization a draw in [0, 1/3) gives A.
    arms = ["A", "B", "C"]
    kwargs = dict(arms=arms, counts={"f": {"A": 5}}, weights={"f": 1}, measure="range", p=1.0)
    assert allocate(**kwargs, rng=FixedDraw(0.1), simple_randomization=True).arm == "A"
    assert allocate(**kwargs, rng=FixedDraw(0.1)).arm != "A"


# --------------------------------------------------------------------------- choose


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (0.0, "A"),
        (math.nextafter(0.2, 0.0), "A"),
        (0.2, "B"),
        (math.nextafter(0.5, 0.0), "B"),
        (0.5, "C"),
        (math.nextafter(1.0, 0.0), "C"),
    ],
)
def test_choose_walks_cumulative_probabilities_in_arm_order(draw, expected):
    # Intervals: A [0, 0.2), B [0.2, 0.5), C [0.5, 1).
    assert choose(["A", "B", "C"], {"A": 0.2, "B": 0.3, "C": 0.5}, draw) == expected


@pytest.mark.parametrize("draw", [-1e-12, -1.0, 1.0, 1.5, math.nan, math.inf, -math.inf])
def test_choose_rejects_draws_outside_zero_one(draw):
    with pytest.raises(MinimizationError):
        choose(["A", "B"], {"A": 0.5, "B": 0.5}, draw)


@pytest.mark.parametrize("draw", [0.0, 0.5, math.nextafter(1.0, 0.0)])
def test_choose_never_picks_an_arm_with_probability_zero(draw):
    # p = 1: the non-minimizing arms have probability exactly 0, wherever they sit.
    assert choose(["A", "B"], {"A": 0.0, "B": 1.0}, draw) == "B"
    assert choose(["A", "B"], {"A": 1.0, "B": 0.0}, draw) == "A"
    probs = {"A": 0.0, "B": 0.5, "C": 0.0, "D": 0.5, "E": 0.0}
    assert choose(list(probs), probs, draw) in {"B", "D"}


@FAST
@given(trial=trials(), measure=measures, draw=draws)
def test_with_p_one_choose_only_ever_returns_a_minimizing_arm(trial, measure, draw):
    arms, counts, weights = trial
    totals = scores(arms, counts, weights, measure)
    probs = probabilities(arms, totals, 1.0)
    arm = choose(arms, probs, draw)
    assert probs[arm] > 0
    assert totals[arm] <= min(totals.values()) + TOL


def test_choose_gives_the_remainder_to_the_last_possible_arm_when_rounding_falls_short():
    # Float probabilities need not sum to exactly 1; a draw at the top of [0, 1) must still
    # land on an arm with probability, never on a trailing zero-probability arm.
    third = 1 / 3
    probs = {"A": third, "B": third, "C": third, "D": 0.0}
    assert choose(list(probs), probs, math.nextafter(1.0, 0.0)) == "C"
    short = {"A": 0.5, "B": 0.5 - 1e-12, "C": 0.0}
    assert choose(list(short), short, math.nextafter(1.0, 0.0)) == "B"


# --------------------------------------------------------------------------- replay


@FAST
@given(trial=trials(), measure=measures, p=p_values, seed=seeds, simple=st.booleans())
def test_the_same_seed_gives_the_same_decision_and_the_draw_replays_to_the_arm(
    trial, measure, p, seed, simple
):
    arms, counts, weights = trial
    assume(p_allowed(p, [1] * len(arms)))  # allocate refuses a lower p
    kwargs = dict(
        arms=arms,
        counts=counts,
        weights=weights,
        measure=measure,
        p=p,
        simple_randomization=simple,
    )
    first = allocate(**kwargs, rng=random.Random(seed))
    second = allocate(**kwargs, rng=random.Random(seed))
    assert first == second
    assert first.draw == random.Random(seed).random()
    assert choose(arms, first.probabilities, first.draw) == first.arm


# --------------------------------------------------------------------------- levels

AGE = [("under40", None, 40), ("40plus", 40, None)]
PAIN = [("4-6", None, 7), ("7-10", 7, None)]


@pytest.mark.parametrize(
    ("levels", "value", "expected"),
    [
        (AGE, 18, "under40"),
        (AGE, 39, "under40"),
        (AGE, 40, "40plus"),
        (AGE, 90, "40plus"),
        (PAIN, 4, "4-6"),
        (PAIN, 6, "4-6"),
        (PAIN, 7, "7-10"),
        (PAIN, 10, "7-10"),
    ],
)
def test_level_for_value_uses_half_open_intervals(levels, value, expected):
    assert level_for_value(levels, value) == expected


@pytest.mark.parametrize(
    ("levels", "value"),
    [
        ([("low", 0, 10), ("high", 11, None)], 10),  # gap at 10
        ([("low", 0, 10), ("high", 10, None)], -1),  # below the first level
        ([("low", None, 10), ("high", 5, None)], 7),  # overlap on [5, 10)
        ([("all", None, None), ("also", None, None)], 0),  # two open levels
        ([], 3),  # no levels at all
    ],
)
def test_level_for_value_rejects_uncovered_or_overlapping_values(levels, value):
    with pytest.raises(MinimizationError):
        level_for_value(levels, value)


@FAST
@given(
    cuts=st.lists(st.integers(-1000, 1000), min_size=1, max_size=6, unique=True).map(sorted),
    value=st.integers(-2000, 2000),
)
def test_for_sorted_distinct_cut_points_every_integer_maps_to_exactly_one_level(cuts, value):
    bounds = [None, *cuts, None]
    levels = [(f"L{i}", bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    # Level i holds the values with exactly i cut points at or below them.
    assert level_for_value(levels, value) == f"L{bisect.bisect_right(cuts, value)}"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("arms", [[], ["A"]])
def test_fewer_than_two_arms_is_an_error(arms):
    with pytest.raises(MinimizationError, match="two arms"):
        scores(arms, {}, {}, "range")
    with pytest.raises(MinimizationError, match="two arms"):
        probabilities(arms, dict.fromkeys(arms, 0.0), 0.8)
    with pytest.raises(MinimizationError, match="two arms"):
        allocate(arms=arms, counts={}, weights={}, measure="range", p=0.8, rng=random.Random(0))


def test_duplicate_arms_are_an_error():
    arms = ["A", "B", "A"]
    with pytest.raises(MinimizationError, match="unique"):
        scores(arms, {}, {}, "range")
    with pytest.raises(MinimizationError, match="unique"):
        probabilities(arms, {"A": 0.0, "B": 0.0}, 0.8)
    with pytest.raises(MinimizationError, match="unique"):
        allocate(arms=arms, counts={}, weights={}, measure="range", p=0.8, rng=random.Random(0))


@pytest.mark.parametrize("measure", ["Range", "std", "", "mad"])
def test_unknown_measure_is_an_error(measure):
    with pytest.raises(MinimizationError, match="measure"):
        imbalance([1, 2], measure)
    with pytest.raises(MinimizationError, match="measure"):
        scores(["A", "B"], {"f": {"A": 1}}, {"f": 1}, measure)
    # allocate checks the measure even when there is no factor to measure.
    with pytest.raises(MinimizationError, match="measure"):
        allocate(
            arms=["A", "B"], counts={}, weights={}, measure=measure, p=0.8, rng=random.Random(0)
        )


def test_a_factor_without_a_weight_is_an_error():
    with pytest.raises(MinimizationError, match="modic"):
        allocate(
            arms=["A", "B"],
            counts={"sex": {"A": 1}, "modic": {"B": 2}},
            weights={"sex": 1},
            measure="range",
            p=0.8,
            rng=random.Random(0),
        )


@pytest.mark.parametrize("p", [-0.1, 1.1, math.nan])
def test_p_outside_zero_one_is_an_error(p):
    with pytest.raises(MinimizationError, match="p must"):
        probabilities(["A", "B"], {"A": 0.0, "B": 1.0}, p)
    with pytest.raises(MinimizationError, match="p must"):
        allocate(arms=["A", "B"], counts={}, weights={}, measure="sd", p=p, rng=random.Random(0))


def test_imbalance_of_no_counts_is_an_error():
    with pytest.raises(MinimizationError):
        imbalance([], "range")


def test_minimization_error_is_a_value_error():
    assert issubclass(MinimizationError, ValueError)


# --------------------------------------------------------------------------- no Django


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, level) for every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("module", [minimization, eligibility], ids=lambda m: m.__name__)
def test_pure_modules_import_nothing_from_django(module):
    path = Path(module.__file__)
    imports = _imported_modules(path)
    assert imports, f"expected to find the import statements of {path}"
    django = [name for name, _ in imports if name == "django" or name.startswith("django.")]
    assert django == [], f"{path.name} imports {django}"
    # A relative or project import could pull Django in indirectly (participants.models...).
    relative = [name for name, level in imports if level > 0]
    assert relative == [], f"{path.name} has relative imports {relative}"
    project = [name for name, _ in imports if name.split(".")[0] == "participants"]
    assert project == [], f"{path.name} imports project modules {project}"
    # And no dynamic imports to get around the static check.
    source = path.read_text(encoding="utf-8")
    assert "__import__" not in source and "import_module" not in source


def test_importing_the_pure_modules_does_not_load_django():
    root = Path(minimization.__file__).resolve().parents[1]
    code = (
        "import sys\n"
        "import participants.minimization, participants.eligibility\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]", result.stdout
