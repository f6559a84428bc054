"""Minimization (Pocock & Simon 1975), as a pure function of plain values.

No Django here: an auditor can read and test this module alone. Randomness is passed in
(production passes `random.SystemRandom()`, the operating system's CSPRNG), so a stored
draw replays to the same arm.

Arms may have unequal allocation ratios (2:1, 2:2:1), by Kuznetsova & Tymofyeyev's
allocation-ratio-preserving expansion: an arm with ratio w stands for w *slots* (their
"fake arms"), and minimization runs over the slots as an equal-allocation design; the
participant goes to the arm whose slot is drawn. Every step below treats the slots alike,
so each slot has the same unconditional probability 1/S (S = sum of the ratios) at every
allocation, and arm k has w_k/S: the allocation ratio holds at every allocation, not only
on average, which is what keeps the next arm unpredictable to anyone who knows the design
(selection bias). With equal ratios a slot is an arm and this is plain Pocock & Simon.

For a new patient with one level per factor:

1. For each factor, take the counts per slot of earlier participants *with the patient's
   level* of that factor.
2. For each candidate slot, add the patient to that slot hypothetically and measure the
   imbalance of those counts across slots (range, variance or standard deviation).
3. The slot's total score is the weighted sum of those imbalances over factors.
4. The slot(s) with the smallest total share probability p; the others share 1 − p.
   When every slot has the same total, every slot is equally likely.
5. Draw u uniformly from [0, 1) and walk the cumulative probabilities in slot order (the
   arms in their configured order, each arm's slots 1..w); the arm of that slot is chosen.

During the first `initial_random` allocations (if configured) step 4 is replaced by equal
probabilities per slot: simple randomization in the allocation ratio.

Step 4 with m minimizing slots out of S gives each p/m and each other slot (1 − p)/(S − m).
A slot that worsens balance must never be likelier than one that improves it, i.e.
p/m ≥ (1 − p)/(S − m) for every m from 1 to S − 1, which holds exactly when p ≥ (S − 1)/S
(`preferred_probability_bound`): 1/2 for two equal arms, 2/3 for three, 4/5 for 2:2:1.
`allocate` refuses a lower p.

Versions: "pocock-simon-1975/v1" had no ratios and no bound on p. v2 with every ratio 1 is
v1, allocation for allocation (tested), so a v1 record replays through `decide` as a v2
one with ratios 1; the bound only refuses new allocations.

References: Pocock SJ, Simon R. Sequential treatment assignment with balancing for
prognostic factors in the controlled clinical trial. Biometrics 1975;31:103–115.
Kuznetsova OM, Tymofyeyev Y. Preserving the allocation ratio at every allocation with
biased coin randomization and minimization in studies with unequal allocation. Stat Med
2012;31:701–723.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

ALGORITHM_VERSION = "pocock-simon-1975/v2"
# Every version whose records this module replays (see the module's docstring).
ALGORITHM_VERSIONS = ("pocock-simon-1975/v1", ALGORITHM_VERSION)

MEASURES = ("range", "variance", "sd")

# Scores are sums of floats (weights × imbalances); two slots whose totals differ only by
# rounding error are a tie. The tolerance is far below any real difference (counts are
# integers and weights have at most three decimals).
_TIE_TOLERANCE = 1e-9

Slot = tuple[str, int]  # (arm code, 1..the arm's ratio)


class MinimizationError(ValueError):
    """The inputs cannot be minimized over (no arms, unknown measure, bad p...)."""


@dataclass(frozen=True)
class Decision:
    arm: str
    method: str  # "minimization" or "random" (initial simple randomization)
    # Per arm: a number for an arm with ratio 1, a list (one per slot) otherwise; with
    # equal ratios exactly v1's {arm: number}. See `record`.
    scores: dict[str, float | list[float]]
    probabilities: dict[str, float | list[float]]
    draw: float
    slot: int = 1  # which of the arm's slots was drawn (1 with equal ratios)


# --- Ratios and the bound on p ---------------------------------------------------------------


def ratios_of(arms: Sequence[str], ratios: Mapping[str, int] | None) -> dict[str, int]:
    """{arm: ratio} for every arm (1 where `ratios` is None), checked: whole numbers >= 1."""
    _check_arms(arms)
    if ratios is None:
        return dict.fromkeys(arms, 1)
    unknown = set(ratios) - set(arms)
    if unknown:
        raise MinimizationError(f"ratios given for unknown arm(s) {sorted(unknown)}")
    result = {}
    for arm in arms:
        ratio = ratios.get(arm, 1)
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise MinimizationError(f"the ratio of arm {arm!r} must be a whole number >= 1")
        result[arm] = ratio
    return result


def slots(arms: Sequence[str], ratios: Mapping[str, int] | None = None) -> list[Slot]:
    """The slots in walking order: each arm in turn, its slots 1..ratio."""
    ratios = ratios_of(arms, ratios)
    return [(arm, n) for arm in arms for n in range(1, ratios[arm] + 1)]


def preferred_probability_bound(ratios: Iterable[int]) -> Fraction:
    """The smallest p for which no slot that worsens balance is likelier than one that
    improves it: (S − 1)/S, S = the sum of the arms' ratios (the number of slots). Equal
    arms: (K − 1)/K for K arms. The one place this rule lives (the trial's validation, the
    admin's arm formset and the recruiting precondition call it, through
    trial.models.preferred_probability_error)."""
    total = sum(ratios)
    if total < 2:
        raise MinimizationError("minimization needs at least two arms")
    return Fraction(total - 1, total)


def p_allowed(p, ratios: Iterable[int]) -> bool:
    """p ≥ the bound, compared exactly: p is read from its decimal text (a Decimal, or a
    float by its shortest repr), so 0.95 meets the bound 19/20 although the float 0.95 is a
    hair below it."""
    return Fraction(str(p)) >= preferred_probability_bound(ratios)


# --- The steps -------------------------------------------------------------------------------


def imbalance(counts: Sequence[int | float], measure: str) -> float:
    """Imbalance of counts across arms: range, population variance, or population SD."""
    if not counts:
        raise MinimizationError("need at least one count")
    if measure == "range":
        return float(max(counts) - min(counts))
    mean = sum(counts) / len(counts)
    variance = sum((c - mean) ** 2 for c in counts) / len(counts)
    if measure == "variance":
        return variance
    if measure == "sd":
        return math.sqrt(variance)
    raise MinimizationError(f"unknown imbalance measure {measure!r}; use one of {MEASURES}")


def scores(arms: Sequence, counts: Mapping, weights: Mapping[str, float], measure: str) -> dict:
    """Total weighted imbalance if the patient went to each arm (steps 1–3).

    `arms` are the candidates: arm codes, or slots. `counts[factor][arm]` is how many
    earlier participants there share the patient's level of `factor`; a missing one
    counts as 0.
    """
    _check_arms(arms)
    totals = {}
    for candidate in arms:
        total = 0.0
        for factor, per_arm in counts.items():
            hypothetical = [per_arm.get(arm, 0) + (arm == candidate) for arm in arms]
            total += float(weights[factor]) * imbalance(hypothetical, measure)
        totals[candidate] = total
    return totals


def probabilities(arms: Sequence, totals: Mapping, p: float) -> dict:
    """Probability per arm or slot (step 4): the minimizing ones share p, the others 1 − p.
    No bound on p here, so that v1 records replay; `allocate` enforces it."""
    _check_arms(arms)
    if not 0.0 <= p <= 1.0:
        raise MinimizationError(f"p must lie in [0, 1], got {p}")
    best = min(totals[arm] for arm in arms)
    minimal = [arm for arm in arms if totals[arm] - best <= _TIE_TOLERANCE]
    others = [arm for arm in arms if arm not in minimal]
    if not others:
        return {arm: 1.0 / len(arms) for arm in arms}
    return {
        arm: (p / len(minimal)) if arm in minimal else ((1.0 - p) / len(others)) for arm in arms
    }


def choose(arms: Sequence, probs: Mapping, draw: float):
    """The arm (or slot) whose cumulative-probability interval holds `draw` (step 5)."""
    if not 0.0 <= draw < 1.0:
        raise MinimizationError(f"draw must lie in [0, 1), got {draw}")
    cumulative = 0.0
    for arm in arms:
        cumulative += probs[arm]
        if draw < cumulative and probs[arm] > 0:
            return arm
    # Rounding can leave the cumulative sum a hair under 1: the last arm with any
    # probability takes the remainder.
    return next(arm for arm in reversed(arms) if probs[arm] > 0)


# --- Records: per-slot values as an allocation stores them ----------------------------------


def slot_counts(
    arms: Sequence[str], ratios: Mapping[str, int] | None, per_arm: Mapping
) -> dict[Slot, int]:
    """A factor's counts per slot from the record's shape: {arm: n} for an arm with ratio 1,
    {arm: [n per slot]} otherwise; a missing arm counts 0."""
    ratios = ratios_of(arms, ratios)
    unknown = set(per_arm) - set(arms)
    if unknown:
        raise MinimizationError(f"counts for unknown arm(s) {sorted(unknown)}")
    result = {}
    for arm in arms:
        if arm not in per_arm:
            values = [0] * ratios[arm]
        elif isinstance(per_arm[arm], int | float):
            values = [per_arm[arm]]
        else:
            values = list(per_arm[arm])
        if len(values) != ratios[arm]:
            raise MinimizationError(
                f"arm {arm!r} has ratio {ratios[arm]} but {len(values)} count(s)"
            )
        result.update({(arm, n): count for n, count in enumerate(values, 1)})
    return result


def record(arms: Sequence[str], ratios: Mapping[str, int] | None, values: Mapping[Slot, object]):
    """Per-slot values in the record's shape: {arm: value} for an arm with ratio 1 (exactly
    v1's shape when all ratios are 1), {arm: [value per slot]} otherwise."""
    ratios = ratios_of(arms, ratios)
    return {
        arm: values[(arm, 1)]
        if ratios[arm] == 1
        else [values[(arm, n)] for n in range(1, ratios[arm] + 1)]
        for arm in arms
    }


