"""Writing one table of the export as three ZIP members — CSV, Stata .dta and SPSS .sav —
from rows that arrive one at a time, in memory that does not grow with the table.

The CSV is streamed straight into the ZIP. Stata and SPSS need each text column's width
before the first row (fixed-width records), and the rows come from a database cursor that
is read once, so the stat-file values are also spooled to a temporary file, in pickled
chunks, while the widest text of each column is noted; when the table ends, the spool is
read once, each chunk turned into one array per column and written to both writers through
their chunk path (outcomes/results/statfiles, which writes rows as they come: pyreadstat would need
the whole table as a DataFrame). Memory: one chunk of rows.

csv_table_members and csv_stat_files: a table whose CSV the database wrote (the SMS table on
PostgreSQL); its Stata and SPSS files are made column-wise from that CSV, read in chunks,
also while the server is still writing it.
"""

from __future__ import annotations

import csv
import io
import pickle
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from outcomes.results import statfiles
from outcomes.results.export import deflate
from outcomes.results.export.codebook import Variable, csv_cell, stat_codes, stat_value

SPOOL_CHUNK = 5_000
# The widest text a .dta str# column holds; longer values are cut there (at a character
# boundary) and the codebook says how many were: the CSV has them whole.
MAX_TEXT_BYTES = 2045
STAT_LABEL = 80  # Stata's limit for a variable label (SPSS allows more)


class TableMember:
    """`with TableMember(zf, "visits", variables) as table: table.write(row)` adds
    visits.csv, visits.dta and visits.sav to the ZIP `zf` (the last two when it closes)."""

    def __init__(self, zf: zipfile.ZipFile, table: str, variables: Sequence[Variable]):
        self.zf = zf
        self.table = table
        self.variables = list(variables)
        self.types = [v.type for v in self.variables]
        self.codes = [stat_codes(v.value_labels) if v.value_labels else None for v in variables]
        self.text_columns = [i for i, v in enumerate(self.variables) if _is_text(v)]
        self.widths = dict.fromkeys(self.text_columns, 1)
        self.count = 0
        self._tmp = tempfile.TemporaryDirectory(dir=Path(zf.filename).parent)
        self._spool_path = Path(self._tmp.name) / f"{table}.spool"
        self._spool = open(self._spool_path, "wb")  # noqa: SIM115 (closed in close())
        self._chunk: list[list] = []
        self._raw = deflate.open_member(zf, f"{table}.csv")
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._csv.writerow([v.name for v in self.variables])

    def __enter__(self) -> TableMember:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    def write(self, row: Sequence) -> None:
        types, codes, variables = self.types, self.codes, self.variables
        self._csv.writerow([csv_cell(value, t) for value, t in zip(row, types, strict=True)])
        stat = [
            stat_value(value, var, c) for value, var, c in zip(row, variables, codes, strict=True)
        ]
        widths = self.widths
        for i in self.text_columns:
            value = stat[i]
            if value:
                size = len(value.encode())
                if size > widths[i]:
                    widths[i] = min(size, MAX_TEXT_BYTES)
        self._chunk.append(stat)
        self.count += 1
        if len(self._chunk) >= SPOOL_CHUNK:
            self._flush()

    def close(self) -> int:
        """Finish the CSV, write the .dta and .sav from the spool; the row count."""
        self._text.flush()
        self._text.detach()
        self._raw.close()
        self._flush()
        self._spool.close()
        try:
            columns = stat_columns(self.variables, self.widths)
            with statfiles.open_table(Path(self._tmp.name), self.table, columns) as files:
                for chunk in self._spooled_chunks():
                    files.write_columns(stat_arrays(columns, chunk))
            self._note_truncation(files.result)
            for path in files.paths:
                deflate.add_file(self.zf, path, path.name)
                path.unlink()
        finally:
            self._tmp.cleanup()
        return self.count

    def _discard(self) -> None:
        # The ZIP is thrown away with the failed build, but an open member would make
        # closing it raise and hide the original error.
        self._raw.close()
        self._spool.close()
        self._tmp.cleanup()

    def _flush(self) -> None:
        if self._chunk:
            pickle.dump(self._chunk, self._spool, protocol=pickle.HIGHEST_PROTOCOL)
            self._chunk = []

    def _spooled_chunks(self) -> Iterator[list[list]]:
        with open(self._spool_path, "rb") as spool:
            while True:
                try:
                    yield pickle.load(spool)  # noqa: S301 (our own temporary file)
                except EOFError:
                    return

    def _note_truncation(self, result) -> None:
        note_truncation(self.variables, result)


