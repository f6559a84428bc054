"""Minimization balance with unequal allocation ratios (issue 15, item 3): imbalance as the
range of each level's deviations from the ratio's split, and its expectation under simple
randomization in the ratio, checked by enumeration."""

from __future__ import annotations

import itertools
import random

import pytest

from outcomes.results import dashboard, itt
from participants.models import Allocation
from participants.services import participant_randomize
from tests import factories


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8])
def test_two_arm_expected_deviation_range_matches_enumeration(n):
    # 2:1 — arm A with probability 2/3. Range of (X_A - 2n/3, X_B - n/3) over every sequence.
    total = 0.0
    for sequence in itertools.product((0, 0, 1), repeat=n):  # A twice as likely as B
        a = sequence.count(0)
        deviations = (a - n * 2 / 3, (n - a) - n / 3)
        total += max(deviations) - min(deviations)
    expected, how = itt.expected_deviation_range(n, (2, 1))
    assert how == "exact" and expected == pytest.approx(total / 3**n)


def test_three_arm_expected_deviation_range_is_simulated_close_to_enumeration():
    n, ratios = 6, (2, 2, 1)
    total = 0.0
    for sequence in itertools.product(range(5), repeat=n):  # slots 0,1 -> A; 2,3 -> B; 4 -> C
        counts = [sum(s in (0, 1) for s in sequence), sum(s in (2, 3) for s in sequence)]
        counts.append(n - sum(counts))
        deviations = [c - n * w / 5 for c, w in zip(counts, ratios, strict=True)]
        total += max(deviations) - min(deviations)
    expected, how = itt.expected_deviation_range(n, ratios)
    assert how == "simulated" and expected == pytest.approx(total / 5**n, rel=0.03)


def test_equal_ratios_keep_the_integer_max_minus_min():
    balance = itt.minimization_balance(
        {"site": {"s1": {"A": 4, "B": 1, "C": 2}}}, arms="ABC", ratios=(1, 1, 1)
    )
    assert balance.rows[0].imbalance == 3 and balance.ratio == ""
    assert balance.rows[0].expected_simple == itt.expected_range(7, 3)[0]


def test_a_level_split_exactly_in_the_ratio_has_no_imbalance():
    balance = itt.minimization_balance(
        {"sex": {"f": {"A": 4, "B": 2}, "m": {"A": 3, "B": 3}}}, arms="AB", ratios=(2, 1)
    )
    f, m = balance.rows
    assert f.imbalance == 0
    # 3 and 3 against the expected 4 and 2: deviations -1 and +1, range 2.
    assert m.imbalance == pytest.approx(2.0)
    assert balance.total_imbalance == pytest.approx(2.0)
    assert balance.ratio == "2:1"
    assert f.expected_simple == pytest.approx(itt.expected_deviation_range(6, (2, 1))[0])


def test_the_results_page_balance_adds_up_each_arms_slots(modic, site1, site2, clinician):
    """FactorLevelCount keeps one row per slot; the dashboard's balance counts arms."""
    factories.three_arm_site_design(modic)
    for i in range(12):
        participant = factories.enrolled_participant(modic, (site1, site2)[i % 2], clinician)
        participant_randomize(participant=participant, by=clinician, rng=random.Random(i))
    results = dashboard.compute(modic, blinded=False)
    arms = ["rest", "exercise", "sham"]
    totals = {a: Allocation.objects.filter(arm__code=a).count() for a in arms}
    # Every participant is female (the factories' default): the level holds everyone.
    (female,) = [r for r in results.balance.rows if (r.factor, r.level) == ("Sex", "Female")]
    assert dict(zip(arms, female.counts, strict=True)) == totals
    assert max(totals.values()) > 1  # some arm's participants are spread over two slots
    assert results.balance.ratio == "2:2:1"