# --- Allocation ------------------------------------------------------------------------------


def decide(
    *,
    arms: Sequence[str],
    counts: Mapping[str, Mapping],
    weights: Mapping[str, float],
    measure: str,
    p: float,
    draw: float,
    ratios: Mapping[str, int] | None = None,
    simple_randomization: bool = False,
) -> Decision:
    """The decision for one patient given the draw: what `allocate` does after drawing, and
    what a replay of a stored allocation calls. `counts` is {factor: {arm: n or [n per
    slot]}}; `simple_randomization` gives every slot equal probability (the trial's initial
    random allocations; scores are still reported)."""
    if measure not in MEASURES:
        raise MinimizationError(f"unknown imbalance measure {measure!r}")
    missing = set(counts) - set(weights)
    if missing:
        raise MinimizationError(f"no weight for factor(s) {sorted(missing)}")
    ratios = ratios_of(arms, ratios)
    candidates = slots(arms, ratios)
    per_slot = {factor: slot_counts(arms, ratios, c) for factor, c in counts.items()}
    totals = scores(candidates, per_slot, weights, measure)
    if simple_randomization:
        probs = {slot: 1.0 / len(candidates) for slot in candidates}
        method = "random"
    else:
        probs = probabilities(candidates, totals, p)
        method = "minimization"
    arm, slot = choose(candidates, probs, draw)
    return Decision(
        arm=arm,
        slot=slot,
        method=method,
        scores=record(arms, ratios, totals),
        probabilities=record(arms, ratios, probs),
        draw=draw,
    )


