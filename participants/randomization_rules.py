"""Randomizing one participant, decided from plain values: whether they may be randomized
now, and what the allocation writes (arm, slot, numbers, the counts and settings to record).

Pure: no Django. The service (participants.services.randomization) locks the participant and
the trial, reads the counts, calls `admit` and then `allocate`, and writes what they say;
the algorithm itself is participants.minimization (Pocock & Simon 1975).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from participants import minimization

# Why a participant cannot be randomized (the service words them for the user).
NOT_ENROLLED = "not_enrolled"
NO_BASELINE = "no_baseline"
TOO_FEW_ARMS = "too_few_arms"
SITE_WITHOUT_LEVEL = "site_without_level"  # a site factor, and the site has no level yet
MISSING_FACTORS = "missing_factors"  # the baseline lacks some factor's level
LEVEL_GONE = "level_gone"  # the baseline's level of a factor no longer exists


class Level(Protocol):
    id: int


class Factor(Protocol):
    """A minimization factor as the trial's configuration holds it (selectors.FactorSpec)."""

    code: str
    name: str
    kind: str
    weight: float

    def level(self, code: str) -> Level | None: ...


@dataclass(frozen=True)
class Arm:
    id: int
    code: str
    ratio: int


@dataclass(frozen=True)
class Admission:
    """Whether the participant may be randomized: `refusal` (a code above) with the factor it
    is about, or the factor levels to randomize with and the id of each level."""

    refusal: str | None
    factor: str = ""  # the name of the factor the refusal is about
    missing: tuple[str, ...] = ()  # MISSING_FACTORS: the names of the factors lacking
    factor_levels: Mapping[str, str] | None = None  # {factor code: level code}
    level_ids: Mapping[str, int] | None = None  # {factor code: level id}


def admit(
    *,
    enrolled: bool,
    baseline_complete: bool,
    n_arms: int,
    factors: Sequence[Factor],
    baseline_levels: Mapping[str, str],
    site_levels: Mapping[str, str],
) -> Admission:
    """May a participant be randomized, with their `baseline_levels` and their site's level
    of a site factor (`site_levels`)? The first refusal, in this order:

    1. Only an enrolled participant (not yet randomized, not withdrawn).
    2. Only with the baseline complete, in a trial of two arms or more.
    3. Every factor needs the participant's level: a site factor's is the site's, whatever
       the baseline stored (it may predate the factor); the others are the baseline's, and
       the level must still exist.

    The trial's own preconditions (recruiting, p within the bound, below the target) come
    from its row, checked by the service after 1 and again under the trial lock.
    """
    if not enrolled:
        return Admission(NOT_ENROLLED)
    if not baseline_complete:
        return Admission(NO_BASELINE)
    if n_arms < 2:
        return Admission(TOO_FEW_ARMS)
    factor_levels = {**baseline_levels, **site_levels}
    for factor in factors:
        if factor.kind == "site" and factor.code not in factor_levels:
            return Admission(SITE_WITHOUT_LEVEL, factor=factor.name)
    missing = tuple(f.name for f in factors if f.code not in factor_levels)
    if missing:
        return Admission(MISSING_FACTORS, missing=missing)
    level_ids = {}
    for factor in factors:
        level = factor.level(factor_levels[factor.code])
        if level is None:
            return Admission(LEVEL_GONE, factor=factor.name)
        level_ids[factor.code] = level.id
    return Admission(None, factor_levels=factor_levels, level_ids=level_ids)


@dataclass(frozen=True)
class Settings:
    """The trial's minimization settings in force, and its counters, read under its lock."""

    code: str
    imbalance_measure: str
    preferred_probability: Decimal
    initial_random_allocations: int
    allocation_count: int


@dataclass(frozen=True)
class Allocation:
    """What one randomization writes."""

    arm_id: int
    slot: int
    method: str
    sequence: int  # the trial's allocation sequence number
    number: str  # the participant's number, e.g. MOD-01-0007
    counts_seen: Mapping[str, object]  # {factor: per arm a count, or a list per slot}
    scores: Mapping[str, object]
    probabilities: Mapping[str, object]
    draw: float
    settings_used: Mapping[str, object]
    missing_counts: tuple[tuple[int, int, int], ...]  # (level id, arm id, slot) rows to create


def allocate(
    *,
    trial: Settings,
    arms: Sequence[Arm],
    factors: Sequence[Factor],
    level_ids: Mapping[str, int],
    stored: Mapping[tuple[int, int, int], int],
    site_code: str,
    site_randomized: int,
    rng: random.Random,
) -> Allocation:
    """Allocate by minimization, given the counts `stored` per (level id, arm id, slot) of
    the participant's levels and the site's code and count of randomized participants.

    1. The counts per arm's slot (one slot per arm with equal ratios) of each factor, in the
       record's shape (minimization.record); a (level, arm, slot) never counted is 0, and
       its row is to be created so that the increment can find it.
    2. Simple randomization during the trial's initial random allocations, then
       minimization (participants.minimization.allocate).
    3. The next sequence number of the trial and participant number of the site.
    """
    ratios = {arm.code: arm.ratio for arm in arms}
    arm_codes = [arm.code for arm in arms]
    arm_by_code = {arm.code: arm for arm in arms}
    slots = [(arm_by_code[code], n) for code, n in minimization.slots(arm_codes, ratios)]
    missing_counts = tuple(
        (level_id, arm.id, n)
        for level_id in level_ids.values()
        for arm, n in slots
        if (level_id, arm.id, n) not in stored
    )
    counts = {
        factor: minimization.record(
            arm_codes,
            ratios,
            {(arm.code, n): stored.get((level_id, arm.id, n), 0) for arm, n in slots},
        )
        for factor, level_id in level_ids.items()
    }
    weights = {f.code: f.weight for f in factors}
    decision = minimization.allocate(
        arms=arm_codes,
        counts=counts,
        weights=weights,
        measure=trial.imbalance_measure,
        p=float(trial.preferred_probability),
        rng=rng,
        ratios=ratios,
        simple_randomization=trial.allocation_count < trial.initial_random_allocations,
    )
    return Allocation(
        arm_id=arm_by_code[decision.arm].id,
        slot=decision.slot,
        method=decision.method,
        sequence=trial.allocation_count + 1,
        number=f"{trial.code}-{site_code}-{site_randomized + 1:04d}",
        counts_seen=counts,
        scores=decision.scores,
        probabilities=decision.probabilities,
        draw=decision.draw,
        settings_used={
            "imbalance_measure": trial.imbalance_measure,
            "preferred_probability": str(trial.preferred_probability),
            "initial_random_allocations": trial.initial_random_allocations,
            "weights": weights,
            "arms": arm_codes,  # the order the draw walks
            "ratios": ratios,
        },
        missing_counts=missing_counts,
    )
