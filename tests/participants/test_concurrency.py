"""Concurrent randomization on a real PostgreSQL server.

Threads each hold their own database connection and start together at a barrier, so
their transactions really contend for the trial row lock.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from participants import services
from participants.models import Allocation, Participant
from tests import factories
from tests.participants.test_services import assert_counts_consistent

THREADS = 24


def run_concurrently(jobs):
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []
    results: list[object] = [None] * len(jobs)

    def worker(index, job):
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a randomization hung"
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_randomizations_get_unique_gap_free_numbers_and_consistent_counts(
    modic, site1, site2, clinician
):
    assert connection.vendor == "postgresql"
    rng = random.Random(11)
    participants = [
        factories.enrolled_participant(
            modic, site1 if i % 2 else site2, clinician,
            age=rng.randint(18, 60), pain=rng.randint(4, 10),
            modic=rng.choice(["type1", "type2"]), sex=rng.choice(["female", "male"]),
        )
        for i in range(THREADS)
    ]  # fmt: skip
    jobs = [
        (lambda p=p: services.participant_randomize(participant=p, by=clinician))
        for p in participants
    ]
    results = run_concurrently(jobs)

    assert all(created for _, created in results)
    assert Allocation.objects.filter(trial=modic).count() == THREADS
    sequences = sorted(Allocation.objects.filter(trial=modic).values_list("sequence", flat=True))
    assert sequences == list(range(1, THREADS + 1))
    numbers = list(Participant.objects.filter(trial=modic).values_list("site__code", "number"))
    by_site = Counter(site for site, _ in numbers)
    for site_code, count in by_site.items():
        site_numbers = sorted(n for s, n in numbers if s == site_code)
        assert site_numbers == [f"MOD-{site_code}-{i:04d}" for i in range(1, count + 1)]
    assert all(re.fullmatch(r"MOD-0[12]-\d{4}", n) for _, n in numbers)
    modic.refresh_from_db()
    assert modic.allocation_count == THREADS
    assert_counts_consistent(modic)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_randomize_requests_for_one_participant_allocate_once(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    jobs = [
        (lambda: services.participant_randomize(participant=participant, by=clinician))
        for _ in range(THREADS)
    ]
    results = run_concurrently(jobs)
    assert sum(created for _, created in results) == 1
    assert len({allocation.pk for allocation, _ in results}) == 1
    assert Allocation.objects.filter(participant=participant).count() == 1
    assert_counts_consistent(modic)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_randomization_holding_the_trial_lock_does_not_hold_up_other_records(
    modic, site1, clinician, monkeypatch
):
    """The trial row is locked FOR NO KEY UPDATE: another randomization waits for it, but
    inserting a row that references the trial (a screening, an SMS reply, an outcome) does
    not, as it would behind FOR UPDATE."""
    from django.db import transaction

    from participants.services import randomization

    participant = factories.enrolled_participant(modic, site1, clinician)
    holding, release = threading.Event(), threading.Event()
    real_allocate = randomization.minimization.allocate

    def allocate_slowly(**kwargs):  # runs with the trial row locked
        holding.set()
        assert release.wait(timeout=30)
        return real_allocate(**kwargs)

    monkeypatch.setattr(randomization.minimization, "allocate", allocate_slowly)

    def randomize():
        try:
            return services.participant_randomize(participant=participant, by=clinician)
        finally:
            connections.close_all()

    results = []
    thread = threading.Thread(target=lambda: results.append(randomize()))
    thread.start()
    try:
        assert holding.wait(timeout=30)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '3s'")
            screening = factories.screened(modic, site1, clinician)  # would time out
        assert screening.pk
    finally:
        release.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert results and results[0][1]
    assert_counts_consistent(modic)
