"""What both writers share: columns, values, and the file protocol of a writer."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .columns import LARGEST, Column, _cut_bytes

KINDS = ("number", "date", "datetime", "string")
MAX_STRING_WIDTH = 2045  # Stata's widest str#; SPSS takes it as a very long string.

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_STATA_RESERVED = frozenset(
    ("_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long")
    + ("_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with")
)
_SPSS_RESERVED = frozenset(("ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT"))
_SPSS_RESERVED |= {"OR", "TO", "WITH"}


@dataclass(frozen=True)
class WriteResult:
    """What was written: the row count and, per column, how many strings were cut."""

    rows: int
    truncated: dict[str, int] = field(default_factory=dict)


def reserved(name: str) -> bool:
    """Is `name` a reserved word in Stata or SPSS (so no variable may have it)?"""
    return (
        name in _STATA_RESERVED
        or re.fullmatch(r"str\d+", name) is not None
        or name.upper() in _SPSS_RESERVED
    )


def check_columns(columns: Sequence[Column]) -> None:
    """Refuse columns either format cannot hold, before anything is written.

    Names are compared case-insensitively, since SPSS names are; the reserved words of both
    formats are refused, so one list of columns always gives both files."""
    if not columns:
        raise ValueError("at least one column is needed")
    if len(columns) > 32_767:
        raise ValueError("Stata format 118 holds at most 32,767 variables")
    seen: set[str] = set()
    for column in columns:
        name = column.name
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r}: names are 1-32 of A-Z, a-z, 0-9, _ from a letter")
        if name in _STATA_RESERVED or re.fullmatch(r"str\d+", name):
            raise ValueError(f"{name!r} is a reserved word in Stata")
        if name.upper() in _SPSS_RESERVED:
            raise ValueError(f"{name!r} is a reserved word in SPSS")
        if name.upper() in seen:
            raise ValueError(f"{name!r}: two columns have this name (ignoring case)")
        seen.add(name.upper())
        if column.kind not in KINDS:
            raise ValueError(f"{name!r}: kind must be one of {', '.join(KINDS)}")
        if column.kind == "string":
            if not 1 <= column.width <= MAX_STRING_WIDTH:
                raise ValueError(f"{name!r}: string width must be 1..{MAX_STRING_WIDTH} bytes")
        elif column.width:
            raise ValueError(f"{name!r}: only string columns have a width")
        if column.value_labels is not None:
            if column.kind != "number":
                raise ValueError(f"{name!r}: value labels need a number column")
            for code, text in column.value_labels.items():
                # Stata keeps value-label codes as 4-byte integers below its missing codes.
                if type(code) is not int or not -2_147_483_647 <= code <= 2_147_483_620:
                    raise ValueError(f"{name!r}: value-label code {code!r} is not a 32-bit int")
                if not isinstance(text, str):
                    raise ValueError(f"{name!r}: value label for {code} is not text")


# --- Values ---------------------------------------------------------------------------------


def _number(value) -> float | None:
    """The double for a number cell, or None when missing (None or NaN)."""
    if value is None:
        return None
    if isinstance(value, str | bytes):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    x = float(value)
    if x != x:
        return None
    if not -LARGEST <= x <= LARGEST:
        raise ValueError(f"{value!r} is beyond the largest number the files can hold")
    return x


def _day(value) -> int:
    """The proleptic Gregorian day number of a date (a date-time is refused, not cut)."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value.toordinal()


_MILLISECOND = dt.timedelta(milliseconds=1)


def _milliseconds(value, epoch: dt.datetime) -> int:
    """Whole milliseconds from `epoch` to a naive date-time, rounded down (floor)."""
    try:
        return (value - epoch) // _MILLISECOND
    except TypeError:
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}") from None
        if value.tzinfo is not None:
            raise ValueError("datetimes must be naive (local time); got an aware one") from None
        raise


def _text(value, width: int, cut: list[int], index: int) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise TypeError(f"expected a str, got {type(value).__name__}")
    data = value.encode("utf-8")
    if len(data) > width:
        cut.append(index)
        data = _cut_bytes(data, width)
    return data


# --- Files ----------------------------------------------------------------------------------