# The chunk path's array per column kind, from stat_value's values (None is NaN or NaT).
# Date-times go in at microseconds, exact for Python's datetime; the writers floor them to
# milliseconds as their row path does.
_STAT_DTYPES = {"number": np.float64, "date": "datetime64[D]", "datetime": "datetime64[us]"}


def stat_arrays(columns: Sequence[statfiles.Column], rows: list[list]) -> list[np.ndarray]:
    """A chunk of stat_value rows as the writers' chunk path takes it, one array per
    column: the same file bytes as writing the rows one by one (the writers' contract),
    without the row path's Python work per value — most of the time the allocation log and
    the screening log took (~10 s of the export at 100,000 participants)."""
    by_column = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return [
        np.array(values, dtype=_STAT_DTYPES.get(column.kind, object))
        for column, values in zip(columns, by_column, strict=True)
    ]


def stat_columns(variables: Sequence[Variable], widths: dict[int, int]) -> list[statfiles.Column]:
    """The .dta/.sav columns of a table; `widths`: the widest text (bytes) by column index."""
    columns = []
    for i, variable in enumerate(variables):
        label = variable.label[:STAT_LABEL]
        if variable.value_labels:
            codes = stat_codes(variable.value_labels)
            labels = {codes[code]: text for code, text in variable.value_labels.items()}
            columns.append(statfiles.Column(variable.name, label, "number", 0, labels))
        elif variable.type in {"integer", "number"}:
            columns.append(statfiles.Column(variable.name, label, "number"))
        elif variable.type in {"date", "datetime"}:
            columns.append(statfiles.Column(variable.name, label, variable.type))
        else:
            width = min(max(widths.get(i, 1), 1), variable.stat_width or MAX_TEXT_BYTES)
            columns.append(statfiles.Column(variable.name, label, "string", width))
    return columns


def note_truncation(variables: Sequence[Variable], result: statfiles.WriteResult) -> None:
    for variable in variables:
        cut = result.truncated.get(variable.name, 0)
        if cut and "are cut in the .dta" not in variable.notes:
            note = (
                f"{cut} value(s) longer than {variable.stat_width or MAX_TEXT_BYTES} bytes "
                "are cut in the .dta and .sav files; the CSV has them whole."
            )
            variable.notes = f"{variable.notes} {note}" if variable.notes else note


# --- A table whose CSV the database wrote (sms_copy) ----------------------------------------

CSV_CHUNK = 200_000


def csv_table_members(
    zf: zipfile.ZipFile, table: str, variables: Sequence[Variable], csv_path: Path
) -> None:
    """Add a CSV written elsewhere as the table's CSV member, and its .dta and .sav, made
    column-wise from the CSV read back in chunks (csv_stat_files)."""
    stat_paths = csv_stat_files(csv_path.parent, table, variables, csv_path)
    add_csv_members(zf, table, csv_path, stat_paths)


