"""The streaming Stata/SPSS writers, read back by independent readers: pyreadstat (ReadStat)
for both formats and pandas' own Stata reader, compared value by value and label by label.
Also: memory that does not grow with the rows, refused values and columns, and purity.

The chunk path (`write_columns`) is checked against the row path byte for byte: the files
must be identical, so everything verified for rows holds for chunks."""

from __future__ import annotations

import ast
import datetime as dt
import math
import struct
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.results import statfiles
from outcomes.results.statfiles import (
    Column,
    DtaWriter,
    SavWriter,
    WriteResult,
    write_dta,
    write_sav,
)

# The writers take naive local date-times, as the export passes them.
naive = dt.datetime.fromisoformat
WRITERS = {"dta": write_dta, "sav": write_sav}
READERS = {"dta": pyreadstat.read_dta, "sav": pyreadstat.read_sav}


def _plain(value):
    """A cell as the writer was given it: None for missing, Python dates and datetimes."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def round_trip(tmp_path: Path, fmt: str, columns, rows):
    """Write with our writer, read back with pyreadstat: (result, rows as lists, metadata)."""
    path = tmp_path / f"table.{fmt}"
    result = WRITERS[fmt](path, columns, rows)
    frame, meta = READERS[fmt](str(path))
    assert list(frame.columns) == [c.name for c in columns]
    got = [[_plain(v) for v in row] for row in frame.astype(object).itertuples(index=False)]
    return result, got, meta


def pandas_rows(path: Path):
    frame = pd.read_stata(path, convert_categoricals=False)
    return [[_plain(v) for v in row] for row in frame.astype(object).itertuples(index=False)]


# --- Numbers --------------------------------------------------------------------------------

NUMBERS = [
    0, 1, -1, -99, -100, 151, 152,  # the ends of SPSS's one-byte codes (-99..151)
    0.5, -2.25, 1e-300, -1e300, 1e300, 2**53, -(2**53), 123456.789,
    None, float("nan"), Decimal("2.5"), True,
]  # fmt: skip
NUMBERS_READ = [
    0.0, 1.0, -1.0, -99.0, -100.0, 151.0, 152.0,
    0.5, -2.25, 1e-300, -1e300, 1e300, float(2**53), -float(2**53), 123456.789,
    None, None, 2.5, 1.0,
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_numbers_negatives_floats_and_missing_round_trip(tmp_path, fmt):
    columns = [Column("x", "A number", "number")]
    result, got, meta = round_trip(tmp_path, fmt, columns, [[v] for v in NUMBERS])
    assert [row[0] for row in got] == NUMBERS_READ
    assert result == WriteResult(rows=len(NUMBERS), truncated={"x": 0})
    assert meta.number_rows == len(NUMBERS)


def test_numbers_read_the_same_through_pandas(tmp_path):
    write_dta(tmp_path / "t.dta", [Column("x", "A number", "number")], [[v] for v in NUMBERS])
    assert [row[0] for row in pandas_rows(tmp_path / "t.dta")] == NUMBERS_READ


LABELLED = [
    Column("arm", "Allocated arm", "number", value_labels={1: "Control", 2: "Træning"}),
    Column("improved", "Improved (global assessment)", "number", value_labels={0: "No", 1: "Yes"}),
    Column("score", "Roland-Morris score", "number"),
]


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_integer_codes_keep_their_value_labels_and_variable_labels(tmp_path, fmt):
    rows = [[1, 0, 12], [2, 1, None], [None, None, 3.5]]
    _, got, meta = round_trip(tmp_path, fmt, LABELLED, rows)
    assert got == [[1.0, 0.0, 12.0], [2.0, 1.0, None], [None, None, 3.5]]
    assert meta.variable_value_labels == {
        "arm": {1: "Control", 2: "Træning"},
        "improved": {0: "No", 1: "Yes"},
    }
    assert meta.column_names_to_labels == {
        "arm": "Allocated arm",
        "improved": "Improved (global assessment)",
        "score": "Roland-Morris score",
    }


def test_stata_value_labels_read_through_pandas(tmp_path):
    write_dta(tmp_path / "t.dta", LABELLED, [[2, 1, 0]])
    with pd.io.stata.StataReader(tmp_path / "t.dta") as reader:
        frame = reader.read()
        assert reader.value_labels() == {
            "arm": {1: "Control", 2: "Træning"},
            "improved": {0: "No", 1: "Yes"},
        }
        assert reader.variable_labels()["improved"] == "Improved (global assessment)"
    assert frame["arm"].tolist() == ["Træning"]


def test_long_labels_are_cut_to_what_each_format_holds(tmp_path):
    label = "Ø" + "x" * 299
    columns = [Column("x", label, "number", value_labels={1: "æ" * 100})]
    _, _, dta = round_trip(tmp_path, "dta", columns, [[1]])
    _, _, sav = round_trip(tmp_path, "sav", columns, [[1]])
    assert dta.column_names_to_labels["x"] == label[:80]  # Stata: 80 characters
    assert sav.column_names_to_labels["x"] == label[:254]  # SPSS: 255 bytes, Ø is two
    assert dta.variable_value_labels["x"][1] == "æ" * 100
    assert sav.variable_value_labels["x"][1] == "æ" * 60  # SPSS: 120 bytes


# --- Dates and times ------------------------------------------------------------------------

DATES = [dt.date(2024, 3, 31), dt.date(1960, 1, 1), dt.date(1959, 12, 31), dt.date(1901, 6, 5)]
TIMES = [
    naive("2024-03-31T02:30:15"),
    naive("1960-01-01T00:00:00"),
    naive("1959-12-31T23:59:59"),
    naive("1899-07-01T12:00:00.250000"),
]


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_dates_and_datetimes_before_and_after_1960_and_missing(tmp_path, fmt):
    columns = [Column("day", "Visit date", "date"), Column("at", "Sent at", "datetime")]
    rows = [[d, t] for d, t in zip(DATES, TIMES, strict=True)] + [[None, None]]
    _, got, meta = round_trip(tmp_path, fmt, columns, rows)
    assert got == rows
    assert meta.number_rows == 5
    expected = {"dta": ["%td", "%tc"], "sav": ["DATE11", "DATETIME20"]}[fmt]
    assert list(meta.original_variable_types.values()) == expected


def test_stata_dates_read_through_pandas(tmp_path):
    columns = [Column("day", "Visit date", "date"), Column("at", "Sent at", "datetime")]
    rows = [[d, t] for d, t in zip(DATES, TIMES, strict=True)] + [[None, None]]
    write_dta(tmp_path / "t.dta", columns, rows)
    got = pandas_rows(tmp_path / "t.dta")
    assert got[:4] == [[dt.datetime.combine(d, dt.time()), t] for d, t in rows[:4]]
    assert got[4] == [None, None]


def test_datetimes_keep_milliseconds_and_drop_the_rest(tmp_path):
    columns = [Column("at", "Sent at", "datetime")]
    value = naive("2025-11-02T18:00:05.123987")
    _, dta, _ = round_trip(tmp_path, "dta", columns, [[value]])
    _, sav, _ = round_trip(tmp_path, "sav", columns, [[value]])
    assert dta == [[value.replace(microsecond=123_000)]]
    # SPSS holds seconds since 1582 in a double (~2 µs apart today); readers may truncate.
    assert abs(sav[0][0] - value.replace(microsecond=123_000)) <= dt.timedelta(microseconds=5)


# --- Strings --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_unicode_strings_are_cut_at_a_character_boundary_and_counted(tmp_path, fmt):
    columns = [Column("reply", "Reply", "string", width=7), Column("n", "n", "number")]
    rows = [
        ["æøå", 1],  # 6 bytes: fits
        ["æøåÆ", 2],  # 8 bytes: the last 2-byte character goes
        ["ok 😀😀", 3],  # 3 + 4 + 4 bytes: the second emoji goes
        ["abc😀", 4],  # 3 + 4 bytes: fits exactly
        ["abcd😀", 5],  # 4 + 4 bytes: the emoji cannot be split, so it goes whole
        ["", 6],
        [None, 7],
    ]
    result, got, _ = round_trip(tmp_path, fmt, columns, rows)
    assert [row[0] for row in got] == ["æøå", "æøå", "ok 😀", "abc😀", "abcd", "", ""]
    assert result.truncated == {"reply": 3, "n": 0}
    assert result.rows == 7


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_strings_of_2045_bytes_across_spss_segments(tmp_path, fmt):
    # 2045 bytes: 1022 two-byte characters then one byte, so SPSS's 255-byte segments
    # split characters in two; the reader must join the bytes before decoding.
    longest = "æ" * 1022 + "!"
    other = "".join(chr(0x41 + i % 26) for i in range(2000)) + "😀"
    too_long = "A" * 2043 + "😀"  # 2047 bytes: the emoji cannot be split, so it goes
    columns = [
        Column("a", "First", "number"),
        Column("text", "Free text", "string", width=2045),
        Column("b", "Last", "number"),
    ]
    rows = [[1, longest, 2], [3, other, 4], [5, None, 6], [7, "short", 8], [9, too_long, 10]]
    result, got, meta = round_trip(tmp_path, fmt, columns, rows)
    assert got == [
        [1.0, longest, 2.0],
        [3.0, other, 4.0],
        [5.0, "", 6.0],
        [7.0, "short", 8.0],
        [9.0, "A" * 2043, 10.0],
    ]
    assert result.truncated["text"] == 1
    assert meta.column_names_to_labels["text"] == "Free text"


@pytest.mark.parametrize("width", [255, 256, 504, 505, 1000])
def test_spss_strings_around_the_segment_widths(tmp_path, width):
    text = "".join(chr(0x61 + i % 26) for i in range(width))
    columns = [Column("s", "s", "string", width=width), Column("t", "t", "string", width=9)]
    _, got, meta = round_trip(tmp_path, "sav", columns, [[text, "after"], ["x", None]])
    assert got == [[text, "after"], ["x", ""]]
    assert meta.original_variable_types == {"s": f"A{width}", "t": "A9"}


def test_spss_drops_trailing_spaces_stata_keeps_them(tmp_path):
    columns = [Column("s", "s", "string", width=10)]
    _, dta, _ = round_trip(tmp_path, "dta", columns, [[" a b  "]])
    _, sav, _ = round_trip(tmp_path, "sav", columns, [[" a b  "]])
    assert dta == [[" a b  "]]
    assert sav == [[" a b"]]


# --- Shapes ---------------------------------------------------------------------------------

MIXED = [
    Column("participant_id", "Participant id", "number"),
    Column("visit_date", "Visit date", "date"),
    Column("answered_at", "Answered at", "datetime"),
    Column("raw_reply", "Reply as typed", "string", width=160),
    Column("kind", "How read", "number", value_labels={1: "valid", 2: "invalid"}),
]


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_zero_rows_give_a_readable_empty_table(tmp_path, fmt):
    result, got, meta = round_trip(tmp_path, fmt, MIXED, [])
    assert got == []
    assert meta.number_rows == 0
    assert result == WriteResult(rows=0, truncated=dict.fromkeys([c.name for c in MIXED], 0))
    assert meta.variable_value_labels == {"kind": {1: "valid", 2: "invalid"}}


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_one_row(tmp_path, fmt):
    row = [7, dt.date(2025, 1, 2), naive("2025-01-02T03:04:05"), "3 dage", 1]
    result, got, meta = round_trip(tmp_path, fmt, MIXED, [row])
    assert got == [[7.0, *row[1:4], 1.0]]
    assert meta.number_rows == 1
    assert result.rows == 1


def test_stata_n_and_spss_case_count_are_patched_in_the_headers(tmp_path):
    rows = [[i, None, None, None, None] for i in range(1234)]
    write_dta(tmp_path / "t.dta", MIXED, rows)
    write_sav(tmp_path / "t.sav", MIXED, rows)
    dta = (tmp_path / "t.dta").read_bytes()
    at = dta.index(b"<N>") + 3
    assert struct.unpack("<Q", dta[at : at + 8]) == (1234,)
    assert struct.unpack("<i", (tmp_path / "t.sav").read_bytes()[80:84]) == (1234,)


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_32_character_names_and_names_sharing_their_first_8(tmp_path, fmt):
    long_name = "days_with_bothersome_pain_week_1"
    assert len(long_name) == 32
    columns = [
        Column(long_name, "Pain days", "number"),
        Column("days_with_sick_leave", "Sick-leave days", "number"),
        Column("days_wit", "Eight characters", "number"),
        Column("days_wit1", "Nine characters", "string", width=300),
    ]
    _, got, meta = round_trip(tmp_path, fmt, columns, [[1, 2, 3, "x" * 300]])
    assert got == [[1.0, 2.0, 3.0, "x" * 300]]
    assert meta.column_names_to_labels[long_name] == "Pain days"


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_dataset_label_and_creation_time_are_in_the_header(tmp_path, fmt):
    columns = [Column("x", "x", "number")]
    created = naive("2026-11-24T08:30:00")
    WRITERS[fmt](tmp_path / "a", columns, [[1]], label="Modic trial – SMS", created=created)
    _, meta = READERS[fmt](str(tmp_path / "a"))
    assert meta.file_label == "Modic trial – SMS"
    assert meta.creation_time == created
    # Without `created` nothing is invented: Stata omits the stamp, SPSS leaves it blank.
    WRITERS[fmt](tmp_path / "b", columns, [[1]])
    data = (tmp_path / "b").read_bytes()
    if fmt == "dta":
        assert b"<timestamp>\x00</timestamp>" in data
    else:
        assert data[84 + 8 : 84 + 8 + 17] == b" " * 17


def test_spss_data_is_bytecode_compressed(tmp_path):
    columns = [Column(f"q{i}", f"Question {i}", "number") for i in range(10)]
    columns.append(Column("reply", "Reply", "string", width=160))
    rows = [[i % 8] * 10 + [None] for i in range(10_000)]
    write_sav(tmp_path / "t.sav", columns, rows)
    data = (tmp_path / "t.sav").read_bytes()
    assert struct.unpack("<i", data[72:76]) == (1,)  # compression code
    # Uncompressed, a case takes 8 bytes per number and 160 for the reply (320 KB a
    # thousand); compressed, one code per 8-byte unit.
    assert len(data) < 10_000 * 30 + 4_000
    frame, _ = pyreadstat.read_sav(str(tmp_path / "t.sav"))
    assert frame["q3"].tolist() == [float(i % 8) for i in range(10_000)]


# --- Streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [DtaWriter, SavWriter])
def test_memory_does_not_grow_with_the_number_of_rows(tmp_path, writer):
    columns = [
        Column("participant_id", "Participant", "number"),
        Column("week", "Week", "number"),
        Column("sent_on", "Sent", "date"),
        Column("reply", "Reply", "string", width=20),
    ]
    n = 300_000
    first = dt.date(2024, 1, 7)

    def rows():
        for i in range(n):
            yield (i, i % 62, first, None if i % 3 else f"{i % 8} days")

    tracemalloc.start()
    try:
        with writer(tmp_path / "big", columns) as out:
            out.write_rows(rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.result.rows == n
    # The 1 MiB file buffer plus one block of SPSS codes; 300,000 rows kept in memory would
    # take tens of MB.
    assert peak < 3 * 2**20, peak
    frame, meta = READERS["dta" if writer is DtaWriter else "sav"](str(tmp_path / "big"))
    assert meta.number_rows == n
    assert frame["week"].iloc[-1] == (n - 1) % 62


def test_the_writer_is_a_context_manager_returning_its_result(tmp_path):
    columns = [Column("x", "x", "number"), Column("s", "s", "string", width=2)]
    with (
        DtaWriter(tmp_path / "t.dta", columns) as dta,
        SavWriter(tmp_path / "t.sav", columns) as sav,
    ):
        for row in [(1, "abc"), (2, "ab")]:
            dta.write(row)
            sav.write(row)
    assert dta.result == sav.result == WriteResult(rows=2, truncated={"x": 0, "s": 1})
    assert dta.close() == dta.result  # closing again is harmless
    with pytest.raises(ValueError, match="closed"):
        dta.write((3, "c"))


# --- Refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [DtaWriter, SavWriter])
@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (Column("x", "x", "number"), float("inf"), "beyond the largest"),
        (Column("x", "x", "number"), 1e308, "beyond the largest"),
        (Column("x", "x", "number"), "3", "expected a number"),
        (Column("d", "d", "date"), naive("2024-01-01T12:00:00"), "expected a date"),
        (Column("t", "t", "datetime"), dt.date(2024, 1, 1), "expected a datetime"),
        (Column("t", "t", "datetime"), dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "naive"),
        (Column("s", "s", "string", width=5), 12, "expected a str"),
        (Column("s", "s", "string", width=5), "\ud800", "surrogate"),
    ],
)
def test_a_refused_value_names_row_and_column_and_the_row_is_not_written(
    tmp_path, writer, column, value, message
):
    columns = [Column("first", "first", "string", width=1), column]
    with writer(tmp_path / "t", columns) as out:
        out.write(("ab", None))
        with pytest.raises((ValueError, TypeError), match=message) as caught:
            out.write(("ab", value))
        assert f"row 2, column {column.name!r}" in str(caught.value)
        out.write(("ab", None))
    # The refused row wrote nothing and its cut string was not counted.
    assert out.result == WriteResult(rows=2, truncated={"first": 2, column.name: 0})
    frame, _ = READERS["dta" if writer is DtaWriter else "sav"](str(tmp_path / "t"))
    assert len(frame) == 2


@pytest.mark.parametrize("writer", [DtaWriter, SavWriter])
def test_a_failure_inside_the_with_block_leaves_no_half_written_file(tmp_path, writer):
    path = tmp_path / "t"
    with pytest.raises(RuntimeError), writer(path, [Column("x", "x", "number")]) as out:
        out.write([1])
        raise RuntimeError("database went away")
    assert not path.exists()


def test_a_file_closed_before_a_later_failure_is_kept(tmp_path):
    path = tmp_path / "t.dta"
    with pytest.raises(RuntimeError), DtaWriter(path, [Column("x", "x", "number")]) as out:
        out.write([1])
        out.close()
        raise RuntimeError("something after the file was finished")
    assert pyreadstat.read_dta(str(path))[1].number_rows == 1


def test_a_row_of_the_wrong_length_is_refused(tmp_path):
    with DtaWriter(tmp_path / "t.dta", [Column("x", "x", "number")]) as out:
        with pytest.raises(ValueError, match="row 1: 2 values for 1 columns"):
            out.write([1, 2])
        out.write([1])
    assert out.result.rows == 1


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([], "at least one column"),
        ([Column("1x", "", "number")], "names are"),
        ([Column("a" * 33, "", "number")], "names are"),
        ([Column("æble", "", "number")], "names are"),
        ([Column("int", "", "number")], "reserved word in Stata"),
        ([Column("str12", "", "number")], "reserved word in Stata"),
        ([Column("with", "", "number")], "reserved word in Stata"),
        ([Column("And", "", "number")], "reserved word in SPSS"),
        ([Column("Week", "", "number"), Column("week", "", "number")], "two columns"),
        ([Column("x", "", "text")], "kind must be"),
        ([Column("x", "", "string")], "width must be 1..2045"),
        ([Column("x", "", "string", width=2046)], "width must be 1..2045"),
        ([Column("x", "", "number", width=3)], "only string columns"),
        ([Column("x", "", "date", value_labels={1: "a"})], "need a number column"),
        ([Column("x", "", "number", value_labels={1.5: "a"})], "not a 32-bit int"),
        ([Column("x", "", "number", value_labels={2**31: "a"})], "not a 32-bit int"),
    ],
)
@pytest.mark.parametrize("writer", [DtaWriter, SavWriter])
def test_columns_either_format_cannot_hold_are_refused_before_writing(
    tmp_path, writer, columns, message
):
    with pytest.raises(ValueError, match=message):
        writer(tmp_path / "t", columns)
    assert not (tmp_path / "t").exists()


# --- Property: random small tables round-trip exactly ---------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=12)
NUMBER = st.one_of(
    st.none(),
    st.integers(-(2**53), 2**53),
    st.floats(min_value=-1e300, max_value=1e300, allow_nan=False),
)
DATE = st.one_of(st.none(), st.dates(dt.date(1800, 1, 1), dt.date(2200, 12, 31)))
DATETIME = st.one_of(
    st.none(),
    st.datetimes(naive("1800-01-01T00:00:00"), naive("2200-12-31T00:00:00")).map(
        lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
    ),
)
VALUES = {
    "number": NUMBER,
    "date": DATE,
    "datetime": DATETIME,
    "string": st.one_of(st.none(), TEXT),
}


@st.composite
def tables(draw):
    kinds = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=5))
    columns = []
    for i, kind in enumerate(kinds):
        width = draw(st.integers(1, 300)) if kind == "string" else 0
        labels = None
        if kind == "number" and draw(st.booleans()):
            labels = draw(st.dictionaries(st.integers(-1000, 1000), TEXT.filter(bool), max_size=3))
        columns.append(Column(f"v{i}", draw(TEXT), kind, width, labels or None))
    rows = draw(st.lists(st.tuples(*(VALUES[c.kind] for c in columns)), max_size=8))
    return columns, rows


def expected(column: Column, value, fmt: str):
    """What a reader should give back for `value` written to `column`."""
    if column.kind == "number":
        return None if value is None else float(value)
    if column.kind != "string":
        return value
    data = (value or "").encode()[: column.width].decode("utf-8", "ignore")
    return data.rstrip(" ") if fmt == "sav" else data


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables())
def test_random_small_tables_round_trip_exactly(tmp_path, table):
    columns, rows = table
    for fmt in ("dta", "sav"):
        result, got, meta = round_trip(tmp_path, fmt, columns, rows)
        want = [[expected(c, v, fmt) for c, v in zip(columns, row, strict=True)] for row in rows]
        for got_row, want_row in zip(got, want, strict=True):
            for column, g, w in zip(columns, got_row, want_row, strict=True):
                if fmt == "sav" and column.kind == "datetime" and w is not None:
                    # A double of seconds since 1582 is exact to ~30 µs up to 2200.
                    assert abs(g - w) <= dt.timedelta(microseconds=60)
                else:
                    assert g == w, (fmt, column)
        assert meta.number_rows == len(rows)
        assert result.rows == len(rows)
        assert result.truncated == {
            c.name: sum(
                c.kind == "string" and len((row[i] or "").encode()) > c.width for row in rows
            )
            for i, c in enumerate(columns)
        }
        labels = {c.name: c.value_labels for c in columns if c.value_labels}
        if fmt == "sav":  # SPSS keeps 120 bytes of a value label
            labels = {
                name: {k: v.encode()[:120].decode("utf-8", "ignore") for k, v in vl.items()}
                for name, vl in labels.items()
            }
        assert meta.variable_value_labels == labels
        if fmt == "dta":
            assert pandas_rows(tmp_path / "table.dta") == [
                [
                    dt.datetime.combine(v, dt.time()) if c.kind == "date" and v else v
                    for c, v in zip(columns, row, strict=True)
                ]
                for row in want
            ]


# --- Chunks: write_columns gives the same bytes as write --------------------------------------

WRITER_CLASSES = {"dta": DtaWriter, "sav": SavWriter}
NAT = np.datetime64("NaT")


def to_arrays(columns, rows, strings: str = "object") -> list[np.ndarray]:
    """The rows as one array per column, as `write_columns` takes them; strings as an object
    array of str/None or, with strings="bytes", an 'S' array of UTF-8 bytes."""
    arrays = []
    for i, column in enumerate(columns):
        values = [row[i] for row in rows]
        if column.kind == "number":
            arrays.append(np.array([np.nan if v is None else float(v) for v in values]))
        elif column.kind == "date":
            arrays.append(np.array([v or NAT for v in values], dtype="datetime64[D]"))
        elif column.kind == "datetime":
            arrays.append(np.array([v or NAT for v in values], dtype="datetime64[ms]"))
        elif strings == "bytes":
            encoded = [(v or "").encode() for v in values]
            arrays.append(np.array(encoded, dtype=f"S{max(1, *map(len, encoded), 1)}"))
        else:
            arrays.append(np.array(values, dtype=object))
    return arrays


def write_in_parts(path, fmt, columns, rows, parts):
    """Write `rows` split at the lengths in `parts`, each part as ("row" | "object" | "bytes",
    length): rows one by one, or a chunk of that string form. Returns the result."""
    with WRITER_CLASSES[fmt](path, columns) as out:
        at = 0
        for how, length in parts:
            piece = rows[at : at + length]
            at += length
            if how == "row":
                out.write_rows(piece)
            else:
                out.write_columns(to_arrays(columns, piece, how))
        assert at == len(rows), "the parts must cover the rows"
    return out.result


def assert_same_file(tmp_path, fmt, columns, rows, parts):
    by_row = WRITERS[fmt](tmp_path / f"rows.{fmt}", columns, rows)
    by_chunk = write_in_parts(tmp_path / f"chunks.{fmt}", fmt, columns, rows, parts)
    assert by_chunk == by_row
    row_bytes = (tmp_path / f"rows.{fmt}").read_bytes()
    chunk_bytes = (tmp_path / f"chunks.{fmt}").read_bytes()
    if chunk_bytes != row_bytes:  # say where, not just that
        at = next(
            (i for i, (a, b) in enumerate(zip(row_bytes, chunk_bytes, strict=False)) if a != b),
            min(len(row_bytes), len(chunk_bytes)),
        )
        pytest.fail(f"{fmt}: files differ at byte {at} of {len(row_bytes)}/{len(chunk_bytes)}")
    return by_chunk


EDGE_COLUMNS = [
    Column("participant_id", "Participant id", "number"),
    Column("visit_date", "Visit date", "date"),
    Column("answered_at", "Answered at", "datetime"),
    Column("reply", "Reply", "string", width=7),
    Column("note", "Note", "string", width=600),  # three SPSS segments
    Column("kind", "How read", "number", value_labels={1: "valid", 2: "invalid"}),
]
EDGE_ROWS = [
    [1, dt.date(2024, 3, 31), naive("2024-03-31T02:30:15.123"), "æøåÆ", "x" * 300 + "æ" * 150, 1],
    [None, None, None, None, None, None],
    [float("nan"), dt.date(1959, 12, 31), naive("1959-12-31T23:59:59.999"), "", "", -99],
    [-0.5, dt.date(1901, 6, 5), naive("1899-07-01T12:00:00.250"), "ok 😀😀", " a b  ", 151],
    [152, dt.date(1960, 1, 1), naive("1960-01-01T00:00:00"), "abcd😀", "        ", -100],
    [1e300, dt.date(1582, 10, 14), naive("1582-10-14T00:00:00"), "abc😀", "é" * 301, 2**53],
    [-0.0, dt.date(2200, 12, 31), naive("2200-12-31T23:59:59.001"), " ", "😀" * 160, 0.25],
]


@pytest.mark.parametrize("fmt", ["dta", "sav"])
@pytest.mark.parametrize(
    "parts",
    [
        [("object", 7)],
        [("bytes", 7)],
        [("bytes", 0), ("object", 1), ("bytes", 0), ("bytes", 6)],
        [("bytes", 1)] * 7,  # one row per chunk: blocks of 8 codes span many calls
        [("row", 3), ("bytes", 2), ("row", 1), ("object", 1)],
        [("object", 2), ("row", 5), ("bytes", 0)],
    ],
    ids=["object", "bytes", "empty-and-one", "ones", "mixed", "chunk-then-rows"],
)
def test_chunks_give_the_bytes_of_the_row_path_for_edge_values(tmp_path, fmt, parts):
    result = assert_same_file(tmp_path, fmt, EDGE_COLUMNS, EDGE_ROWS, parts)
    # "æøåÆ", "ok 😀😀" and "abcd😀" are cut to 7 bytes; "é" * 301 and the emoji to 600.
    assert result.truncated == {**dict.fromkeys(result.truncated, 0), "reply": 3, "note": 2}


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_many_chunks_of_missing_values_match_the_row_path(tmp_path, fmt):
    rows = [[None] * len(EDGE_COLUMNS) for _ in range(1000)]
    rows[::7] = [EDGE_ROWS[i % 7] for i in range(0, 1000, 7)]
    parts = [("bytes" if i % 2 else "object", 9) for i in range(111)] + [("bytes", 1)]
    assert_same_file(tmp_path, fmt, EDGE_COLUMNS, rows, parts)


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_a_chunk_reads_back_through_pyreadstat(tmp_path, fmt):
    path = tmp_path / f"t.{fmt}"
    rows = EDGE_ROWS[:5]
    with WRITER_CLASSES[fmt](path, EDGE_COLUMNS) as out:
        out.write_columns(to_arrays(EDGE_COLUMNS, rows, "bytes"))
    frame, meta = READERS[fmt](str(path))
    got = [[_plain(v) for v in row] for row in frame.astype(object).itertuples(index=False)]
    assert meta.number_rows == 5
    want = [[expected(c, v, fmt) for c, v in zip(EDGE_COLUMNS, row, strict=True)] for row in rows]
    for got_row, want_row in zip(got, want, strict=True):
        assert got_row[0] == want_row[0] or (got_row[0] is None and math.isnan(want_row[0]))
        if fmt == "sav" and want_row[2] is not None:
            # Seconds since 1582 in a double: readers may show 15.122999 for 15.123.
            assert abs(got_row[2] - want_row[2]) <= dt.timedelta(microseconds=5)
            got_row[2] = want_row[2]
        assert got_row[1:] == want_row[1:]
    assert meta.variable_value_labels == {"kind": {1: "valid", 2: "invalid"}}


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_bytes_longer_than_the_width_are_cut_at_a_character_and_counted(tmp_path, fmt):
    columns = [Column("reply", "Reply", "string", width=7)]
    values = ["æøåÆ", "ok 😀😀", "abc😀", "abcd😀", "", "1234567"]
    with WRITER_CLASSES[fmt](tmp_path / "t", columns) as out:
        out.write_columns([np.array([v.encode() for v in values])])  # dtype S11
    assert out.result == WriteResult(rows=6, truncated={"reply": 3})
    frame, _ = READERS[fmt](str(tmp_path / "t"))
    assert frame["reply"].tolist() == ["æøå", "ok 😀", "abc😀", "abcd", "", "1234567"]


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_finer_datetime_units_are_floored_to_the_millisecond_as_rows_are(tmp_path, fmt):
    columns = [Column("at", "At", "datetime")]
    times = [naive("2025-11-02T18:00:05.123987"), naive("1901-01-01T00:00:00.000999")]
    with WRITER_CLASSES[fmt](tmp_path / "chunk", columns) as out:
        out.write_columns([np.array(times, dtype="datetime64[us]")])
    WRITERS[fmt](tmp_path / "rows", columns, [[t] for t in times])
    assert (tmp_path / "chunk").read_bytes() == (tmp_path / "rows").read_bytes()


@pytest.mark.parametrize("writer", [DtaWriter, SavWriter])
@pytest.mark.parametrize(
    ("column", "array", "error", "message"),
    [
        (Column("x", "x", "number"), np.array([1.0, np.inf]), ValueError, "row 3, .*beyond"),
        (Column("x", "x", "number"), np.array(["1", "2"]), TypeError, "expected a float64"),
        (Column("d", "d", "date"), np.array([0, 1], "datetime64[ms]"), TypeError, "64\\[D\\]"),
        (Column("t", "t", "datetime"), np.array([0, 1], "datetime64[D]"), TypeError, "\\[ms\\]"),
        (Column("s", "s", "string", width=5), np.array(["a", 3], object), TypeError, "row 3"),
        (Column("s", "s", "string", width=5), np.array([1, 2]), TypeError, "str objects"),
        (
            Column("s", "s", "string", width=5),
            np.array(["\ud800", ""], object),
            ValueError,
            "row 2",
        ),
    ],
)
def test_a_refused_chunk_names_row_and_column_and_writes_nothing(
    tmp_path, writer, column, array, error, message
):
    columns = [Column("first", "first", "string", width=1), column]
    with writer(tmp_path / "t", columns) as out:
        out.write(("ab", None))
        with pytest.raises(error, match=message) as caught:
            out.write_columns([np.array(["abc", "abc"], object), array])
        assert f"column {column.name!r}" in str(caught.value)
        out.write(("ab", None))
    assert out.result == WriteResult(rows=2, truncated={"first": 2, column.name: 0})
    WRITERS["dta" if writer is DtaWriter else "sav"](tmp_path / "r", columns, [("a", None)] * 2)
    assert (tmp_path / "t").read_bytes() == (tmp_path / "r").read_bytes()


@pytest.mark.parametrize("fmt", ["dta", "sav"])
def test_strided_views_are_written_like_their_copies(tmp_path, fmt):
    columns = [Column("s", "s", "string", width=3), Column("x", "x", "number")]
    replies = np.array([b"ab", b"abcd", b"x", b"yy"] * 2)
    with WRITER_CLASSES[fmt](tmp_path / "t", columns) as out:
        out.write_columns([replies[::2], np.arange(8.0)[::2]])  # every other row, not copied
    WRITERS[fmt](tmp_path / "r", columns, [("ab", 0), ("x", 2), ("ab", 4), ("x", 6)])
    assert (tmp_path / "t").read_bytes() == (tmp_path / "r").read_bytes()


def test_chunks_of_unequal_length_or_the_wrong_count_are_refused(tmp_path):
    columns = [Column("x", "x", "number"), Column("y", "y", "number")]
    with DtaWriter(tmp_path / "t.dta", columns) as out:
        with pytest.raises(ValueError, match="equally long"):
            out.write_columns([np.zeros(2), np.zeros(3)])
        with pytest.raises(ValueError, match="1 arrays for 2 columns"):
            out.write_columns([np.zeros(2)])
    assert out.result.rows == 0


SMS_COLUMNS = [
    Column("participant_id", "Participant", "number"),
    Column("week", "Week", "number"),
    Column("send_date", "Sent on", "date"),
    Column("question", "Question", "number", value_labels={1: "pain", 2: "leave", 3: "work"}),
    Column("sent", "Sent", "number", value_labels={0: "No", 1: "Yes"}),
    Column("sent_at", "Sent at", "datetime"),
    Column("answered", "Answered", "number", value_labels={0: "No", 1: "Yes"}),
    Column("value", "Value", "number"),
    Column("answered_at", "Answered at", "datetime"),
    # The export's widest replies reach 640 bytes; 160 keeps the Stata file of the memory
    # test at 720 MB while a whole chunk laid out (48 MB) would still exceed the bound.
    Column("raw_reply", "Reply as typed", "string", width=160),
    Column("reply_kind", "How read", "number", value_labels={1: "valid", 2: "invalid"}),
]


def sms_chunk(start: int, n: int) -> list[np.ndarray]:
    """An SMS-shaped chunk: small integer codes, 40 % unanswered, 1-byte replies."""
    i = np.arange(start, start + n)
    answered = i % 5 < 3
    day = np.datetime64("2024-01-07") + (i % 62 * 7).astype("timedelta64[D]")
    sent_at = day.astype("datetime64[ms]") + np.timedelta64(18 * 3600_000, "ms")
    return [
        (i // 186).astype(float),
        (i % 62).astype(float),
        day,
        (i % 3 + 1).astype(float),
        np.ones(n),
        sent_at,
        answered.astype(float),
        np.where(answered, i % 8, np.nan),
        np.where(answered, sent_at + (i % 997).astype("timedelta64[s]"), NAT),
        np.where(answered, (i % 8).astype("S1"), b""),
        np.where(answered, 1.0, np.nan),
    ]


@pytest.mark.parametrize("writer", [DtaWriter, SavWriter])
def test_chunk_memory_stays_within_a_few_chunks_of_arrays(tmp_path, writer):
    n, size = 3_000_000, 200_000
    one_chunk = sum(a.nbytes for a in sms_chunk(0, size))
    tracemalloc.start()
    try:
        with writer(tmp_path / "big", SMS_COLUMNS) as out:
            for start in range(0, n, size):
                out.write_columns(sms_chunk(start, size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The chunk being written, its normalised copies and one output slice of a few MB; the
    # whole chunk laid out at once would be 48 MB (Stata) on top of the 16 MB chunk.
    assert peak < 3 * one_chunk, (peak, one_chunk)
    _, meta = READERS["dta" if writer is DtaWriter else "sav"](
        str(tmp_path / "big"), metadataonly=True
    )
    assert meta.number_rows == n
    assert out.result.rows == n


PART_KIND = st.sampled_from(["row", "object", "bytes"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables(), data=st.data())
def test_random_tables_in_random_chunks_give_the_bytes_of_the_row_path(tmp_path, table, data):
    columns, rows = table
    rows = rows * data.draw(st.integers(1, 3))  # longer runs of blocks across chunks
    parts, left = [], len(rows)
    while left or data.draw(st.booleans()):  # empty chunks too, even at the end
        length = data.draw(st.integers(0, left))
        parts.append((data.draw(PART_KIND), length))
        left -= length
    for fmt in ("dta", "sav"):
        assert_same_file(tmp_path, fmt, columns, rows, parts)


# --- Purity ---------------------------------------------------------------------------------


def test_the_package_uses_only_the_standard_library_and_numpy_for_chunks():
    package = Path(statfiles.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "arrays.py", "dta.py", "sav.py"}
    for module in modules:
        imported, own = set(), 0
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                own += 1  # from .common import ...: the package's own modules
        assert imported or own, f"the check found no imports in {module.name}"
        allowed = set(sys.stdlib_module_names) | {"__future__"}
        if module.name == "arrays.py":  # the chunk path; the row path needs no numpy
            allowed.add("numpy")
        assert imported <= allowed, (module.name, imported - allowed)
