"""Work beside the caller (outcomes.results.background.Beside): on a connection of its own outside
transactions, in the caller's thread inside one, and the dashboard the same either way."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from django.db import OperationalError, connection, transaction

from outcomes.results import dashboard
from outcomes.results.background import Beside
from tests.outcomes.results.test_analysis_data import randomized, record_w10


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _fails():
    raise LookupError("from the other thread")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_beside_reads_on_a_connection_of_its_own_outside_transactions():
    mine = _backend_pid()
    assert Beside(_backend_pid).result() != mine
    with transaction.atomic():  # its rows are not visible elsewhere: run here instead
        assert Beside(_backend_pid).result() == mine
    with pytest.raises(LookupError, match="other thread"):
        Beside(_fails).result()
    with transaction.atomic():
        inline = Beside(_fails_in_a_thread)
        inline.wait()  # nothing to wait for
        assert inline.result() == "main"


def _fails_in_a_thread():
    # As a connection refused for want of slots would fail, in the thread only.
    if threading.current_thread() is not threading.main_thread():
        raise OperationalError("too many connections")
    return "main"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_read_that_gets_no_connection_of_its_own_runs_on_the_callers():
    assert Beside(_fails_in_a_thread).result() == "main"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_read_beside_equals_the_dashboard_read_in_one_transaction(
    modic, site1, site2, clinician, manager
):
    people = [randomized(modic, site, clinician, pain=p) for site, p in ((site1, 6), (site2, 8))]
    people += [randomized(modic, site1, manager, pain=p, sex="male") for p in (5, 7, 9)]
    for n, person in enumerate(people[:4]):
        record_w10(person, manager, pain=n + 1, answer=1 + n % 3)
    beside = dashboard.compute(modic, blinded=True)
    with transaction.atomic():
        alone = dashboard.compute(modic, blinded=True)
    assert beside.randomized == 5 and beside.continuous and beside.consort.arms
    assert repr(replace(beside, computed_at=None)) == repr(replace(alone, computed_at=None))
