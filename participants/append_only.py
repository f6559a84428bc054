"""The allocation table's append-only trigger, re-asserted after every migrate.

Migration 0002 creates it. On SQLite, any later migration that alters the allocation table
rebuilds it (create a copy, move the rows, drop the old one), and the trigger goes with the
dropped table — silently. So after every `migrate` this module creates it again if it is
missing (idempotent on both backends). The SQL is repeated from 0002 on purpose: a
migration must not import code that may change after it was written.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections

TRIGGER = "participants_allocation_no_update"

_POSTGRESQL = f"""
CREATE OR REPLACE FUNCTION participants_allocation_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'participants_allocation is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE
    ON participants_allocation FOR EACH ROW EXECUTE FUNCTION participants_allocation_append_only();
"""
# UPDATE only: a DELETE trigger would block Django's test flush (DELETE FROM) on SQLite;
# there the model and the PROTECT foreign keys stop deletes (see migration 0002).
_SQLITE = f"""
CREATE TRIGGER IF NOT EXISTS {TRIGGER} BEFORE UPDATE ON participants_allocation
BEGIN
    SELECT RAISE(ABORT, 'participants_allocation is append-only: UPDATE is not allowed');
END;
"""


def ensure_trigger(using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """Create the trigger if the allocation table exists and the trigger does not."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if "participants_allocation" not in connection.introspection.table_names(cursor):
            return  # migrated backwards past 0001, or not yet migrated
        if connection.vendor == "postgresql":
            cursor.execute(_POSTGRESQL)
        elif connection.vendor == "sqlite":
            cursor.execute(_SQLITE)


def post_migrate(sender, using: str = DEFAULT_DB_ALIAS, plan=None, **kwargs) -> None:
    # Not after a migration plan that unapplied 0002 itself (migrate participants 0001):
    # that removal is deliberate.
    if plan and any(
        backwards and migration.app_label == "participants" and migration.name.startswith("0002")
        for migration, backwards in plan
    ):
        return
    ensure_trigger(using)
