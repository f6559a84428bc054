"""Links between rows of one trial, guarded by the database.

Django has no composite foreign keys, so "the visit an instrument is due at belongs to the
instrument's trial" cannot be a plain constraint. Each such rule is a row trigger here, on
both backends: before a row is inserted, or one of the linking columns is updated, the
trial of one side is compared with the trial of the other, and the write is refused with
an integrity error when they differ. Model and form validation say the same thing first,
with a message next to the field (trial.models, the admin forms); the trigger is the last
line, for a bug or a script that skips them.

Each app lists its rules (`RULES` below for the trial app's own tables,
participants.links, outcomes.links), creates them in a migration on PostgreSQL (which
repeats them: a migration must not depend on code that may change after it was written)
and re-creates any that are missing after every `migrate` (`ensure`). On SQLite they exist
only between migrate runs: dropped before each, created after it (`connect`), because
SQLite's table rebuilds cannot run with them in place (`pre_migrate_dropper`).

Only the linking side is checked. The other side's trial does not change: the admin shows
an object's trial read-only once it exists, and `TrialFixed` refuses the change in
model validation.

The migrations call `create_sql` and `drop_sql` (through `migration_operations`): for a
given rule their output must stay the same; a different trigger needs a new migration that
drops the old one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections


def trial_of(table: str, column: str, field: str = "trial_id") -> str:
    """SQL for `field` (by default the trial id) of the `table` row that NEW.`column` names."""
    return f"(SELECT {field} FROM {table} WHERE id = NEW.{column})"


@dataclass(frozen=True)
class SameTrial:
    """`left` and `right` (SQL expressions over NEW) must be equal whenever `right` is not
    NULL (a NULL foreign key links nothing). `columns` are the columns of `table` whose
    update re-checks the rule."""

    name: str
    table: str
    left: str
    right: str
    columns: tuple[str, ...]
    message: str

    def _condition(self, vendor: str) -> str:
        differs = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
        return f"{self.right} IS NOT NULL AND {self.left} {differs} {self.right}"


def create_sql(rule: SameTrial, vendor: str) -> list[str]:
    """Statements that create the rule's trigger(s), idempotently."""
    message = rule.message.replace("'", "''")
    columns = ", ".join(rule.columns)
    if vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {rule.name}() RETURNS trigger AS $$
BEGIN
    IF {rule._condition(vendor)} THEN
        RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
            f"CREATE OR REPLACE TRIGGER {rule.name} BEFORE INSERT OR UPDATE OF {columns} "
            f"ON {rule.table} FOR EACH ROW EXECUTE FUNCTION {rule.name}()",
        ]
    if vendor == "sqlite":
        condition = rule._condition(vendor)
        body = f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        return [
            f"CREATE TRIGGER IF NOT EXISTS {rule.name}_insert BEFORE INSERT ON {rule.table} "
            f"WHEN {condition} {body}",
            f"CREATE TRIGGER IF NOT EXISTS {rule.name}_update BEFORE UPDATE OF {columns} "
            f"ON {rule.table} WHEN {condition} {body}",
        ]
    return []


def drop_sql(rule: SameTrial, vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {rule.name} ON {rule.table}",
            f"DROP FUNCTION IF EXISTS {rule.name}()",
        ]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {rule.name}_insert",
            f"DROP TRIGGER IF EXISTS {rule.name}_update",
        ]
    return []


