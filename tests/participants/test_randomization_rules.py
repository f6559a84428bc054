"""Randomizing one participant, decided from plain values (participants.randomization_rules):
each refusal, the levels used, and what an allocation writes. No database."""

from __future__ import annotations

import ast
import inspect
import random
from dataclasses import dataclass
from decimal import Decimal

import pytest

from participants import minimization, randomization_rules
from participants.randomization_rules import Arm, Settings, admit, allocate


@dataclass(frozen=True)
class Level:
    id: int
    code: str


@dataclass(frozen=True)
class Factor:
    code: str
    name: str
    kind: str
    weight: float
    levels: tuple[Level, ...]

    def level(self, code):
        return next((lv for lv in self.levels if lv.code == code), None)


SEX = Factor("sex", "Sex", "variable", 1.0, (Level(1, "f"), Level(2, "m")))
SITE = Factor("site", "Site", "site", 1.0, (Level(11, "s1"), Level(12, "s2")))
ARMS = [Arm(101, "A", 1), Arm(102, "B", 1)]


def test_the_module_is_pure():
    tree = ast.parse(inspect.getsource(randomization_rules))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert "django" not in {name.split(".")[0] for name in imported}
    assert imported <= {"__future__", "random", "collections.abc", "dataclasses", "decimal",
                        "typing", "participants"}  # fmt: skip


def admitted(**changes):
    values = {
        "enrolled": True,
        "baseline_complete": True,
        "n_arms": 2,
        "factors": [SEX, SITE],
        "baseline_levels": {"sex": "f"},
        "site_levels": {"site": "s1"},
    }
    return admit(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "refusal", "about"),
    [
        ({"enrolled": False, "baseline_complete": False}, "not_enrolled", ""),
        ({"baseline_complete": False, "n_arms": 1}, "no_baseline", ""),
        ({"n_arms": 1}, "too_few_arms", ""),
        ({"site_levels": {}, "baseline_levels": {}}, "site_without_level", "Site"),
        ({"baseline_levels": {}}, "missing_factors", ("Sex",)),
        ({"baseline_levels": {"sex": "x"}}, "level_gone", "Sex"),
    ],
)
def test_a_participant_is_refused_randomization_with_the_first_reason(changes, refusal, about):
    admission = admitted(**changes)
    assert admission.refusal == refusal
    assert about in (admission.factor, admission.missing)
    assert admission.level_ids is None


def test_the_site_factor_level_is_the_sites_whatever_the_baseline_stored():
    admission = admitted(baseline_levels={"sex": "m", "site": "s2"}, site_levels={"site": "s1"})
    assert admission.refusal is None
    assert admission.factor_levels == {"sex": "m", "site": "s1"}
    assert admission.level_ids == {"sex": 2, "site": 11}


def trial(**changes) -> Settings:
    values = {
        "code": "MOD",
        "imbalance_measure": "range",
        "preferred_probability": Decimal("0.80"),
        "initial_random_allocations": 0,
        "allocation_count": 6,
    }
    return Settings(**{**values, **changes})


def allocated(**changes):
    values = {
        "trial": trial(),
        "arms": ARMS,
        "factors": [SEX, SITE],
        "level_ids": {"sex": 1, "site": 11},
        "stored": {(1, 101, 1): 3, (1, 102, 1): 1, (11, 101, 1): 2},
        "site_code": "01",
        "site_randomized": 6,
        "rng": random.Random(7),
    }
    return allocate(**{**values, **changes})


def test_an_allocation_numbers_the_participant_after_the_trials_and_sites_counts():
    decision = allocated()
    assert (decision.sequence, decision.number) == (7, "MOD-01-0007")


def test_an_allocation_records_the_counts_it_saw_a_never_seen_count_as_zero_to_create():
    decision = allocated()
    assert decision.counts_seen == {"sex": {"A": 3, "B": 1}, "site": {"A": 2, "B": 0}}
    assert decision.missing_counts == ((11, 102, 1),)


def test_an_allocation_is_the_minimization_engines_decision_with_its_settings():
    decision = allocated()
    expected = minimization.allocate(
        arms=["A", "B"],
        counts={"sex": {"A": 3, "B": 1}, "site": {"A": 2, "B": 0}},
        weights={"sex": 1.0, "site": 1.0},
        measure="range",
        p=0.8,
        rng=random.Random(7),
    )
    assert decision.arm_id == {"A": 101, "B": 102}[expected.arm]
    assert (decision.method, decision.draw, decision.scores, decision.probabilities) == (
        "minimization",
        expected.draw,
        expected.scores,
        expected.probabilities,
    )
    assert decision.settings_used == {
        "imbalance_measure": "range",
        "preferred_probability": "0.80",
        "initial_random_allocations": 0,
        "weights": {"sex": 1.0, "site": 1.0},
        "arms": ["A", "B"],
        "ratios": {"A": 1, "B": 1},
    }


def test_the_initial_allocations_are_simple_randomization():
    assert allocated(trial=trial(initial_random_allocations=7)).method == "random"
    assert allocated(trial=trial(initial_random_allocations=6)).method == "minimization"


def test_an_arm_with_ratio_two_counts_per_slot():
    decision = allocated(arms=[Arm(101, "A", 2), Arm(102, "B", 1)], stored={(1, 101, 2): 4})
    assert decision.counts_seen["sex"] == {"A": [0, 4], "B": 0}
    assert (1, 101, 2) not in decision.missing_counts
    assert {(1, 101, 1), (1, 102, 1), (11, 101, 1), (11, 101, 2), (11, 102, 1)} == set(
        decision.missing_counts
    )


def test_a_p_below_the_bound_is_refused():
    with pytest.raises(minimization.MinimizationError):
        allocated(trial=trial(preferred_probability=Decimal("0.40")))
