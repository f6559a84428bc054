"""Make the allocation table append-only in the database itself.

UPDATE is rejected on both backends. DELETE is rejected on PostgreSQL; test-database
flushes there use TRUNCATE, which row triggers do not see. On SQLite a DELETE trigger
would also block Django's test flush (DELETE FROM), so there deletes are stopped by the
model and the PROTECT foreign keys instead.
"""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION participants_allocation_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'participants_allocation is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER participants_allocation_no_update BEFORE UPDATE OR DELETE
    ON participants_allocation FOR EACH ROW EXECUTE FUNCTION participants_allocation_append_only();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS participants_allocation_no_update ON participants_allocation;
DROP FUNCTION IF EXISTS participants_allocation_append_only();
"""
SQLITE_UP = """
CREATE TRIGGER participants_allocation_no_update BEFORE UPDATE ON participants_allocation
BEGIN
    SELECT RAISE(ABORT, 'participants_allocation is append-only: UPDATE is not allowed');
END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS participants_allocation_no_update;"


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("participants", "0001_initial")]
    operations = [migrations.RunPython(up, down)]
