"""Query results as pandas DataFrames, a chunk of rows at a time, for the analysis reads
(outcomes.results.analysis_data, outcomes.results.selectors).

On PostgreSQL the rows come through `COPY (query) TO STDOUT` as CSV, spooled to a temporary
file and parsed by pandas' C reader: at 100,000 participants a million outcome values
arrive in under a second instead of ~2.5 s through a cursor, which makes one Python tuple
and one Python object per value (docs/PERFORMANCE.md, fourth round). Elsewhere (SQLite, the
development database) a cursor is read with fetchmany. Either way every column is converted
to one declared kind, so both paths give the same frame, dtypes included
(tests/outcomes/test_sql_frames.py compares them on PostgreSQL).

Kinds: INT (never NULL: int64), FLOAT (float64, NULL = NaN), TEXT (str, NULL = None),
BOOL (True/False, NULL = None), DATE (datetime.date, NULL = None); the last three in object
columns, as values_list would give them.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator

import pandas as pd
from django.core.exceptions import EmptyResultSet
from django.db import connection

INT, FLOAT, TEXT, BOOL, DATE = "int", "float", "text", "bool", "date"
_READ_AS = {INT: "int64", FLOAT: "float64", TEXT: object, BOOL: object, DATE: object}


# COPY writes NULL as a token drawn for each read: PostgreSQL quotes a value equal to it,
# but the reader cannot see quotes, so a fixed token (COPY's usual \N) typed into a free-text
# field would read as NULL. Hex only: no quoting or escaping questions in the COPY options.
def _null_token() -> str:
    return "NULL" + secrets.token_hex(12)


CHUNK = 50_000


def read_frame(queryset, kinds: dict[str, str], *, copy: bool | None = None) -> pd.DataFrame:
    """All of a `values_list` queryset's rows as one DataFrame, one column per entry of
    `kinds` (its names, in the queryset's field order). `copy` forces the path (None: COPY
    on PostgreSQL, a cursor elsewhere). The fields' from_db_value converters are not
    applied: the kinds stand for them."""
    return Rows(queryset, kinds, copy=copy).frame()


class Rows:
    """A `values_list` queryset's rows, fetched and not yet parsed. On the COPY path the
    server's CSV is in a temporary file once the object exists, so the rows can be fetched
    on one thread (outcomes.results.background.Beside) and parsed on another; on the cursor path
    they are read when `chunks` runs (DataFrames of up to `size` rows, as read_frame's).
    The rows can be read once."""

    def __init__(self, queryset, kinds: dict[str, str], *, copy: bool | None = None) -> None:
        self.kinds = kinds
        self._spool = None
        self._null = _null_token()
        try:
            self._sql = queryset.query.sql_with_params()
        except EmptyResultSet:  # e.g. .none() or an empty __in: no query to run
            self._sql = None
            return
        if copy is None:
            copy = connection.vendor == "postgresql"
        if copy:
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by chunks())
            try:
                # copy_expert's errors come as psycopg2's own: made django.db ones, as execute's.
                with connection.cursor() as cursor, connection.wrap_database_errors:
                    statement = cursor.mogrify(*self._sql).decode()
                    cursor.copy_expert(
                        f"COPY ({statement}) TO STDOUT WITH (FORMAT csv, NULL '{self._null}')",
                        self._spool,
                    )
            except BaseException:
                self._spool.close()
                raise

    def chunks(self, size: int = CHUNK) -> Iterator[pd.DataFrame]:
        if self._sql is None:
            return
        raw = self._copied(size) if self._spool is not None else self._fetched(size)
        for chunk in raw:
            yield _typed(chunk, self.kinds)

    def close(self) -> None:
        """Delete the spooled rows without reading them."""
        if self._spool is not None:
            self._spool.close()

    def frame(self) -> pd.DataFrame:
        chunks = list(self.chunks())
        if not chunks:
            return _typed(pd.DataFrame({name: [] for name in self.kinds}), self.kinds)
        if len(chunks) == 1:
            return chunks[0]
        return pd.concat(chunks, ignore_index=True)

    def _copied(self, size: int) -> Iterator[pd.DataFrame]:
        with self._spool as spool:
            if not spool.tell():
                return  # no rows (pandas refuses an empty file)
            spool.seek(0)
            reader = pd.read_csv(
                spool,
                names=list(self.kinds),
                header=None,
                dtype={name: _READ_AS[kind] for name, kind in self.kinds.items()},
                keep_default_na=False,  # "", "NA", "null" are values, not missing
                na_values=[self._null],
                encoding="utf-8",
                chunksize=size,
            )
            with reader:
                yield from reader

    def _fetched(self, size: int) -> Iterator[pd.DataFrame]:
        with connection.chunked_cursor() as cursor:
            cursor.execute(*self._sql)
            while rows := cursor.fetchmany(size):
                yield pd.DataFrame.from_records(rows, columns=list(self.kinds))


def _typed(chunk: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Each column as its kind; a fresh 0-based index (read_csv's chunks count on)."""
    columns = {}
    for name, kind in kinds.items():
        values = chunk[name]
        if kind == INT:
            columns[name] = values.to_numpy(dtype="int64")
        elif kind == FLOAT:
            columns[name] = values.to_numpy(dtype="float64", na_value=float("nan"))
        else:
            out = values.to_numpy(dtype=object, copy=True)
            missing = pd.isna(out)
            if kind == BOOL:
                # "t"/"f" (COPY), 1/0 (SQLite) or True/False (psycopg2), compared in C.
                out = ((out == "t") | (out == 1)).astype(object)
            elif kind == DATE:
                # ISO text (COPY, SQLite) or dates (psycopg2): one vectorised parse.
                out = pd.to_datetime(values, format="ISO8601").dt.date.to_numpy(
                    dtype=object, copy=True
                )
            out[missing] = None
            columns[name] = pd.Series(out, dtype=object)  # not inferred as str (pandas 3)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(chunk)))
