"""Reads for the analysis: the trial's data as pandas DataFrames, the input of the pure
statistics (outcomes.itt) and of the exports.

Each frame is built from a fixed number of queries whatever the trial size, reading rows as
tuples (values_list, iterator) rather than model instances. Arms appear as their codes
(Arm.code); the caller maps them to what the user may see (trial.blinding.arm_labels).
Nothing here holds direct identifiers (names, phone numbers).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from django.db import connection

from outcomes.models import (
    Instrument,
    OutcomeEntry,
    SmsParticipantTotal,
    SmsQuestionWeekTotal,
)
from participants.models import Allocation, Participant, Visit
from trial.models import Trial

# Rows fetched per round trip when streaming large tables.
CHUNK = 5000


def participants_frame(trial: Trial) -> pd.DataFrame:
    """One row per randomized participant (the ITT population): id, number, site, arm,
    randomization date, status, follow-up allowed, one column per minimization factor
    (`factor_<code>`, the level used at allocation) and per baseline variable (`bl_<code>`)."""
    rows = (
        Allocation.objects.filter(trial=trial)
        .order_by("sequence")
        .values_list(
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
        .iterator(chunk_size=CHUNK)
    )
    columns = [
        "participant_id", "number", "site", "arm", "randomized_on", "status", "followup_allowed",
    ]  # fmt: skip
    # Column by column, as from_records of one dict per participant would give them (the
    # factor and baseline columns in order of first appearance, missing = NaN) but without
    # those 100,000 dicts, which were the export's memory peak; codes stored once each.
    values = {name: [] for name in columns}
    shared = {name: {} for name in ("site", "arm", "status")}
    extra: dict[str, list] = {}  # factor_* and bl_*, each padded to the rows so far
    count = 0
    for pid, number, site, arm, randomized_on, status, allowed, levels, baseline in rows:
        values["participant_id"].append(pid)
        values["number"].append(number)
        values["site"].append(shared["site"].setdefault(site, site))
        values["arm"].append(shared["arm"].setdefault(arm, arm))
        values["randomized_on"].append(randomized_on)
        values["status"].append(shared["status"].setdefault(status, status))
        values["followup_allowed"].append(allowed)
        for prefix, pairs in (("factor_", levels), ("bl_", baseline)):
            for code, value in (pairs or {}).items():
                column = extra.get(prefix + code)
                if column is None:
                    column = extra[prefix + code] = [np.nan] * count
                    shared[prefix + code] = {}
                if isinstance(value, str):
                    value = shared[prefix + code].setdefault(value, value)
                column.append(value)
        count += 1
        for column in extra.values():
            if len(column) < count:
                column.append(np.nan)
    if not count:
        return pd.DataFrame(columns=columns)
    values.update(extra)
    frame = pd.DataFrame(values)
    return frame.set_index("participant_id", drop=False)


def outcomes_frame(trial: Trial, ids: pd.Index) -> pd.DataFrame:
    """One row per participant in `ids` (in that order), one column per instrument score
    and visit: `<instrument>_<visit>` (pain, RMDQ, EQ-5D index, global answer),
    `<eq5d>_vas_<visit>`, `<global>_improved_<visit>`, and `<instrument>_<visit>_not_done`
    (the reason, "" if done). Missing = not entered (NaN); a column only for what has
    entries. Visits by VisitDefinition.code.

    Column-wise: the entries (about ten per participant) arrive in chunks of rows, and each
    chunk's (instrument, visit) groups are written into preallocated columns at the
    participants' positions — no per-entry Python work, memory bounded by the chunk."""
    kinds = dict(Instrument.objects.filter(trial=trial).values_list("code", "kind"))
    entries = (
        OutcomeEntry.objects.filter(trial=trial, visit__isnull=False)
        .order_by()  # no Meta ordering: sorting a million rows (on disk) took a second
        .values_list(
            "participant_id",
            "visit__definition__code",
            "instrument__code",
            "score",
            "eq5d_vas",
            "improved",
            "not_done",
        )
    )
    columns: dict[str, np.ndarray] = {}

    def column(name: str, dtype) -> np.ndarray:
        if name not in columns:
            columns[name] = np.full(len(ids), np.nan, dtype=dtype)
        return columns[name]

    names = ["pid", "visit", "code", "score", "vas", "improved", "not_done"]
    for rows in row_chunks(entries):
        chunk = pd.DataFrame.from_records(rows, columns=names)
        chunk["at"] = ids.get_indexer(chunk["pid"])
        chunk = chunk[chunk["at"] >= 0]  # only the participants asked for
        for (code, visit), group in chunk.groupby(["code", "visit"], sort=False):
            at = group["at"].to_numpy()
            column(f"{code}_{visit}", float)[at] = group["score"].to_numpy(dtype=float)
            # A few distinct reasons: one string object each, not one per row (memory).
            codes, reasons = pd.factorize(group["not_done"], use_na_sentinel=False)
            column(f"{code}_{visit}_not_done", object)[at] = reasons.to_numpy(object)[codes]
            if kinds.get(code) == Instrument.Kind.EQ5D_3L:
                column(f"{code}_vas_{visit}", float)[at] = group["vas"].to_numpy(dtype=float)
            if kinds.get(code) == Instrument.Kind.GLOBAL_7:
                # bool or None (entered without an answer); SQLite returns 0/1.
                column(f"{code}_improved_{visit}", object)[at] = [
                    None if v is None or v != v else bool(v) for v in group["improved"]
                ]
    return pd.DataFrame({name: columns[name] for name in sorted(columns)}, index=ids)


def row_chunks(queryset, size: int = 50_000):
    """A values_list queryset's rows as lists of tuples, `size` at a time, through a
    server-side cursor on PostgreSQL. Raw rows: the fields' from_db_value converters are
    not applied (the caller handles the few that matter, e.g. SQLite's 0/1 booleans)."""
    sql, params = queryset.query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield rows


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
    answered weeks). Read from the totals maintained with every answer (outcomes.sms_totals):
    a few thousand cells and one row per participant and question, never the answers."""
    cells = pd.DataFrame.from_records(
        list(
            SmsQuestionWeekTotal.objects.filter(trial=trial, answers__gt=0).values_list(
                "question__code", "week", "arm__code", "answers", "total"
            )
        ),
        columns=["question", "week", "arm", "count", "total"],
    )
    means = pd.DataFrame.from_records(
        list(
            SmsParticipantTotal.objects.filter(trial=trial, answers__gt=0)
            .values_list("question__code", "arm__code", "participant_id", "answers", "total")
            .iterator(chunk_size=CHUNK)
        ),
        columns=["question", "arm", "participant", "count", "total"],
    )
    for frame in (cells, means):
        frame["mean"] = frame["total"].astype(float) / frame["count"].astype(float)
    return cells.drop(columns="total"), means.drop(columns=["count", "total"])


def analysis_frame(trial: Trial) -> pd.DataFrame:
    """The ITT analysis set: every randomized participant (participants_frame) with their
    outcomes (outcomes_frame) joined on; participants without any outcome keep NaN."""
    people = participants_frame(trial)
    if not len(people):
        return people
    return people.join(outcomes_frame(trial, people.index))


def randomized_count(trial: Trial) -> int:
    return Participant.objects.filter(trial=trial, randomized_at__isnull=False).count()
