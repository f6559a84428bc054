"""A table already in memory as a DataFrame (participants, visits) written as its three ZIP
members column by column: the same bytes TableMember writes row by row (codebook.csv_cell
and stat_value per value), without a Python call per value for the common column types.

At 100,000 participants the participants and visits tables are 400,000 rows × up to 60
columns: row by row (a CSV cell, a stat value, a pickle spool and the writers' row path for
each value) they took about half a minute of the export. Here each column is converted once
per chunk of rows: floats, integers and pure-text columns by numpy and pandas; columns of
mixed Python objects (dates, booleans with None) value by value, as before.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from outcomes.results import statfiles
from outcomes.results.export import deflate
from outcomes.results.export.codebook import (
    CODED,
    Variable,
    csv_cell,
    missing,
    stat_codes,
    stat_value,
)
from outcomes.results.export.members import MAX_TEXT_BYTES, _is_text, note_truncation, stat_columns

# Rows converted at a time: each holds its cells' CSV text (~60 columns × 10,000 strings).
CHUNK_ROWS = 10_000
# Whole floats below this convert to int64 exactly (str(int(x)) for the rest).
INT64 = 2.0**63


def frame_members(
    zf: zipfile.ZipFile, table: str, variables: Sequence[Variable], frame: pd.DataFrame
) -> int:
    """Add `table`.csv, .dta and .sav for `frame` (one column per variable, in order);
    returns the number of rows."""
    names = [v.name for v in variables]
    # The columns' own arrays (views): frame[names] would copy the whole table.
    data = [frame[name].to_numpy() for name in names]
    widths = {i: _text_width(data[i]) for i, v in enumerate(variables) if _is_text(v)}
    columns = stat_columns(variables, widths)
    codes = [stat_codes(v.value_labels) if v.value_labels else None for v in variables]
    with tempfile.TemporaryDirectory(dir=Path(zf.filename).parent) as tmp:
        folder = Path(tmp)
        with (
            deflate.open_member(zf, f"{table}.csv") as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as out,
            statfiles.open_table(folder, table, columns) as files,
        ):
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(names)
            for start in range(0, len(frame), CHUNK_ROWS):
                part = [column[start : start + CHUNK_ROWS] for column in data]
                texts = [csv_texts(part[i], v.type) for i, v in enumerate(variables)]
                writer.writerows(zip(*texts, strict=True))
                arrays = [
                    stat_array(part[i], texts[i], v, codes[i]) for i, v in enumerate(variables)
                ]
                files.write_columns(arrays)
        note_truncation(variables, files.result)
        for path in files.paths:
            deflate.add_file(zf, path, path.name)
    return len(frame)


def csv_texts(values: np.ndarray, type_: str) -> np.ndarray:
    """The CSV text of each value (codebook.csv_cell, as csv.writer prints it)."""
    if values.dtype.kind == "f":
        return _float_texts(values, coded=type_ in CODED)
    if values.dtype.kind in "iu":
        return values.astype(str).astype(object)
    if values.dtype.kind == "b" and type_ in CODED:
        return np.where(values, "1", "0").astype(object)
    if values.dtype.kind in "OUT" and _all_text(values):
        # Text stays as it is (a code, a number's text, a label); missing is empty.
        out = values.astype(object)
        out[pd.isna(out)] = ""
        return out
    return np.array([_text(csv_cell(v, type_)) for v in values], dtype=object)


def stat_array(
    values: np.ndarray, texts: np.ndarray, variable: Variable, codes: dict[str, int] | None
) -> np.ndarray:
    """The column as the writers' chunk path takes it (codebook.stat_value per value)."""
    if codes is not None and variable.type in CODED:
        # stat_value looks up text(value): for coded types that is the CSV text.
        numbers = np.append(np.array(list(codes.values()), dtype="float64"), np.nan)
        return numbers[pd.Index(list(codes)).get_indexer(texts)]
    kind = variable.type
    if codes is not None:
        return np.array([_float(stat_value(v, variable, codes)) for v in values], dtype="float64")
    if kind in {"integer", "number"}:
        if values.dtype.kind in "fiub":
            return values.astype("float64")
        return np.array([np.nan if missing(v) else float(v) for v in values], dtype="float64")
    if kind == "date":
        return np.array([stat_value(v, variable, None) for v in values], dtype="datetime64[D]")
    if kind == "datetime":
        return np.array([stat_value(v, variable, None) for v in values], dtype="datetime64[ms]")
    return np.array([stat_value(v, variable, None) for v in values], dtype=object)


def _float_texts(values: np.ndarray, *, coded: bool) -> np.ndarray:
    out = np.full(len(values), "", dtype=object)
    present = ~np.isnan(values)
    if not coded:  # csv.writer prints the float itself
        out[present] = [repr(v) for v in values[present].tolist()]
        return out
    # codebook.text: a whole number without ".0", else the float's repr.
    whole = present & np.isfinite(values) & (np.floor(values) == values)
    small = whole & (abs(values) < INT64)
    out[small] = values[small].astype(np.int64).astype(str)  # exact: whole and in range
    big = whole & ~small
    out[big] = [str(int(v)) for v in values[big].tolist()]
    rest = present & ~whole
    out[rest] = [repr(v) for v in values[rest].tolist()]
    return out


def _float(value) -> float:
    return np.nan if value is None else float(value)


def _all_text(values: np.ndarray) -> bool:
    kind = pd.api.types.infer_dtype(values, skipna=True)
    return kind in {"string", "empty"}


def _text(cell) -> str:
    return cell if isinstance(cell, str) else str(cell)


def _text_width(values: np.ndarray) -> int:
    """The widest value's UTF-8 bytes (at least 1, at most MAX_TEXT_BYTES), as
    TableMember.write notes it."""
    widest = 1
    for value in values:
        if missing(value):
            continue
        text = str(value)
        if text:
            widest = max(widest, min(len(text.encode()), MAX_TEXT_BYTES))
    return widest
