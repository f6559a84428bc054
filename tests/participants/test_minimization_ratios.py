"""Unequal allocation ratios (Kuznetsova & Tymofyeyev 2012) and the bound on p, in
participants.minimization, without Django.

- The bound: with S slots (the sum of the ratios; K for K equal arms) and m of them
  minimizing, each minimizing slot gets p/m and each other (1 − p)/(S − m); no other slot
  is likelier than a minimizing one for every m exactly when p ≥ (S − 1)/S.
- For unequal ratios the statement is per unit of ratio: an arm gets w times a slot's
  probability when all its w slots are alike, so comparing arms of different ratios by their
  total would compare a 2-slot arm with a 1-slot one. What must hold is that an arm none of
  whose slots minimizes never gets more probability *per unit of its ratio* (P/w) than an
  arm with a minimizing slot; with equal ratios that is "a non-minimizing arm never gets
  more probability than a minimizing one".
- Allocation-ratio preservation: the unconditional probability of arm k at every
  allocation is w_k/S, computed exactly by enumerating every allocation path.
- Equal ratios: exactly the allocations of v1 (a copy of v1 is kept below as the reference).
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from participants import minimization
from participants.minimization import (
    MEASURES,
    MinimizationError,
    allocate,
    decide,
    p_allowed,
    preferred_probability_bound,
    probabilities,
    record,
    slot_counts,
    slots,
)

FAST = settings(max_examples=200, deadline=None)
TOL = 1e-9
ARM_CODES = ("A", "B", "C", "D", "E")


class FixedDraw(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# --------------------------------------------------------------------------- strategies


@st.composite
def designs(draw, max_arms: int = 5, max_ratio: int = 3, equal: bool = False):
    """(arms, ratios, counts, weights): counts[factor][arm] in the record's shape (a number
    for a ratio-1 arm, a list per slot otherwise; some arms missing = 0)."""
    n_arms = draw(st.integers(2, max_arms))
    arms = list(draw(st.permutations(ARM_CODES[:n_arms])))
    ratios = {arm: 1 if equal else draw(st.integers(1, max_ratio)) for arm in arms}
    counts, weights = {}, {}
    for i in range(draw(st.integers(0, 4))):
        per_arm = {}
        for arm in arms:
            if draw(st.booleans()):
                values = [draw(st.integers(0, 30)) for _ in range(ratios[arm])]
                per_arm[arm] = values[0] if ratios[arm] == 1 else values
        counts[f"f{i}"] = per_arm
        weights[f"f{i}"] = draw(st.integers(1, 5000)) / 1000
    return arms, ratios, counts, weights


p_values = st.integers(500, 1000).map(lambda n: n / 1000)  # as a trial stores it: 3 decimals


# --------------------------------------------------------------------------- the bound


@pytest.mark.parametrize(
    ("ratios", "bound"),
    [
        ((1, 1), Fraction(1, 2)),
        ((1, 1, 1), Fraction(2, 3)),
        ((1, 1, 1, 1), Fraction(3, 4)),
        ((2, 1), Fraction(2, 3)),
        ((2, 2, 1), Fraction(4, 5)),
        ((3, 1), Fraction(3, 4)),
    ],
)
def test_the_bound_on_p_is_one_minus_one_over_the_number_of_slots(ratios, bound):
    assert preferred_probability_bound(ratios) == bound


def test_p_is_compared_with_the_bound_exactly_from_its_decimal_text():
    # The float 0.95 is a hair below 19/20; the trial stores 0.950, which meets the bound.
    assert Fraction(0.95) < Fraction(19, 20)
    assert p_allowed(0.95, [1] * 20)
    assert not p_allowed(0.949, [1] * 20)
    assert p_allowed(0.667, [1, 1, 1]) and not p_allowed(0.666, [1, 1, 1])


def test_the_issues_three_arm_example_is_refused():
    """Three arms, p = 0.6: the second of two identical participants saw the arm that had
    the first get 0.4 while each of the two others got 0.3."""
    arms = ["rest", "exercise", "sham"]
    counts = {f: {"rest": 1} for f in ("modic", "sex", "pain", "age")}
    weights = dict.fromkeys(counts, 1)
    totals = minimization.scores(arms, counts, weights, "range")
    assert totals == {"rest": 8.0, "exercise": 4.0, "sham": 4.0}
    # What v1 did with p = 0.6: the arm worsening balance is the likeliest.
    unbounded = probabilities(arms, totals, 0.6)
    assert unbounded["rest"] == pytest.approx(0.4) and unbounded["sham"] == pytest.approx(0.3)
    with pytest.raises(MinimizationError, match="below 2/3"):
        allocate(
            arms=arms, counts=counts, weights=weights, measure="range", p=0.6,
            rng=random.Random(1),
        )  # fmt: skip
    # At the bound the three are equally likely; above it the minimizing arms lead.
    for p in (0.667, 0.8):
        decision = allocate(
            arms=arms, counts=counts, weights=weights, measure="range", p=p,
            rng=random.Random(1),
        )  # fmt: skip
        assert decision.probabilities["rest"] <= decision.probabilities["sham"]


@pytest.mark.parametrize("ratios", [(1, 1, 1), (2, 1), (2, 2, 1), (1, 1, 1, 1), (3, 1)])
def test_the_bound_is_tight_just_below_it_a_non_minimizing_slot_gets_more(ratios):
    # S − 1 slots tie as minimizers and one does not: the lone one gets 1 − p, each of the
    # others p/(S − 1); equal at the bound, and more for the lone one just below it.
    total = sum(ratios)
    candidates = [f"s{i}" for i in range(total)]
    totals = {slot: 0.0 for slot in candidates[:-1]} | {candidates[-1]: 1.0}
    bound = float(preferred_probability_bound(ratios))
    at = probabilities(candidates, totals, bound)
    assert at[candidates[-1]] == pytest.approx(at[candidates[0]])
    below = probabilities(candidates, totals, bound - 0.001)
    assert below[candidates[-1]] > below[candidates[0]]


@FAST
@given(design=designs(), measure=st.sampled_from(MEASURES), p=p_values, seed=st.integers(0, 999))
def test_no_arm_worsening_balance_gets_more_probability_per_unit_of_ratio(design, measure, p, seed):
    """Over random designs: either allocate refuses p (below the bound) or every slot that
    does not minimize gets at most what every minimizing slot gets, hence an arm without a
    minimizing slot gets at most, per unit of its ratio, what an arm with one gets."""
    arms, ratios, counts, weights = design
    kwargs = dict(arms=arms, counts=counts, weights=weights, measure=measure, ratios=ratios)
    if not p_allowed(p, ratios.values()):
        with pytest.raises(MinimizationError, match="below"):
            allocate(**kwargs, p=p, rng=random.Random(seed))
        return
    decision = allocate(**kwargs, p=p, rng=random.Random(seed))
    per_slot_scores = _per_slot(arms, ratios, decision.scores)
    per_slot_probs = _per_slot(arms, ratios, decision.probabilities)
    best = min(per_slot_scores.values())
    minimizing = {s for s, score in per_slot_scores.items() if score - best <= TOL}
    if len(minimizing) < len(per_slot_scores):
        worst_minimizing = min(per_slot_probs[s] for s in minimizing)
        for s in set(per_slot_probs) - minimizing:
            assert per_slot_probs[s] <= worst_minimizing + 1e-12
    per_ratio = {arm: sum(_as_list(decision.probabilities[arm])) / ratios[arm] for arm in arms}
    leaders = [arm for arm in arms if any(s[0] == arm for s in minimizing)]
    for arm in set(arms) - set(leaders):
        assert all(per_ratio[arm] <= per_ratio[leader] + 1e-12 for leader in leaders)


@FAST
@given(design=designs(equal=True), measure=st.sampled_from(MEASURES), p=p_values)
def test_with_equal_ratios_a_non_minimizing_arm_never_gets_more_than_a_minimizing_one(
    design, measure, p
):
    arms, _, counts, weights = design
    assume(p_allowed(p, [1] * len(arms)))
    decision = allocate(
        arms=arms, counts=counts, weights=weights, measure=measure, p=p, rng=random.Random(0)
    )
    best = min(decision.scores.values())
    minimizing = [a for a in arms if decision.scores[a] - best <= TOL]
    for arm in set(arms) - set(minimizing):
        assert all(
            decision.probabilities[arm] <= decision.probabilities[m] + 1e-12 for m in minimizing
        )


# --------------------------------------------------------------------------- slots and records


def test_an_arm_with_ratio_w_has_w_slots_in_arm_order():
    assert slots(["A", "B", "C"], {"A": 2, "B": 2, "C": 1}) == [
        ("A", 1), ("A", 2), ("B", 1), ("B", 2), ("C", 1),
    ]  # fmt: skip
    assert slots(["B", "A"]) == [("B", 1), ("A", 1)]


def test_records_hold_a_number_for_a_ratio_one_arm_and_a_list_per_slot_otherwise():
    values = {("A", 1): 0.1, ("A", 2): 0.2, ("B", 1): 0.7}
    assert record(["A", "B"], {"A": 2, "B": 1}, values) == {"A": [0.1, 0.2], "B": 0.7}
    assert slot_counts(["A", "B"], {"A": 2, "B": 1}, {"A": [3, 4], "B": 5}) == {
        ("A", 1): 3, ("A", 2): 4, ("B", 1): 5,
    }  # fmt: skip
    assert slot_counts(["A", "B"], {"A": 2, "B": 1}, {}) == {("A", 1): 0, ("A", 2): 0, ("B", 1): 0}
    with pytest.raises(MinimizationError, match="ratio 2 but 1"):
        slot_counts(["A", "B"], {"A": 2, "B": 1}, {"A": 3})
    with pytest.raises(MinimizationError, match="unknown"):
        slot_counts(["A", "B"], None, {"Z": 1})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_ratio_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(MinimizationError, match="ratio"):
        slots(["A", "B"], {"A": bad, "B": 1})


def test_simple_randomization_follows_the_ratio():
    decision = allocate(
        arms=["A", "B", "C"], counts={"f": {"A": [9, 9]}}, weights={"f": 1}, measure="range",
        p=0.8, ratios={"A": 2, "B": 2, "C": 1}, rng=random.Random(3), simple_randomization=True,
    )  # fmt: skip
    assert decision.method == "random"
    assert decision.probabilities == {"A": [0.2, 0.2], "B": [0.2, 0.2], "C": 0.2}


def test_a_stored_draw_replays_to_the_same_arm_and_slot():
    kwargs = dict(
        arms=["A", "B"], counts={"f": {"A": [2, 1], "B": 1}}, weights={"f": 1},
        measure="variance", p=0.8, ratios={"A": 2, "B": 1},
    )  # fmt: skip
    for seed in range(50):
        made = allocate(**kwargs, rng=random.Random(seed))
        assert decide(**kwargs, draw=made.draw) == made


def test_the_draw_walks_the_slots_in_arm_then_slot_order():
    # 2:1, no factors: every slot 1/3; A1 [0, 1/3), A2 [1/3, 2/3), B [2/3, 1).
    kwargs = dict(arms=["A", "B"], counts={}, weights={}, measure="range", p=0.8)
    picks = [
        (d.arm, d.slot)
        for d in (
            allocate(**kwargs, ratios={"A": 2, "B": 1}, rng=FixedDraw(u))
            for u in (0.0, 0.33, 0.34, 0.66, 0.67, 0.99)
        )
    ]
    assert picks == [("A", 1), ("A", 1), ("A", 2), ("A", 2), ("B", 1), ("B", 1)]


# --------------------------------------------------------------------------- ratio preserved


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _per_slot(arms, ratios, shaped):
    return {(arm, n): v for arm in arms for n, v in enumerate(_as_list(shaped[arm]), 1)}


def unconditional_probabilities(arms, ratios, patients, *, p, measure, initial_random=0):
    """For each allocation j, the probability of each arm before anything is known: every
    path of earlier allocations enumerated with its probability (exact up to rounding)."""
    factors = sorted({f for levels in patients for f in levels})
    # state: {(factor, level, slot): count} as a sorted tuple -> probability of the path
    states = {(): 1.0}
    result = []
    for j, levels in enumerate(patients):
        per_arm = dict.fromkeys(arms, 0.0)
        next_states: dict[tuple, float] = {}
        for state, weight in states.items():
            running = dict(state)
            counts = {
                f: {
                    arm: [
                        running.get((f, levels[f], (arm, n)), 0) for n in range(1, ratios[arm] + 1)
                    ]
                    for arm in arms
                }
                for f in factors
            }
            decision = decide(
                arms=arms, counts=counts, weights=dict.fromkeys(factors, 1), measure=measure,
                p=p, draw=0.0, ratios=ratios, simple_randomization=j < initial_random,
            )  # fmt: skip
            for (arm, n), prob in _per_slot(arms, ratios, decision.probabilities).items():
                per_arm[arm] += weight * prob
                if prob == 0:
                    continue
                after = dict(running)
                for f in factors:
                    key = (f, levels[f], (arm, n))
                    after[key] = after.get(key, 0) + 1
                key = tuple(sorted(after.items()))
                next_states[key] = next_states.get(key, 0.0) + weight * prob
        result.append(per_arm)
        states = next_states
    return result


PATIENTS = [
    {"sex": "f", "age": "young"},
    {"sex": "f", "age": "old"},
    {"sex": "m", "age": "old"},
    {"sex": "f", "age": "old"},
    {"sex": "m", "age": "young"},
    {"sex": "f", "age": "young"},
]


@pytest.mark.parametrize(
    ("ratios", "n"),
    [({"A": 2, "B": 1}, 6), ({"A": 1, "B": 3}, 5), ({"A": 2, "B": 2, "C": 1}, 4)],
    ids=["2:1", "1:3", "2:2:1"],
)
@pytest.mark.parametrize("measure", ["range", "variance"])
def test_every_allocation_has_the_target_ratio_unconditionally(ratios, n, measure):
    arms = list(ratios)
    total = sum(ratios.values())
    bound = float(preferred_probability_bound(ratios.values()))
    for p in (bound, 0.9, 1.0):
        steps = unconditional_probabilities(arms, ratios, PATIENTS[:n], p=p, measure=measure)
        for j, per_arm in enumerate(steps, 1):
            for arm in arms:
                assert per_arm[arm] == pytest.approx(ratios[arm] / total, abs=1e-12), (p, j, arm)


def test_the_ratio_holds_through_initial_random_allocations_too():
    ratios = {"A": 2, "B": 1}
    steps = unconditional_probabilities(
        ["A", "B"], ratios, PATIENTS, p=0.8, measure="range", initial_random=2
    )
    assert all(s["A"] == pytest.approx(2 / 3, abs=1e-12) for s in steps)


def test_with_an_unequal_ratio_minimization_balances_factors_in_that_ratio():
    """20 simulated trials of 150 patients, 2:1, two binary factors: minimization keeps each
    level's split close to 2:1, much closer than simple randomization in the same ratio."""
    ratios = {"A": 2, "B": 1}

    def total_deviation(seed: int, simple: bool) -> float:
        people, rng = random.Random(seed), random.Random(seed + 99)
        tally = {(f, lv): [0, 0, 0] for f in ("x", "y") for lv in (0, 1)}  # slots A1 A2 B1
        for _ in range(150):
            levels = {f: people.randrange(2) for f in ("x", "y")}
            counts = {
                f: {"A": tally[(f, levels[f])][:2], "B": tally[(f, levels[f])][2]} for f in levels
            }
            d = allocate(
                arms=["A", "B"], counts=counts, weights={"x": 1, "y": 1}, measure="range",
                p=0.8, ratios=ratios, rng=rng, simple_randomization=simple,
            )  # fmt: skip
            index = {("A", 1): 0, ("A", 2): 1, ("B", 1): 2}[(d.arm, d.slot)]
            for f in levels:
                tally[(f, levels[f])][index] += 1
        return sum(abs(c[0] + c[1] - 2 * c[2]) / 3 for c in tally.values())

    minimized = sum(total_deviation(s, False) for s in range(20))
    randomized = sum(total_deviation(s, True) for s in range(20))
    assert minimized < randomized / 2, (minimized, randomized)


