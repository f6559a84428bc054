"""The column-wise writer of DataFrame tables (outcomes.results.export.frames) writes the same bytes
as the row-by-row TableMember: CSV, .dta and .sav, for every kind of column the
participants and visits tables hold (floats with NaN, integers, booleans, text with None,
dates, date-times, categories, long and non-ASCII text), in one chunk and across chunks."""

from __future__ import annotations

import datetime as dt
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.results.export import frames
from outcomes.results.export.codebook import Variable
from outcomes.results.export.members import TableMember

VARIABLES = [
    Variable("t", "pid", "Participant", "integer"),
    Variable("t", "score", "Score", "number"),
    Variable("t", "answer", "Global answer", "category", value_labels={str(i): f"L{i}" for i in range(1, 8)}),
    Variable("t", "arm", "Arm", "category", value_labels={"A": "Arm A", "B": "Arm B"}),
    Variable("t", "improved", "Improved", "boolean", value_labels={"0": "No", "1": "Yes"}),
    Variable("t", "allowed", "Follow-up allowed", "boolean", value_labels={"0": "No", "1": "Yes"}),
    Variable("t", "note", "Reason", "string"),
    Variable("t", "reply", "Reply", "string", stat_width=8),
    Variable("t", "on", "Date", "date"),
    Variable("t", "at", "Time", "datetime"),
    Variable("t", "count", "Count", "integer"),
]  # fmt: skip

# No NUL: the chunk path of the writers reads it as padding (the row path keeps it). Stored
# text has none: PostgreSQL refuses it, Django's form fields reject it, SMS replace it.
# No lone surrogates either: they are not UTF-8, and both paths refuse them.
texts = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["", "æøå", "ok 😀", "x" * 30]),
)
dates = st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)))
# Naive local date-times, to the millisecond (what the files keep).
LOCAL = (dt.datetime(1950, 1, 1), dt.datetime(2090, 1, 1))  # noqa: DTZ001
times = st.one_of(
    st.none(),
    st.datetimes(*LOCAL).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
)
floats = st.one_of(
    st.just(float("nan")),
    st.integers(-10, 10).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
rows = st.lists(
    st.tuples(
        st.integers(1, 10**9), floats, st.one_of(st.just(np.nan), st.integers(1, 8).map(float)),
        st.sampled_from(["A", "B", None, "C"]), st.sampled_from([True, False, None]),
        st.booleans(), texts, texts, dates, times, st.integers(-5, 5),
    ),
    max_size=40,
)  # fmt: skip


def frame_of(data) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(data, columns=[v.name for v in VARIABLES])
    if not len(frame):
        return frame
    # As analysis_data builds them: floats, ints and bools as numpy columns, the rest objects.
    for name in ("improved", "note", "reply", "on", "at", "arm"):
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def members(path, write) -> dict[str, bytes]:
    with zipfile.ZipFile(path, "w") as zf:
        write(zf)
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def by_rows(tmp_path, frame: pd.DataFrame) -> dict[str, bytes]:
    def write(zf):
        with TableMember(zf, "t", VARIABLES) as table:
            for row in frame.itertuples(index=False, name=None):
                table.write(row)

    return members(tmp_path / "rows.zip", write)


def by_columns(tmp_path, frame: pd.DataFrame) -> dict[str, bytes]:
    return members(
        tmp_path / "columns.zip", lambda zf: frames.frame_members(zf, "t", VARIABLES, frame)
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=rows)
def test_the_column_wise_files_are_the_row_wise_files_byte_for_byte(tmp_path, data):
    frame = frame_of(data)
    assert by_columns(tmp_path, frame) == by_rows(tmp_path, frame)


def test_across_chunks_and_with_values_cut_in_the_stat_files(tmp_path, monkeypatch):
    monkeypatch.setattr(frames, "CHUNK_ROWS", 7)
    data = [
        (i, i / 3, float(i % 7 + 1), "AB"[i % 2], [True, False, None][i % 3], bool(i % 2),
         None if i % 5 == 0 else f"reason {i}", "a long reply æøå" * (i % 3),
         dt.date(2020, 1, 1) + dt.timedelta(days=i), dt.datetime(2020, 1, 1, 8, i % 60), i)  # noqa: DTZ001
        for i in range(30)
    ]  # fmt: skip
    frame = frame_of(data)
    columns, rows = by_columns(tmp_path, frame), by_rows(tmp_path, frame)
    assert columns == rows
    assert columns["t.csv"].decode().count("\n") == 31


@pytest.mark.parametrize("values", [[1.0, 2.5, np.nan, -3.0, 1e16, 2.0**60], [0.1 + 0.2, -0.0]])
def test_float_text_is_what_the_row_path_prints(values):
    array = np.array(values)
    from outcomes.results.export.codebook import csv_cell

    for type_ in ("number", "string"):
        expected = [str(csv_cell(v, type_)) for v in values]
        assert list(frames.csv_texts(array, type_)) == expected
