"""The chunk path of the writers: one numpy array per column instead of one tuple per row.

Row by row, encoding is Python work per cell (~200k rows/s); the SMS table has ~12 million
rows. Here each chunk is checked and converted column by column, then laid out in the
format's row layout with numpy and written in slices of a few MB, so memory is bounded by the
chunk the caller holds plus one slice, never by the table. The bytes written are exactly
those the row path writes for the same values (the tests compare the files byte for byte),
so everything the row path was verified against carries over.

Only this module imports numpy; the row path stays standard-library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .columns import LARGEST, Column, _cut_bytes

# A slice of the output row layout is built and written at a time: large enough that numpy's
# per-call overhead vanishes, small enough that a 640-byte-wide string column does not
# multiply a 200,000-row chunk into hundreds of MB.
SLICE_BYTES = 8 << 20

_DAYS_1960 = 3653  # days from 1960-01-01 (Stata's epoch) to 1970-01-01 (numpy's)
_MS_1960 = _DAYS_1960 * 86_400_000
_DAYS_1582 = 141_428  # days from 1582-10-14 (SPSS's epoch) to 1970-01-01
_MS_1582 = _DAYS_1582 * 86_400_000
_STATA_MISSING = np.frombuffer(bytes.fromhex("000000000000e07f"), "<f8")[0]  # '.'
_MS_PER_UNIT = {"s": -1000, "ms": 1, "us": 1000, "ns": 1_000_000}  # negative: multiply
_SPACES64 = np.frombuffer(b" " * 8, "<u8")[0]
_RAW, _BLANK, _SYSMIS_CODE = 253, 254, 255


@dataclass
class Chunk:
    """One chunk, checked and normalised, ready for either format.

    `values[i]` per kind: number -> float64 (NaN missing); date -> int64 days since
    1970-01-01; datetime -> int64 ms since 1970-01-01 (both with `missing[i]`, a bool array);
    string -> 'S<k>' UTF-8 bytes, k <= width, already cut. `cut[i]` counts cut strings."""

    rows: int
    values: list[np.ndarray]
    missing: list[np.ndarray | None]
    cut: list[int]


def prepare(columns: Sequence[Column], arrays: Sequence, first_row: int) -> Chunk:
    """Check and normalise one chunk; raise before anything is written if a value is refused.

    Errors name the file row (`first_row` is the 1-based row of the chunk's first value) and
    the column, as the row path does."""
    if len(arrays) != len(columns):
        raise ValueError(f"{len(arrays)} arrays for {len(columns)} columns")
    arrays = [np.asarray(a) for a in arrays]
    lengths = {a.shape for a in arrays}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"the arrays must be one-dimensional and equally long, got {shapes}")
    chunk = Chunk(rows=len(arrays[0]), values=[], missing=[], cut=[])
    for column, array in zip(columns, arrays, strict=True):
        try:
            value, missing, cut = _CONVERT[column.kind](array, column.width)
        except _Refused as refused:
            kind = TypeError if refused.type_error else ValueError
            row = "" if refused.index is None else f"row {first_row + refused.index}, "
            raise kind(f"{row}column {column.name!r}: {refused}") from None
        chunk.values.append(value)
        chunk.missing.append(missing)
        chunk.cut.append(cut)
    return chunk


class _Refused(Exception):
    def __init__(self, message: str, index: int | None = None, *, type_error: bool = False):
        super().__init__(message)
        self.index = index
        self.type_error = type_error


def _numbers(array: np.ndarray, _width: int):
    if array.dtype.kind not in "fiub":
        raise _Refused(f"expected a float64 array, got {array.dtype}", type_error=True)
    x = array.astype(np.float64, copy=False)
    # Infinity and the magnitudes Stata keeps for its missing codes are refused, as per row.
    with np.errstate(invalid="ignore"):
        beyond = np.abs(x) > LARGEST
    if beyond.any():
        at = int(np.flatnonzero(beyond)[0])
        raise _Refused(f"{x[at]!r} is beyond the largest number the files can hold", at)
    return x, None, 0


def _dates(array: np.ndarray, _width: int):
    if array.dtype != np.dtype("datetime64[D]"):
        raise _Refused(f"expected a datetime64[D] array, got {array.dtype}", type_error=True)
    return array.view(np.int64), np.isnat(array), 0


def _datetimes(array: np.ndarray, _width: int):
    unit = np.datetime_data(array.dtype)[0] if array.dtype.kind == "M" else None
    if unit not in _MS_PER_UNIT:
        raise _Refused(f"expected a datetime64[ms] array, got {array.dtype}", type_error=True)
    missing = np.isnat(array)
    ticks = array.view(np.int64)
    per = _MS_PER_UNIT[unit]
    # Finer units are floored to the millisecond, as the row path floors microseconds.
    ms = ticks * -per if per < 0 else ticks // per if per > 1 else ticks
    return ms, missing, 0


def _strings(array: np.ndarray, width: int):
    if array.dtype.kind == "S":
        return _cut_encoded(np.ascontiguousarray(array), width)
    if array.dtype.kind not in "OU":
        raise _Refused(f"expected str objects or UTF-8 bytes, got {array.dtype}", type_error=True)
    encoded, cut = [], 0
    for index, value in enumerate(array.tolist()):
        if value is None:
            encoded.append(b"")
            continue
        if not isinstance(value, str):
            raise _Refused(f"expected a str, got {type(value).__name__}", index, type_error=True)
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise _Refused(str(error), index) from None
        if len(data) > width:
            cut += 1
            data = _cut_bytes(data, width)
        encoded.append(data)
    size = max(1, max(map(len, encoded), default=1))
    return np.array(encoded, dtype=f"S{size}"), None, cut


def _cut_encoded(array: np.ndarray, width: int):
    """An 'S' array cut to `width` bytes at character boundaries, and the count of cuts.

    Usually nothing is longer than the width (the export measures it), so that case is one
    look at the bytes past the width; only the longer values are cut one by one."""
    size = array.dtype.itemsize
    if size <= width:
        return array, None, 0
    tail = array.view(np.uint8).reshape(len(array), size)[:, width:]
    longer = np.flatnonzero(tail.any(axis=1))
    out = array.astype(f"S{width}")
    for index in longer.tolist():
        out[index] = _cut_bytes(bytes(array[index]), width)
    return out, None, len(longer)


_CONVERT = {"number": _numbers, "date": _dates, "datetime": _datetimes, "string": _strings}


def _slices(rows: int, row_bytes: int):
    step = max(1, SLICE_BYTES // max(1, row_bytes))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


# --- Stata ----------------------------------------------------------------------------------


def write_stata(file, columns: Sequence[Column], chunk: Chunk) -> None:
    """Write the chunk's rows in Stata's fixed-width layout (help dta, 5.10).

    A structured array with one field per variable is exactly that layout: little-endian
    doubles (numbers, %td days and %tc milliseconds since 1960, '.' when missing) and
    NUL-padded str# fields."""
    layout = np.dtype(
        [(f"v{i}", f"S{c.width}" if c.kind == "string" else "<f8") for i, c in enumerate(columns)]
    )
    for part in _slices(chunk.rows, layout.itemsize):
        records = np.empty(part.stop - part.start, dtype=layout)
        for i, column in enumerate(columns):
            value = chunk.values[i][part]
            field = records[f"v{i}"]
            if column.kind == "number":
                field[...] = value
                field[np.isnan(value)] = _STATA_MISSING
            elif column.kind == "string":
                field[...] = value  # numpy pads the shorter 'S' values with NULs
            else:
                offset = _DAYS_1960 if column.kind == "date" else _MS_1960
                field[...] = value + offset
                field[chunk.missing[i][part]] = _STATA_MISSING
        file.write(memoryview(records.view(np.uint8)))


# --- SPSS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpssLayout:
    """Where each column's 8-byte elements sit in a case, and string segment widths."""

    units: int  # elements per case
    starts: tuple[int, ...]
    segments: tuple[tuple[int, ...], ...]


def _string_spans(size: int, segments: Sequence[int]) -> list[tuple[int, int, int]]:
    """(storage offset, first byte, end byte) of each segment holding some of a value's first
    `size` bytes: a very long string keeps 255 bytes in each 256-byte segment."""
    spans, stored = [], 0
    for index, width in enumerate(segments):
        first = 255 * index
        if first >= size:
            break
        spans.append((stored, first, min(size, first + 255)))
        stored += (width + 7) // 8 * 8
    return spans


def _reach(columns: Sequence[Column], chunk: Chunk, layout: SpssLayout) -> list[int]:
    """Per column, how many of its elements this chunk's values can make other than blank:
    1 for a number, the pieces up to the longest value's end for a string. The rest of a wide
    string column, usually nearly all of it, is code 254 with no data to keep."""
    reach = []
    for i, column in enumerate(columns):
        if column.kind != "string":
            reach.append(1)
            continue
        at, first, end = _string_spans(chunk.values[i].dtype.itemsize, layout.segments[i])[-1]
        reach.append((at + end - first + 7) // 8)
    return reach


def spss_elements(
    columns: Sequence[Column], chunk: Chunk, part: slice, layout: SpssLayout, reach: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The compression code of every element of the cases in `part`, an (m, units) array,
    and the 8 bytes (uint64) of the elements in `reach`, an (m, sum(reach)) array. The bytes
    matter only where the code is 253."""
    m = part.stop - part.start
    codes = np.full((m, layout.units), _BLANK, dtype=np.uint8)
    data = np.empty((m, sum(reach)), dtype=np.uint64)
    kept = 0
    for i, column in enumerate(columns):
        at = layout.starts[i]
        value = chunk.values[i][part]
        if column.kind == "number":
            code = np.full(m, _RAW, dtype=np.uint8)
            # Whole numbers -99..151 are one byte, value + 100 (the bias); NaN fails both
            # comparisons and becomes system-missing below.
            small = (value >= -99) & (value <= 151) & (value == np.floor(value))
            code[small] = (value[small] + 100).astype(np.uint8)
            code[np.isnan(value)] = _SYSMIS_CODE
            codes[:, at] = code
            data[:, kept] = value.view(np.uint64)
        elif column.kind == "date":
            seconds = (value + _DAYS_1582) * 86_400.0
            codes[:, at] = np.where(chunk.missing[i][part], _SYSMIS_CODE, _RAW)
            data[:, kept] = seconds.view(np.uint64)
        elif column.kind == "datetime":
            # Exact int64 milliseconds divided once, as the row path's int / 1000.
            seconds = (value + _MS_1582) / 1000
            codes[:, at] = np.where(chunk.missing[i][part], _SYSMIS_CODE, _RAW)
            data[:, kept] = seconds.view(np.uint64)
        else:
            pieces = _string_pieces(value, layout.segments[i], reach[i])
            codes[:, at : at + reach[i]] = np.where(pieces == _SPACES64, _BLANK, _RAW)
            data[:, kept : kept + reach[i]] = pieces
        kept += reach[i]
    return codes, data


def _string_pieces(value: np.ndarray, segments: Sequence[int], reach: int) -> np.ndarray:
    """The first `reach` 8-byte pieces of each string's storage, space-padded, as uint64."""
    m, size = len(value), value.dtype.itemsize
    raw = value.view(np.uint8).reshape(m, size)
    storage = np.full((m, reach * 8), 0x20, dtype=np.uint8)
    for at, first, end in _string_spans(size, segments):
        piece = raw[:, first:end]
        # 'S' arrays pad with NULs; SPSS pads with spaces.
        storage[:, at : at + end - first] = np.where(piece == 0, 0x20, piece)
    return storage.view(np.uint64)


def write_spss(
    file,
    columns: Sequence[Column],
    chunk: Chunk,
    layout: SpssLayout,
    pending_codes: bytearray,
    pending_data: bytearray,
) -> None:
    """Compress and write the chunk's cases (PSPP guide, "Data Record").

    The codes form blocks of 8, each followed by the 8-byte pieces of its 253 codes, and
    blocks run on across cases and across calls: `pending_codes` (fewer than 8) and
    `pending_data` (their pieces) come from the previous write and are replaced by this
    chunk's unfinished block. Steps, per slice of cases:

    1. The code of every element in file order, after the pending ones; the data of the
       elements that may need it, with a map from element in the case to data column.
    2. The g-th raw piece (253 code), in block b, lands at 8-byte unit g + b + 1: after
       the b + 1 blocks of codes up to its own and the g pieces before it.
    3. The blocks of 8 codes fill the other units, in order.
    4. Write that uint64 array; keep the unfinished block for the next write."""
    reach = _reach(columns, chunk, layout)
    # Element of the case -> its column in `data` (-1: always blank, never looked up).
    column_of = np.full(layout.units, -1, dtype=np.int64)
    kept = 0
    for start, count in zip(layout.starts, reach, strict=True):
        column_of[start : start + count] = np.arange(kept, kept + count)
        kept += count

    # Per element a slice holds a few bytes (the code, its copy, the comparison), and ~24
    # per kept 8-byte piece (the data, the pieces taken from it, their positions).
    for part in _slices(chunk.rows, 4 * layout.units + 24 * kept):
        codes, data = spss_elements(columns, chunk, part, layout, reach)
        held = np.frombuffer(bytes(pending_codes), dtype=np.uint8)
        held_data = np.zeros(len(held), dtype=np.uint64)
        held_data[held == _RAW] = np.frombuffer(bytes(pending_data), dtype="<u8")

        def pieces(index: np.ndarray, held=held, held_data=held_data, data=data) -> np.ndarray:
            """The 8 bytes of the elements at `index` (sorted) of the stream held + codes."""
            out = np.empty(len(index), dtype=np.uint64)
            split = int(np.searchsorted(index, len(held)))
            out[:split] = held_data[index[:split]]
            case, element = np.divmod(index[split:] - len(held), layout.units)
            out[split:] = data[case, column_of[element]]
            return out

        codes = np.concatenate((held, codes.ravel()))
        blocks = len(codes) // 8
        full = codes[: blocks * 8]
        raw_index = np.flatnonzero(full == _RAW)
        raw_at = raw_index // 8 + np.arange(1, len(raw_index) + 1)
        out = np.empty(blocks + len(raw_index), dtype="<u8")
        out[raw_at] = pieces(raw_index)
        is_block = np.ones(len(out), dtype=bool)
        is_block[raw_at] = False  # the blocks fill the other units, in order
        out[is_block] = full.view("<u8")
        file.write(memoryview(out.view(np.uint8)))

        tail = codes[blocks * 8 :]
        pending_codes[:] = tail.tobytes()
        tail_raw = np.flatnonzero(tail == _RAW) + blocks * 8
        pending_data[:] = pieces(tail_raw).astype("<u8").tobytes()
