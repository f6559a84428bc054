"""Query results as DataFrames (outcomes.results.sql_frames): the COPY path (PostgreSQL) and the
cursor path give the same frame, each column as its declared kind, NULLs and awkward text
included."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from outcomes.instruments.models import OutcomeEntry
from outcomes.results import sql_frames
from outcomes.results.sql_frames import BOOL, DATE, FLOAT, INT, TEXT
from participants.models import Visit
from tests.outcomes.results.test_analysis_data import randomized, record_w10

pytestmark = pytest.mark.django_db

# Text that CSV must quote or that a CSV reader could take for something else.
AWKWARD = [
    'a, b "quoted"\nnext line',
    "",
    "NA",
    "null",
    "  spaced  ",
    "N/A",
    "é ✓",
    "0",
    "t",
    "\\N",
    "NULL",
]

VISIT_KINDS = {
    "pk": INT, "code": TEXT, "reason": TEXT, "attended": DATE, "in_window": BOOL,
    "window_end": DATE,
}  # fmt: skip
ENTRY_KINDS = {"pk": INT, "score": FLOAT, "vas": FLOAT, "improved": BOOL, "not_done": TEXT}


@pytest.fixture
def visits(modic, site1, site2, clinician, manager):
    """Visits with every kind of value: NULL and not, dates, booleans, awkward text."""
    people = [randomized(modic, site1, clinician, pain=p) for p in (4, 5, 7)]
    people.append(randomized(modic, site2, manager, pain=8))
    record_w10(people[0], manager, pain=2, answer=1)
    record_w10(people[1], manager, pain=6, answer=6)
    record_w10(people[2], manager, pain=0, pain_not_done="refused")
    rows = list(Visit.objects.filter(trial=modic).order_by("pk"))
    for visit, text in zip(rows, AWKWARD, strict=False):
        Visit.objects.filter(pk=visit.pk).update(missed_reason=text)
    return Visit.objects.filter(trial=modic).order_by("pk")


def visit_rows(queryset):
    return queryset.values_list(
        "pk", "definition__code", "missed_reason", "attended_on", "in_window", "window_end"
    )


def entry_rows(trial):
    return (
        OutcomeEntry.objects.filter(trial=trial)
        .order_by("pk")
        .values_list("pk", "score", "eq5d_vas", "improved", "not_done")
    )


def expected_frame(rows, kinds) -> pd.DataFrame:
    """What the ORM's own values_list gives (converters applied), as the kinds say."""
    columns = {}
    for i, (name, kind) in enumerate(kinds.items()):
        values = [row[i] for row in rows]
        if kind == INT:
            columns[name] = pd.Series(values, dtype="int64")
        elif kind == FLOAT:
            columns[name] = pd.Series(
                [float("nan") if v is None else v for v in values], dtype=float
            )
        else:
            columns[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def test_a_frame_holds_the_orm_values_as_their_kinds(visits, modic):
    # Both backends: the cursor path on SQLite (raw text dates, 0/1 booleans), COPY on
    # PostgreSQL.
    frame = sql_frames.read_frame(visit_rows(visits), VISIT_KINDS)
    expected = expected_frame(list(visit_rows(visits)), VISIT_KINDS)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["reason"].tolist()[: len(AWKWARD)] == AWKWARD
    assert frame["in_window"].map(type).isin([bool, type(None)]).all()
    assert frame["attended"].map(type).isin([dt.date, type(None)]).all()
    assert None in frame["in_window"].tolist() and None in frame["attended"].tolist()

    entries = sql_frames.read_frame(entry_rows(modic), ENTRY_KINDS)
    pd.testing.assert_frame_equal(entries, expected_frame(list(entry_rows(modic)), ENTRY_KINDS))
    assert {True, False, None} <= set(entries["improved"].tolist())
    assert entries["score"].isna().any() and entries["vas"].notna().any()
    assert "refused" in entries["not_done"].tolist() and "" in entries["not_done"].tolist()


@pytest.mark.postgres
def test_copy_and_cursor_give_the_same_frames(visits, modic):
    for rows, kinds in ((visit_rows(visits), VISIT_KINDS), (entry_rows(modic), ENTRY_KINDS)):
        copied = sql_frames.read_frame(rows, kinds, copy=True)
        fetched = sql_frames.read_frame(rows, kinds, copy=False)
        pd.testing.assert_frame_equal(copied, fetched)
        assert len(copied) == rows.count()


def test_chunks_are_the_frame_in_pieces(visits):
    whole = sql_frames.read_frame(visit_rows(visits), VISIT_KINDS)
    chunks = list(sql_frames.Rows(visit_rows(visits), VISIT_KINDS).chunks(size=4))
    assert len(chunks) == -(-len(whole) // 4) > 1
    assert all(list(chunk.index) == list(range(len(chunk))) for chunk in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_no_rows_gives_an_empty_frame_with_the_columns(modic):
    frame = sql_frames.read_frame(visit_rows(Visit.objects.filter(trial=modic)), VISIT_KINDS)
    assert frame.empty and list(frame.columns) == list(VISIT_KINDS)
    assert list(sql_frames.Rows(visit_rows(Visit.objects.none()), VISIT_KINDS).chunks()) == []