def allocate(
    *,
    arms: Sequence[str],
    counts: Mapping[str, Mapping],
    weights: Mapping[str, float],
    measure: str,
    p: float,
    rng: random.Random,
    ratios: Mapping[str, int] | None = None,
    simple_randomization: bool = False,
) -> Decision:
    """Allocate one patient: check the design, draw, decide. Refuses p below
    `preferred_probability_bound` of the ratios (even during the initial simple
    randomization: the design as a whole must be valid before anyone is allocated)."""
    if measure not in MEASURES:
        raise MinimizationError(f"unknown imbalance measure {measure!r}")
    ratios = ratios_of(arms, ratios)
    if not 0.0 <= p <= 1.0:
        raise MinimizationError(f"p must lie in [0, 1], got {p}")
    if not p_allowed(p, ratios.values()):
        bound = preferred_probability_bound(ratios.values())
        raise MinimizationError(
            f"p = {p} is below {bound} (= {float(bound):.4g}), the least p for "
            f"{sum(ratios.values())} slots: an arm that worsens balance would be likelier "
            "than one that improves it"
        )
    return decide(
        arms=arms,
        counts=counts,
        weights=weights,
        measure=measure,
        p=p,
        draw=rng.random(),
        ratios=ratios,
        simple_randomization=simple_randomization,
    )


def _check_arms(arms: Sequence) -> None:
    if len(arms) < 2:
        raise MinimizationError("minimization needs at least two arms")
    if len(set(arms)) != len(arms):
        raise MinimizationError("arm codes must be unique")


def level_for_value(levels: Sequence[tuple[str, int | None, int | None]], value: int) -> str:
    """The level whose [lower, upper) interval holds `value` (None = open-ended).

    `levels` is a sequence of (code, lower, upper). Raises MinimizationError when no level,
    or more than one, covers the value: cut points must partition the valid range.
    """
    matches = [
        code
        for code, lower, upper in levels
        if (lower is None or value >= lower) and (upper is None or value < upper)
    ]
    if len(matches) != 1:
        raise MinimizationError(
            f"value {value} falls in {len(matches)} levels; cut points must cover it exactly once"
        )
    return matches[0]
