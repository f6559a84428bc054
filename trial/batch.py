"""Writes sent as a few plain SQL statements, for the sections that hold a contended lock.

Why not the ORM there: randomization holds the trial row lock from its first statement to
COMMIT, so every millisecond it spends serializes every other randomization of the trial.
The ORM costs ~0.5–1 ms of Python per statement (query compilation, model instances,
simple-history's per-row records) and one round trip each; the statements here are built
from the models' own metadata and fields (so column names and value conversions are
Django's: `Field.get_db_prep_save`), and on PostgreSQL a batch of them goes to the server
in one round trip. The history rows they write are the ones simple-history writes
(tested field by field against its own records).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import Model

Statement = tuple[str, Sequence]

# simple-history's own columns on a historical table; the others mirror the tracked model.
HISTORY_COLUMNS = ("history_date", "history_change_reason", "history_type", "history_user_id")


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def db_value(model: type[Model], field_name: str, value):
    """`value` as the database adapter expects it for this field (e.g. SQLite stores aware
    datetimes as naive UTC text, PostgreSQL takes them as they are)."""
    return model._meta.get_field(field_name).get_db_prep_save(value, connection)


def insert(objs: Sequence[Model], *, returning_pk: bool = False) -> Statement:
    """One multi-row INSERT of unsaved instances of one model (every concrete field but the
    primary key), as bulk_create would send it; `returning_pk` adds RETURNING of the key."""
    model = type(objs[0])
    fields = [f for f in model._meta.local_concrete_fields if not f.primary_key]
    rows, params = [], []
    for obj in objs:
        rows.append("(" + ", ".join(["%s"] * len(fields)) + ")")
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) VALUES {', '.join(rows)}"
    )
    if returning_pk:
        sql += f" RETURNING {quote(model._meta.pk.column)}"
    return sql, params


@functools.cache
def _history_table(model: type[Model]) -> tuple[type[Model], str]:
    """(historical model, the columns a historical row copies from the tracked row),
    checked to exist there. Cached: `model.history` builds a manager on every access."""
    historical = model.history.model
    own = {f.column for f in model._meta.concrete_fields}
    columns = [
        f.column
        for f in historical._meta.concrete_fields
        if f.column not in HISTORY_COLUMNS and f.column != "history_id"
    ]
    missing = set(columns) - own
    if missing:  # a historical field that is not a copy: this module cannot write it
        raise RuntimeError(f"{historical.__name__} has columns {missing} not on {model.__name__}")
    return historical, ", ".join(quote(c) for c in columns)


def history_copy(
    model: type[Model],
    *,
    where: str,
    params: Sequence,
    history_type: str,
    user_id: int | None,
    when,
    reason: str | None = None,
) -> Statement:
    """INSERT of one historical row per row of `model` matching `where`, copied from the row
    as it stands at that point of the transaction: what simple-history records on save
    ("+" created, "~" changed), without loading the rows into Python."""
    if history_type not in ("+", "~"):
        raise ValueError(f"history_type {history_type!r}")
    historical, columns = _history_table(model)
    sql = (
        f"INSERT INTO {quote(historical._meta.db_table)} "
        f"({columns}, {', '.join(quote(c) for c in HISTORY_COLUMNS)}) "
        f"SELECT {columns}, %s, %s, %s, %s FROM {quote(model._meta.db_table)} WHERE {where}"
    )
    extra = [db_value(historical, "history_date", when), reason, history_type, user_id]
    return sql, [*extra, *params]


def execute(statements: Iterable[Statement]) -> list[tuple]:
    """Run the statements in order in the current transaction and return the rows of the
    last one (if it returns any). On PostgreSQL they go in one round trip (the server runs
    them in order, so lock order is kept); sqlite3 takes one statement per call."""
    statements = list(statements)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                ";\n".join(sql for sql, _ in statements),
                [param for _, params in statements for param in params],
            )
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