class _Writer:
    """Opening, row counting, error reporting and the context-manager protocol.

    Subclasses build `_encoders` (one function per column, value -> encoded value) and
    implement `_start`, `_write_encoded` and `_finish`."""

    _buffer = 1 << 20

    def __init__(
        self,
        path: str | os.PathLike,
        columns: Sequence[Column],
        *,
        label: str = "",
        created: dt.datetime | None = None,
    ):
        self.columns = tuple(columns)
        check_columns(self.columns)
        self.path = os.fspath(path)
        self.label = label
        self.created = created
        self.rows = 0
        self._counts = [0] * len(self.columns)
        # Encoders append the column index here when they cut a string; the counts are
        # taken only once the whole row was encoded, so a refused row counts nothing.
        self._cut: list[int] = []
        self._encoders: list[Callable] = self._build_encoders()
        self._closed = False
        self._file = open(self.path, "wb", buffering=self._buffer)  # noqa: SIM115
        try:
            self._start()
        except BaseException:
            self._abandon()
            raise

    # Public API -----------------------------------------------------------------------------

    def write(self, row: Sequence) -> None:
        """Write one row (values in column order). A refused value raises ValueError or
        TypeError naming the row and column; nothing of that row is written."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        if len(row) != len(self._encoders):
            raise ValueError(
                f"row {self.rows + 1}: {len(row)} values for {len(self._encoders)} columns"
            )
        try:
            # Lengths were compared above; strict=True would only cost time per row.
            encoded = [encode(v) for encode, v in zip(self._encoders, row, strict=False)]
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            self._cut.clear()
            raise self._explain(row, exc) from exc
        if self._cut:
            for index in self._cut:
                self._counts[index] += 1
            self._cut.clear()
        self._write_encoded(encoded)
        self.rows += 1

    def write_rows(self, rows: Iterable[Sequence]) -> None:
        """Write every row of an iterable (a generator or a cursor is read lazily)."""
        write = self.write
        for row in rows:
            write(row)

    def write_columns(self, arrays: Sequence) -> None:
        """Write a chunk of rows given as one numpy array per column, all equally long.

        Per kind: number, a float64 array (NaN missing; other real dtypes are converted);
        date, datetime64[D]; datetime, datetime64[ms] (s, us and ns are floored to ms),
        naive local time; NaT missing in both; string, an object array of str or None, or
        an 'S<n>' array of UTF-8 bytes (NUL bytes are padding there, so b"" is None). Strings
        longer than the width are cut and counted as in `write`. The file is byte for byte
        the one `write` gives for the same values, and calls of both may be mixed. A refused
        value raises ValueError or TypeError naming the row and column, and nothing of the
        chunk is written."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        from . import arrays as vector  # numpy is needed by the chunk path only

        chunk = vector.prepare(self.columns, arrays, self.rows + 1)
        if chunk.rows:
            self._write_chunk(chunk)
        for index, cut in enumerate(chunk.cut):
            self._counts[index] += cut
        self.rows += chunk.rows

    @property
    def result(self) -> WriteResult:
        return WriteResult(
            rows=self.rows,
            truncated={c.name: n for c, n in zip(self.columns, self._counts, strict=True)},
        )

    def close(self) -> WriteResult:
        """Finish the file (trailer, row count) and close it. Idempotent."""
        if not self._closed:
            try:
                self._finish()
                self._file.close()
            except BaseException:
                self._abandon()
                raise
            self._closed = True
        return self.result

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif not self._closed:
            # A half-written file has a header saying 0 rows (Stata) or "unknown" (SPSS) and
            # would be read as valid but incomplete; leave nothing rather than that.
            self._abandon()

    # Internals ------------------------------------------------------------------------------

    def _abandon(self) -> None:
        self._closed = True
        try:
            self._file.close()
        finally:
            if os.path.exists(self.path):
                os.remove(self.path)

    def _explain(self, row: Sequence, exc: Exception) -> Exception:
        """Find the column whose value was refused (only on the error path)."""
        for column, encode, value in zip(self.columns, self._encoders, row, strict=True):
            try:
                encode(value)
            except (TypeError, ValueError, OverflowError, AttributeError) as error:
                self._cut.clear()
                kind = TypeError if isinstance(error, TypeError | AttributeError) else ValueError
                return kind(f"row {self.rows + 1}, column {column.name!r}: {error}")
        self._cut.clear()
        return exc

    def _build_encoders(self) -> list[Callable]:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _write_encoded(self, encoded: list) -> None:
        raise NotImplementedError

    def _write_chunk(self, chunk) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError


def _clip(text: str, size: int) -> bytes:
    """`text` as UTF-8, cut to at most `size` bytes at a character boundary."""
    data = text.encode("utf-8")
    return _cut_bytes(data, size) if len(data) > size else data


def _fixed(text: str, size: int, *, pad: bytes = b"\0") -> bytes:
    """`text` as UTF-8 in exactly `size` bytes: cut at a character boundary, then padded."""
    return _clip(text, size).ljust(size, pad)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