def ensure(rules: Iterable[SameTrial], using: str = DEFAULT_DB_ALIAS) -> None:
    """Create every rule's trigger whose table and columns exist (idempotent on both
    backends)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for rule in rules:
            # Migrated backwards past the table or the linking column (a rule added with a
            # new column, as the site of a factor level), or not yet migrated that far.
            if rule.table not in tables or not _has_columns(connection, cursor, rule):
                continue
            for statement in create_sql(rule, connection.vendor):
                cursor.execute(statement)


def _has_columns(connection, cursor, rule: SameTrial) -> bool:
    present = {
        column.name
        for column in connection.introspection.get_table_description(cursor, rule.table)
    }
    return set(rule.columns) <= present


def post_migrate_ensurer(rules: tuple[SameTrial, ...], app_label: str, migration_name: str):
    """A post_migrate receiver that re-creates the app's rules, except after a plan that
    unapplied the migration creating them (that removal is deliberate)."""

    def receiver(sender, using: str = DEFAULT_DB_ALIAS, plan=None, **kwargs) -> None:
        if plan and any(
            backwards
            and migration.app_label == app_label
            and migration.name == migration_name
            for migration, backwards in plan
        ):
            return
        ensure(rules, using)

    return receiver


def pre_migrate_dropper(rules: tuple[SameTrial, ...]):
    """A pre_migrate receiver that, on SQLite, drops the rules' triggers before a migrate
    runs; the post_migrate receiver (`post_migrate_ensurer`) creates them again after it.

    SQLite alters a table by rebuilding it: a new table is created, filled, the old one
    dropped and the new one renamed. The rename checks every trigger in the schema, and a
    trigger on another table that reads the rebuilt one (a participant's screening names
    the screening table) then names a table that does not exist: the migration fails. So no
    migration on SQLite may run with these triggers in place. PostgreSQL alters tables in
    place and resolves a trigger function's tables when it runs: nothing to do there."""

    def receiver(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
        connection = connections[using]
        if connection.vendor != "sqlite":
            return
        with connection.cursor() as cursor:
            for rule in rules:
                for statement in drop_sql(rule, connection.vendor):
                    cursor.execute(statement)

    return receiver


def connect(app_config, rules: tuple[SameTrial, ...], migration_name: str) -> None:
    """Keep the app's rules across every migrate: dropped before it on SQLite
    (`pre_migrate_dropper`), created again after it (`post_migrate_ensurer`), unless the
    run unapplied `migration_name`, the app's migration that creates them."""
    from django.db.models.signals import post_migrate, pre_migrate

    label = app_config.label
    pre_migrate.connect(
        pre_migrate_dropper(rules),
        sender=app_config,
        dispatch_uid=f"{label}-same-trial-links-drop",
        weak=False,
    )
    post_migrate.connect(
        post_migrate_ensurer(rules, label, migration_name),
        sender=app_config,
        dispatch_uid=f"{label}-same-trial-links",
        weak=False,
    )


def migration_operations(rules: tuple[SameTrial, ...]):
    """(forwards, backwards) functions for a RunPython that creates or drops `rules`. On
    SQLite forwards creates nothing: a later migration of the same run could not rebuild a
    table the triggers read (`pre_migrate_dropper` says why), so the post_migrate receiver
    creates them once the whole run is done."""

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            return
        for rule in rules:
            for statement in create_sql(rule, schema_editor.connection.vendor):
                schema_editor.execute(statement, params=None)

    def backwards(apps, schema_editor):
        for rule in rules:
            for statement in drop_sql(rule, schema_editor.connection.vendor):
                schema_editor.execute(statement, params=None)

    return forwards, backwards


# --- The trial app's own links ----------------------------------------------------------------

RULES = (
    SameTrial(
        name="trial_factor_variable_same_trial",
        table="trial_minimizationfactor",
        left="NEW.trial_id",
        right=trial_of("trial_baselinevariable", "variable_id"),
        columns=("trial_id", "variable_id"),
        message="A minimization factor cannot use a baseline variable of another trial.",
    ),
    SameTrial(
        name="trial_membership_site_same_trial",
        table="trial_membership_sites",
        left=trial_of("trial_membership", "membership_id"),
        right=trial_of("trial_site", "site_id"),
        columns=("membership_id", "site_id"),
        message="A membership cannot include a site of another trial.",
    ),
    SameTrial(
        name="trial_factorlevel_site_same_trial",
        table="trial_factorlevel",
        left=trial_of("trial_minimizationfactor", "factor_id"),
        right=trial_of("trial_site", "site_id"),
        columns=("factor_id", "site_id"),
        message="A site factor's level cannot stand for a site of another trial.",
    ),
)
