"""What a request wrote to the database, for tests that check a GET never writes.

Writes a read may make, by design:
  - trial_blindinglog: a trial manager viewing or exporting arm names while the trial is
    blinded is recorded (trial.blinding.record_unblinded_view) — the audit the blinding
    rules require, not state the page changes;
  - django_session: Django saves a session the request modified (a login or logout is a
    POST; nothing in a GET of ours modifies one today, but the session is the framework's
    bookkeeping, not the application's data).
The results cache is Django's cache (memory, or Redis in production), not the database, so
it needs no exception; were CACHES ever a database cache, its table would join this list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

ALLOWED_ON_READ = frozenset({"trial_blindinglog", "django_session"})
# Statements that change no row (savepoints are the tests' own).
READS = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "SET ", "SHOW ")
WRITE_TABLE = re.compile(
    r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(?P<table>\w+)"?', re.IGNORECASE
)


@contextmanager
def captured_writes() -> Iterator[list[str]]:
    """The statements run in the block that may change rows."""
    writes: list[str] = []

    def watch(execute, sql, params, many, context):
        if not sql.lstrip()[:9].upper().startswith(READS):
            writes.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        yield writes


def not_allowed_on_read(writes: list[str]) -> list[str]:
    """The writes no read may make (any statement not clearly on an allowed table)."""
    found = []
    for sql in writes:
        match = WRITE_TABLE.match(sql)
        if match is None or match.group("table") not in ALLOWED_ON_READ:
            found.append(sql)
    return found