# --------------------------------------------------------------------------- v1 unchanged


def v1_allocate(*, arms, counts, weights, measure, p, rng, simple_randomization=False):
    """participants.minimization.allocate as released in v1 (pocock-simon-1975/v1), kept as
    the reference that v2 with equal ratios must reproduce exactly."""

    def imbalance(values):
        if measure == "range":
            return float(max(values) - min(values))
        mean = sum(values) / len(values)
        variance = sum((c - mean) ** 2 for c in values) / len(values)
        return variance if measure == "variance" else math.sqrt(variance)

    totals = {}
    for candidate in arms:
        total = 0.0
        for factor, per_arm in counts.items():
            hypothetical = [per_arm.get(arm, 0) + (arm == candidate) for arm in arms]
            total += float(weights[factor]) * imbalance(hypothetical)
        totals[candidate] = total
    if simple_randomization:
        probs = {arm: 1.0 / len(arms) for arm in arms}
    else:
        best = min(totals[arm] for arm in arms)
        minimal = [arm for arm in arms if totals[arm] - best <= 1e-9]
        others = [arm for arm in arms if arm not in minimal]
        probs = (
            {arm: 1.0 / len(arms) for arm in arms}
            if not others
            else {
                arm: p / len(minimal) if arm in minimal else (1 - p) / len(others) for arm in arms
            }
        )
    draw = rng.random()
    chosen, cumulative = None, 0.0
    for arm in arms:
        cumulative += probs[arm]
        if draw < cumulative and probs[arm] > 0:
            chosen = arm
            break
    if chosen is None:
        chosen = next(arm for arm in reversed(arms) if probs[arm] > 0)
    return chosen, totals, probs, draw, "random" if simple_randomization else "minimization"


