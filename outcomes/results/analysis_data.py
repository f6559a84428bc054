"""Reads for the analysis: the trial's data as pandas DataFrames, the input of the pure
statistics (outcomes.results.itt) and of the exports.

Each frame is built from a fixed number of queries whatever the trial size, reading rows as
tuples (values_list, iterator) rather than model instances. Arms appear as their codes
(Arm.code); the caller maps them to what the user may see (trial.blinding.arm_labels).
Nothing here holds direct identifiers (names, phone numbers).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
from django.db.models import Case, IntegerField, Value, When

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.results import sql_frames
from outcomes.results.background import Beside
from outcomes.results.sql_frames import BOOL, DATE, FLOAT, INT, TEXT
from outcomes.sms.models import SmsParticipantTotal, SmsQuestionWeekTotal
from participants.models import Allocation, Participant, Visit
from trial.models import Trial, VisitDefinition

# Rows fetched per round trip when streaming large tables.
CHUNK = 5000


def participants_frame(trial: Trial) -> pd.DataFrame:
    """One row per randomized participant (the ITT population): id, number, site, arm,
    randomization date, status, follow-up allowed, one column per minimization factor
    (`factor_<code>`, the level used at allocation) and per baseline variable (`bl_<code>`).

    The columns are what from_records of one dict per participant would give (the factor
    and baseline columns in order of first appearance, missing = NaN), built without those
    100,000 dicts (the export's memory peak once). Rows come through outcomes.results.sql_frames
    (COPY on PostgreSQL) with the two JSON fields as text; each distinct text is parsed
    once (a few dozen factor combinations, a few hundred baselines) and spread to its rows
    by position: parsing every row's JSON took 0.4 s at 100,000."""
    rows = (
        Allocation.objects.filter(trial=trial)
        .order_by()  # sorted here: the server sorted the wide rows on disk (~0.1 s)
        .values_list(
            "sequence",
            "participant_id",
            "participant__number",
            "participant__site__code",
            "arm__code",
            "participant__randomized_on",
            "participant__status",
            "participant__followup_allowed",
            "factor_levels",
            "participant__baseline",
        )
    )
    kinds = {
        "sequence": INT, "participant_id": INT, "number": TEXT, "site": TEXT, "arm": TEXT,
        "randomized_on": DATE, "status": TEXT, "followup_allowed": BOOL, "factor_": TEXT,
        "bl_": TEXT,
    }  # fmt: skip
    raw = sql_frames.read_frame(rows, kinds)
    raw = raw.iloc[np.argsort(raw["sequence"].to_numpy(), kind="stable")]
    columns = list(kinds)[1:-2]
    if not len(raw):
        return pd.DataFrame(columns=columns)
    # Python lists, so pandas infers each column's dtype as it did from the dicts.
    values = {name: raw[name].tolist() for name in columns}
    first_seen: dict[str, tuple] = {}  # column -> (row, factor before baseline, key order)
    spread: dict[str, list] = {}
    for rank, prefix in enumerate(("factor_", "bl_")):
        codes, texts = pd.factorize(raw[prefix])  # NULL: code -1
        first_rows = np.unique(codes, return_index=True)
        first_row = dict(zip(*first_rows, strict=True))
        parsed = [json.loads(text) or {} for text in texts]
        for code, pairs in enumerate(parsed):
            for order, key in enumerate(pairs):
                seen = (first_row[code], rank, order)
                if prefix + key not in first_seen or seen < first_seen[prefix + key]:
                    first_seen[prefix + key] = seen
        for key in {key for pairs in parsed for key in pairs}:
            # Position -1 (NULL) reads the NaN at the end. Filled one by one: np.array would
            # make a list value (JSON allows one) a dimension.
            by_code = np.full(len(parsed) + 1, np.nan, dtype=object)
            for code, pairs in enumerate(parsed):
                by_code[code] = pairs.get(key, np.nan)
            spread[prefix + key] = by_code[codes].tolist()
    for name in sorted(first_seen, key=first_seen.__getitem__):
        values[name] = spread[name]
    frame = pd.DataFrame(values)
    return frame.set_index("participant_id", drop=False)


# The entries' two text-like columns travel as small integers, decoded by position in
# outcomes_frame: parsing them as text was half of the entries' parse at 100,000
# participants (docs/PERFORMANCE.md, seventh round). Every stored not_done is one of the
# choices (a database constraint), so the codes cover every row.
_IMPROVED = np.array([None, False, True], dtype=object)  # code + 1: NULL, False, True
_IMPROVED_CODE = Case(
    When(improved=True, then=Value(1)),
    When(improved=False, then=Value(0)),
    default=Value(-1),
    output_field=IntegerField(),
)
_NOT_DONE = np.array(["", *OutcomeEntry.NotDone.values], dtype=object)
_NOT_DONE_CODE = Case(
    *(When(not_done=reason, then=Value(code)) for code, reason in enumerate(_NOT_DONE)),
    output_field=IntegerField(),
)


def outcome_reads(trial: Trial) -> tuple[pd.DataFrame, sql_frames.Rows]:
    """What outcomes_frame reads: each of the trial's visits with its definition (ids),
    and the outcome entries at visits, fetched but not parsed (sql_frames.Rows). The entries
    first: visits are never deleted, so every entry's visit is in a map read after them
    (outcomes_frame looks up any that is not, e.g. on the cursor path, which reads the
    entries later)."""
    entries = (
        OutcomeEntry.objects.filter(trial=trial, visit__isnull=False)
        .order_by()  # no Meta ordering: sorting a million rows (on disk) took a second
        .annotate(improved_code=_IMPROVED_CODE, not_done_code=_NOT_DONE_CODE)
        .values_list(
            "participant_id",
            "visit_id",
            "instrument_id",
            "score",
            "eq5d_vas",
            "improved_code",
            "not_done_code",
        )  # fmt: skip
    )
    kinds = {
        "pid": INT, "visit": INT, "instrument": INT, "score": FLOAT, "vas": FLOAT,
        "improved": INT, "not_done": INT,
    }  # fmt: skip
    rows = sql_frames.Rows(entries, kinds)
    try:
        return _visit_map(Visit.objects.filter(trial=trial)), rows
    except BaseException:
        rows.close()
        raise


def _visit_map(visits) -> pd.DataFrame:
    return sql_frames.read_frame(
        visits.order_by().values_list("pk", "definition_id"), {"visit": INT, "definition": INT}
    )


def outcomes_frame(
    trial: Trial, ids: pd.Index, reads: tuple[pd.DataFrame, sql_frames.Rows] | None = None
) -> pd.DataFrame:
    """One row per participant in `ids` (in that order), one column per instrument score
    and visit: `<instrument>_<visit>` (pain, RMDQ, EQ-5D index, global answer),
    `<eq5d>_vas_<visit>`, `<global>_improved_<visit>`, and `<instrument>_<visit>_not_done`
    (the reason, "" if done). Missing = not entered (NaN); a column only for what has
    entries. Visits by VisitDefinition.code.

    Column-wise: the entries (about ten per participant) arrive in chunks of rows
    (outcomes.results.sql_frames: COPY on PostgreSQL), and each chunk's (instrument, visit) groups
    are written into preallocated columns at the participants' positions — no per-entry
    Python work, memory bounded by the chunk. The entries are read without joins (ids), and
    each visit's definition looked up from a map of the trial's visits: joining the visits
    on the server took 1.25 s of the 1.7 at 100,000 participants."""
    instruments = {
        pk: (code, kind)
        for pk, code, kind in Instrument.objects.filter(trial=trial).values_list(
            "pk", "code", "kind"
        )
    }
    definitions = dict(VisitDefinition.objects.filter(trial=trial).values_list("pk", "code"))
    visit_map, entries = reads if reads is not None else outcome_reads(trial)
    visit_index = pd.Index(visit_map["visit"])
    # Position -1 (a visit of another trial: never, by the services) reads the -1 at the end.
    definition_of = np.append(visit_map["definition"].to_numpy(), -1)
    columns: dict[str, np.ndarray] = {}

    def column(name: str, dtype) -> np.ndarray:
        if name not in columns:
            columns[name] = np.full(len(ids), np.nan, dtype=dtype)
        return columns[name]

    for chunk in entries.chunks():
        chunk["at"] = ids.get_indexer(chunk["pid"])
        found = visit_index.get_indexer(chunk["visit"])
        if (found < 0).any():  # visits newer than the map: look them up
            missing = chunk.loc[found < 0, "visit"].unique().tolist()
            more = _visit_map(Visit.objects.filter(trial=trial, pk__in=missing))
            visit_map = pd.concat([visit_map, more], ignore_index=True)
            visit_index = pd.Index(visit_map["visit"])
            definition_of = np.append(visit_map["definition"].to_numpy(), -1)
            found = visit_index.get_indexer(chunk["visit"])
        chunk["definition"] = definition_of[found]
        chunk = chunk[(chunk["at"] >= 0) & (chunk["definition"] >= 0)]  # the ids asked for
        for (instrument, definition), group in chunk.groupby(
            ["instrument", "definition"], sort=False
        ):
            code, kind = instruments[instrument]
            visit = definitions[definition]
            at = group["at"].to_numpy()
            column(f"{code}_{visit}", float)[at] = group["score"].to_numpy()
            # A few distinct reasons: one string object each, not one per row (memory).
            column(f"{code}_{visit}_not_done", object)[at] = _NOT_DONE[group["not_done"]]
            if kind == Instrument.Kind.EQ5D_3L:
                column(f"{code}_vas_{visit}", float)[at] = group["vas"].to_numpy()
            if kind == Instrument.Kind.GLOBAL_7:
                # True, False or None (entered without an answer).
                improved = _IMPROVED[group["improved"].to_numpy() + 1]
                column(f"{code}_improved_{visit}", object)[at] = improved
    return pd.DataFrame({name: columns[name] for name in sorted(columns)}, index=ids)


def visits_frame(trial: Trial) -> pd.DataFrame:
    """One row per participant and planned visit: target date, window, what was recorded
    (open/completed/missed/not required), the date, the in-window flag, the missed reason."""
    rows = (
        Visit.objects.filter(trial=trial)
        .order_by("participant_id", "target_date")
        .values_list(
            "participant_id",
            "definition__code",
            "target_date",
            "window_start",
            "window_end",
            "outcome",
            "attended_on",
            "in_window",
            "missed_reason",
        )
        .iterator(chunk_size=CHUNK)
    )
    columns = [
        "participant_id", "visit", "target_date", "window_start", "window_end", "outcome",
        "attended_on", "in_window", "missed_reason",
    ]  # fmt: skip
    # Column by column, a chunk of rows at a time: a list of every visit's tuple (300,000 at
    # 100,000 participants) was the export's memory peak. Codes stored once each.
    values: list[list] = [[] for _ in columns]
    shared = {columns.index("visit"): {}, columns.index("outcome"): {}}
    while chunk := list(itertools.islice(rows, CHUNK)):
        for i, column in enumerate(zip(*chunk, strict=True)):
            seen = shared.get(i)
            values[i].extend(column if seen is None else map(seen.setdefault, column, column))
    if not values[0]:
        return pd.DataFrame.from_records([], columns=columns)
    return pd.DataFrame(dict(zip(columns, values, strict=True)))


def sms_summaries(trial: Trial) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The weekly SMS answers summarised, for itt.weekly_sms_summarised: (cells: question,
    week, arm, count, mean; means: question, arm, participant, mean over the participant's
    answered weeks). Read from the totals maintained with every answer (outcomes.sms.sms_totals):
    a few thousand cells and one row per participant and question, never the answers."""
    cells = pd.DataFrame.from_records(
        list(
            SmsQuestionWeekTotal.objects.filter(trial=trial, answers__gt=0).values_list(
                "question__code", "week", "arm__code", "answers", "total"
            )
        ),
        columns=["question", "week", "arm", "count", "total"],
    )
    means = sql_frames.read_frame(
        SmsParticipantTotal.objects.filter(trial=trial, answers__gt=0)
        .order_by()
        .values_list("question__code", "arm__code", "participant_id", "answers", "total"),
        {"question": TEXT, "arm": TEXT, "participant": INT, "count": INT, "total": FLOAT},
    )
    for frame in (cells, means):
        frame["mean"] = frame["total"].astype(float) / frame["count"].astype(float)
    return cells.drop(columns="total"), means.drop(columns=["count", "total"])


def analysis_frame(trial: Trial) -> pd.DataFrame:
    """The ITT analysis set: every randomized participant (participants_frame) with their
    outcomes (outcomes_frame) joined on; participants without any outcome keep NaN.

    The outcomes are fetched beside the participants (outcomes.results.background.Beside: another
    connection, outside transactions), so the server's work on the one overlaps this
    process's on the other."""
    reads = Beside(outcome_reads, trial)
    try:
        people = participants_frame(trial)
    finally:
        reads.wait()  # no thread outlives this call, whatever happened
    if not len(people):
        reads.result()[1].close()
        return people
    return people.join(outcomes_frame(trial, people.index, reads.result()))


def randomized_count(trial: Trial) -> int:
    return Participant.objects.filter(trial=trial, randomized_at__isnull=False).count()