def csv_stat_files(
    folder: Path,
    table: str,
    variables: Sequence[Variable],
    source: Path | IO[bytes],
    text_widths: dict[str, int] | None = None,
) -> list[Path]:
    """Write `folder`/`table`.dta and .sav from the table's CSV (pandas' C parser, numpy
    conversions and the writers' chunk path: ~12 million SMS rows would take minutes row by
    row); returns their paths. `source`: the CSV's path, or a binary file object — which
    may still be growing (sms_copy.SmsStream.reader): then the CSV is read once, as it is
    written, and `text_widths` (the widest value in bytes of each text column, by name)
    must be known beforehand. Without them a first pass over the text columns finds them."""
    names = [v.name for v in variables]
    text = [i for i, v in enumerate(variables) if _is_text(v)]
    if text_widths is not None:
        widths = {i: max(text_widths[names[i]], 1) for i in text}
    else:
        widths = dict.fromkeys(text, 1)
        if text:  # the files need their widths first: two passes, so a file, not a stream
            assert isinstance(source, Path), "a stream is read once: give text_widths"
            for chunk in _chunks(source, [variables[i] for i in text]):
                for i in text:
                    encoded = _utf8(chunk[names[i]])
                    if len(encoded):
                        widths[i] = max(widths[i], int(np.strings.str_len(encoded).max()))
    columns = stat_columns(variables, widths)
    with statfiles.open_table(folder, table, columns) as files:
        for chunk in _chunks(source, variables):
            files.write_columns([_array(chunk[v.name], v) for v in variables])
    note_truncation(variables, files.result)
    return list(files.paths)


def add_csv_members(zf: zipfile.ZipFile, table: str, csv_path: Path, stat_paths: list[Path]):
    """Add the table's CSV and its stat files to the ZIP, removing the stat files."""
    deflate.add_file(zf, csv_path, f"{table}.csv")
    add_stat_members(zf, table, stat_paths)


def add_stat_members(zf: zipfile.ZipFile, table: str, stat_paths: list[Path]) -> None:
    """Add the table's stat files (csv_stat_files) to the ZIP, removing them."""
    for path in stat_paths:
        deflate.add_file(zf, path, f"{table}{path.suffix}")
        path.unlink()


def _is_text(variable: Variable) -> bool:
    return not variable.value_labels and variable.type not in {
        "integer", "number", "date", "datetime",
    }  # fmt: skip


def _chunks(path: Path | IO[bytes], variables: Sequence[Variable]):
    """The CSV's `variables` in chunks: numbers parsed by the C parser (empty = NaN), the
    rest as text with empty kept as ""."""
    numeric = [v.name for v in variables if not v.value_labels and v.type in NUMERIC]
    return pd.read_csv(
        path,
        usecols=[v.name for v in variables],
        dtype={v.name: "float64" if v.name in numeric else object for v in variables},
        keep_default_na=False,
        na_values={name: [""] for name in numeric},
        chunksize=CSV_CHUNK,
        encoding="utf-8",
    )


NUMERIC = {"integer", "number"}


def _array(values: pd.Series, variable: Variable) -> np.ndarray:
    """One column of a CSV chunk as the writers' chunk path takes it. Vectorised: a
    Series.map or to_datetime per value cost a minute for the SMS table at 100,000."""
    if variable.value_labels:
        codes = stat_codes(variable.value_labels)
        position = pd.Index(list(codes)).get_indexer(values.to_numpy(object))
        numbers = np.append(np.array(list(codes.values()), dtype="float64"), np.nan)
        return numbers[position]  # -1 (empty, or a code not listed) takes the NaN at the end
    if variable.type in NUMERIC:
        return values.to_numpy(dtype="float64", na_value=np.nan)
    if variable.type == "date":  # ISO text; numpy reads "" as NaT
        return values.to_numpy(object).astype("datetime64[D]")
    if variable.type == "datetime":
        return values.to_numpy(object).astype("datetime64[s]").astype("datetime64[ms]")
    # UTF-8 bytes ('S' array, the writers' fastest path); empty = missing, as in the CSV.
    return _utf8(values)


def _utf8(values: pd.Series) -> np.ndarray:
    text = values.to_numpy(object).astype(str)
    try:
        return text.astype("S")  # ASCII (most replies: digits): a C loop
    except UnicodeEncodeError:
        return np.strings.encode(text, "utf-8")  # a call per value, for chunks with others
