"""Minimization (Pocock & Simon 1975), as a pure function of plain values.

No Django here: an auditor can read and test this module alone. Randomness is passed in
(production passes `random.SystemRandom()`, the operating system's CSPRNG), so a stored
draw replays to the same arm.

For a new patient with one level per factor:

1. For each factor, take the counts per arm of earlier participants *with the patient's
   level* of that factor.
2. For each candidate arm, add the patient to that arm hypothetically and measure the
   imbalance of those counts across arms (range, variance or standard deviation).
3. The arm's total score is the weighted sum of those imbalances over factors.
4. The arm(s) with the smallest total share probability p; the others share 1 − p.
   When every arm has the same total, every arm is equally likely.
5. Draw u uniformly from [0, 1) and walk the cumulative probabilities in arm order.

Arms have equal allocation ratios. During the first `initial_random` allocations
(if configured) step 4 is replaced by equal probabilities: simple randomization.

Reference: Pocock SJ, Simon R. Sequential treatment assignment with balancing for
prognostic factors in the controlled clinical trial. Biometrics 1975;31:103–115.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALGORITHM_VERSION = "pocock-simon-1975/v1"

MEASURES = ("range", "variance", "sd")

# Scores are sums of floats (weights × imbalances); two arms whose totals differ only by
# rounding error are a tie. The tolerance is far below any real difference (counts are
# integers and weights have at most three decimals).
_TIE_TOLERANCE = 1e-9


class MinimizationError(ValueError):
    """The inputs cannot be minimized over (no arms, unknown measure, bad p...)."""


@dataclass(frozen=True)
class Decision:
    arm: str
    method: str  # "minimization" or "random" (initial simple randomization)
    scores: dict[str, float]
    probabilities: dict[str, float]
    draw: float


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


def scores(
    arms: Sequence[str],
    counts: Mapping[str, Mapping[str, int]],
    weights: Mapping[str, float],
    measure: str,
) -> dict[str, float]:
    """Total weighted imbalance if the patient went to each arm (steps 1–3).

    `counts[factor][arm]` is how many earlier participants in `arm` share the patient's
    level of `factor`; a missing arm counts as 0.
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


def probabilities(arms: Sequence[str], totals: Mapping[str, float], p: float) -> dict[str, float]:
    """Probability per arm (step 4): minimizing arms share p, the others share 1 − p."""
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


def choose(arms: Sequence[str], probs: Mapping[str, float], draw: float) -> str:
    """The arm whose cumulative-probability interval holds `draw` (step 5)."""
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


def allocate(
    *,
    arms: Sequence[str],
    counts: Mapping[str, Mapping[str, int]],
    weights: Mapping[str, float],
    measure: str,
    p: float,
    rng: random.Random,
    simple_randomization: bool = False,
) -> Decision:
    """Allocate one patient. `simple_randomization` gives every arm equal probability
    (used for the trial's initial random allocations); scores are still reported."""
    if measure not in MEASURES:
        raise MinimizationError(f"unknown imbalance measure {measure!r}")
    missing = set(counts) - set(weights)
    if missing:
        raise MinimizationError(f"no weight for factor(s) {sorted(missing)}")
    totals = scores(arms, counts, weights, measure)
    if simple_randomization:
        probs = {arm: 1.0 / len(arms) for arm in arms}
        method = "random"
    else:
        probs = probabilities(arms, totals, p)
        method = "minimization"
    draw = rng.random()
    return Decision(
        arm=choose(arms, probs, draw),
        method=method,
        scores=totals,
        probabilities=probs,
        draw=draw,
    )


def _check_arms(arms: Sequence[str]) -> None:
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
