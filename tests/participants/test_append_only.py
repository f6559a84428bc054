"""The allocation table's append-only trigger is put back after every migrate."""

from __future__ import annotations

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import DatabaseError, connection, transaction

from participants import append_only, services
from participants.models import Allocation
from trial.models import Arm


def drop_trigger() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER {append_only.TRIGGER} ON participants_allocation")
        else:
            cursor.execute(f"DROP TRIGGER {append_only.TRIGGER}")


def trigger_exists() -> bool:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = %s", [append_only.TRIGGER]
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = %s",
                [append_only.TRIGGER],
            )
        return cursor.fetchone()[0] == 1


def update_refused(allocation) -> bool:
    other = Arm.objects.exclude(pk=allocation.arm_id).get(trial_id=allocation.trial_id)
    try:
        with transaction.atomic():
            Allocation.objects.filter(pk=allocation.pk).update(arm=other)
    except DatabaseError as exc:
        assert "append-only" in str(exc)
        return True
    return False


@pytest.fixture
def allocation(enrolled, clinician):
    return services.participant_randomize(participant=enrolled, by=clinician)[0]


def test_a_migrate_puts_back_a_trigger_a_table_rebuild_dropped(allocation):
    assert trigger_exists()
    drop_trigger()  # what a SQLite table rebuild does, silently
    assert not update_refused(allocation)  # the hole the check closes
    Allocation.objects.filter(pk=allocation.pk).update(arm=allocation.arm)  # undo, as it was
    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)
    assert trigger_exists()
    assert update_refused(allocation)


def test_re_asserting_the_trigger_is_idempotent(allocation):
    append_only.ensure_trigger()
    append_only.ensure_trigger()
    assert trigger_exists()
    assert update_refused(allocation)