@FAST
@given(
    design=designs(equal=True),
    measure=st.sampled_from(MEASURES),
    p=p_values,
    seed=st.integers(0, 2**32 - 1),
    simple=st.booleans(),
    explicit=st.booleans(),
)
def test_with_equal_ratios_every_decision_is_v1s(design, measure, p, seed, simple, explicit):
    arms, ratios, counts, weights = design
    assume(p_allowed(p, ratios.values()))
    decision = allocate(
        arms=arms, counts=counts, weights=weights, measure=measure, p=p,
        rng=random.Random(seed), simple_randomization=simple,
        ratios=ratios if explicit else None,
    )  # fmt: skip
    arm, totals, probs, draw, method = v1_allocate(
        arms=arms, counts=counts, weights=weights, measure=measure, p=p,
        rng=random.Random(seed), simple_randomization=simple,
    )  # fmt: skip
    assert (decision.arm, decision.slot, decision.method, decision.draw) == (arm, 1, method, draw)
    assert decision.scores == totals and decision.probabilities == probs


def test_a_v1_record_replays_through_decide_even_with_a_p_v2_would_refuse():
    # v1 accepted p = 0.6 with three arms; its stored allocations must still replay.
    arms = ["A", "B", "C"]
    counts = {"f": {"A": 1, "B": 0, "C": 0}}
    for seed in range(30):
        arm, totals, probs, draw, method = v1_allocate(
            arms=arms, counts=counts, weights={"f": 1}, measure="range", p=0.6,
            rng=random.Random(seed),
        )  # fmt: skip
        replayed = decide(
            arms=arms, counts=counts, weights={"f": 1}, measure="range", p=0.6, draw=draw
        )
        assert (replayed.arm, replayed.scores, replayed.probabilities) == (arm, totals, probs)
    assert minimization.ALGORITHM_VERSIONS == ("pocock-simon-1975/v1", "pocock-simon-1975/v2")
    assert minimization.ALGORITHM_VERSION == "pocock-simon-1975/v2"
