"""Randomization with unequal allocation ratios and a site factor, on the database (issue 15,
item 3): what an allocation records, the maintained counts per slot, the balance page, and
equal-ratio trials allocating exactly as v1 did."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.db import connection
from django.urls import reverse

from participants import minimization, services
from participants.models import Allocation
from tests import factories
from tests.participants.test_minimization_ratios import v1_allocate
from tests.participants.test_views import BASELINE_POST

RATIOS = {"rest": 2, "exercise": 2, "sham": 1}


def randomize(participant, by, seed):
    return services.participant_randomize(participant=participant, by=by, rng=random.Random(seed))


def people(trial, sites, by, n: int, seed: int = 5):
    rng = random.Random(seed)
    for i in range(n):
        yield factories.enrolled_participant(
            trial, sites[i % len(sites)], by,
            age=rng.randint(18, 60), pain=rng.randint(4, 10),
            modic=rng.choice(["type1", "type2"]), sex=rng.choice(["female", "male"]),
        )  # fmt: skip


@pytest.fixture
def three_arm(modic):
    return factories.three_arm_site_design(modic, initial_random=3)


def test_an_unequal_allocation_records_its_slot_ratios_and_per_slot_counts_and_replays(
    three_arm, site1, site2, clinician
):
    for i, participant in enumerate(people(three_arm, [site1, site2], clinician, 40)):
        allocation, _ = randomize(participant, clinician, seed=i)
        assert allocation.algorithm_version == "pocock-simon-1975/v2"
        assert allocation.settings_used["arms"] == ["rest", "exercise", "sham"]
        assert allocation.settings_used["ratios"] == RATIOS
        assert 1 <= allocation.slot <= RATIOS[allocation.arm.code]
        assert allocation.factor_levels["site"] == participant.site.code
        for per_arm in allocation.counts_seen.values():
            assert [type(per_arm[a]) for a in RATIOS] == [list, list, int]
        assert allocation.method == ("random" if allocation.sequence <= 3 else "minimization")
        # The stored record alone gives the stored decision back.
        used = allocation.settings_used
        replayed = minimization.decide(
            arms=used["arms"], ratios=used["ratios"], counts=allocation.counts_seen,
            weights=used["weights"], measure=used["imbalance_measure"],
            p=float(used["preferred_probability"]), draw=allocation.draw,
            simple_randomization=allocation.method == "random",
        )  # fmt: skip
        assert (replayed.arm, replayed.slot) == (allocation.arm.code, allocation.slot)
        assert replayed.probabilities == allocation.probabilities
    assert services.stored_level_counts(three_arm) == services.recount_level_counts(three_arm)


def test_over_many_allocations_the_arm_totals_follow_the_ratio(three_arm, site1, site2, clinician):
    for i, participant in enumerate(people(three_arm, [site1, site2], clinician, 50, seed=9)):
        randomize(participant, clinician, seed=100 + i)
    totals = Counter(Allocation.objects.values_list("arm__code", flat=True))
    # 2:2:1 of 50 is 20:20:10; minimization keeps each arm's slots level, hence the arms near it.
    for arm, expected in {"rest": 20, "exercise": 20, "sham": 10}.items():
        assert abs(totals[arm] - expected) <= 3, totals


def test_the_balance_page_shows_observed_and_expected_counts_under_the_ratio(
    client, three_arm, site1, clinician, manager
):
    for i, participant in enumerate(people(three_arm, [site1], clinician, 5)):
        randomize(participant, clinician, seed=i)
    client.force_login(manager)
    response = client.get(reverse("balance", args=[three_arm.code]))
    assert response.status_code == 200
    row = response.context["all_randomized"]
    assert [expected for _, expected in row["cells"]] == [2.0, 2.0, 1.0]
    assert sum(n for n, _ in row["cells"]) == 5
    html = response.content.decode()
    assert "ratio 2" in html and "expected 2.0" in html and "Allocation ratio 2:2:1" in html
    site_rows = [r for r in response.context["rows"] if r["factor"] == "Site"]
    assert [r["level"] for r in site_rows] == [
        "Spine Centre, Middelfart (demo)",
        "Back Clinic, Odense (demo)",
    ]
    assert [r["total"] for r in site_rows] == [5, 0]


def test_an_unequal_randomization_takes_the_same_statements_as_an_equal_one(
    three_arm, site1, clinician, django_assert_max_num_queries
):
    """The slots add rows to the counts read and to the upsert, not statements: the section
    holding the trial lock stays three round trips (see test_services)."""
    first = factories.enrolled_participant(three_arm, site1, clinician)
    randomize(first, clinician, seed=1)
    second = factories.enrolled_participant(three_arm, site1, clinician)
    with django_assert_max_num_queries(7 if connection.vendor == "postgresql" else 16):
        randomize(second, clinician, seed=2)


def test_equal_ratio_trials_allocate_exactly_as_v1_did(modic, site1, site2, clinician):
    """The demo design: every stored allocation has v1's shape, and v1's algorithm (a copy
    kept in the engine's tests) given the same counts and the same draw picks the same arm
    with the same scores and probabilities."""
    for i, participant in enumerate(people(modic, [site1, site2], clinician, 30, seed=3)):
        randomize(participant, clinician, seed=i)
    for allocation in Allocation.objects.filter(trial=modic).select_related("arm"):
        used = allocation.settings_used
        assert allocation.slot == 1
        assert used["ratios"] == {"rest": 1, "exercise": 1}
        arm, scores, probabilities, draw, method = v1_allocate(
            arms=used["arms"], counts=allocation.counts_seen, weights=used["weights"],
            measure=used["imbalance_measure"], p=float(used["preferred_probability"]),
            rng=random.Random(allocation.sequence - 1), simple_randomization=False,
        )  # fmt: skip
        assert (arm, scores, probabilities, draw, method) == (
            allocation.arm.code,
            allocation.scores,
            allocation.probabilities,
            allocation.draw,
            allocation.method,
        )


def test_the_baseline_page_asks_nothing_about_the_site_factor_and_stores_its_level(
    client, modic, site2, clinician_site2
):
    factories.three_arm_site_design(modic)
    participant = factories.enrolled_participant(modic, site2, clinician_site2, baseline=False)
    client.force_login(clinician_site2)
    page = reverse("participant_baseline", args=[modic.code, participant.pk])
    response = client.get(page)
    assert response.status_code == 200
    assert "factor_site" not in response.context["form"].fields
    response = client.post(page, BASELINE_POST)
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.factor_levels["site"] == "02"
    detail = client.get(reverse("participant_detail", args=[modic.code, participant.pk]))
    html = detail.content.decode()
    assert "Factor: Site" in html and html.count("Back Clinic, Odense (demo)") >= 1
