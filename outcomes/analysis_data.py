"""Reads for the analysis: the trial's data as pandas DataFrames, the input of the pure
statistics (outcomes.itt) and of the exports.

Each frame is built from a fixed number of queries whatever the trial size, reading rows as
tuples (values_list, iterator) rather than model instances. Arms appear as their codes
(Arm.code); the caller maps them to what the user may see (trial.blinding.arm_labels).
Nothing here holds direct identifiers (names, phone numbers).
"""

from __future__ import annotations

import pandas as pd
from django.db.models import Avg, Count

from outcomes.models import Instrument, OutcomeEntry, SmsAnswer
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
    records = []
    for pid, number, site, arm, randomized_on, status, allowed, levels, baseline in rows:
        record = {
            "participant_id": pid,
            "number": number,
            "site": site,
            "arm": arm,
            "randomized_on": randomized_on,
            "status": status,
            "followup_allowed": allowed,
        }
        record.update({f"factor_{code}": level for code, level in (levels or {}).items()})
        record.update({f"bl_{code}": value for code, value in (baseline or {}).items()})
        records.append(record)
    columns = [
        "participant_id", "number", "site", "arm", "randomized_on", "status", "followup_allowed",
    ]  # fmt: skip
    frame = pd.DataFrame.from_records(records, columns=None if records else columns)
    return frame.set_index("participant_id", drop=False) if len(frame) else frame


def outcomes_frame(trial: Trial) -> pd.DataFrame:
    """One row per randomized participant, one column per instrument score and visit:
    `<instrument>_<visit>` (pain, RMDQ, EQ-5D index, global answer), `<eq5d>_vas_<visit>`,
    `<global>_improved_<visit>`, and `<instrument>_<visit>_not_done` (the reason, "" if
    done). Missing = not entered (NaN). Visits by VisitDefinition.code."""
    kinds = dict(Instrument.objects.filter(trial=trial).values_list("code", "kind"))
    records: dict[int, dict] = {}
    rows = (
        OutcomeEntry.objects.filter(trial=trial, visit__isnull=False)
        .values_list(
            "participant_id",
            "visit__definition__code",
            "instrument__code",
            "score",
            "eq5d_vas",
            "improved",
            "not_done",
        )
        .iterator(chunk_size=CHUNK)
    )
    for pid, visit, code, score, vas, improved, not_done in rows:
        record = records.setdefault(pid, {"participant_id": pid})
        record[f"{code}_{visit}"] = score
        record[f"{code}_{visit}_not_done"] = not_done
        if kinds.get(code) == Instrument.Kind.EQ5D_3L:
            record[f"{code}_vas_{visit}"] = vas
        if kinds.get(code) == Instrument.Kind.GLOBAL_7:
            record[f"{code}_improved_{visit}"] = improved
    frame = pd.DataFrame.from_records(list(records.values()))
    return frame.set_index("participant_id") if len(frame) else frame


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
    return pd.DataFrame.from_records(list(rows), columns=columns)


def sms_summaries(trial: Trial) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The weekly SMS answers summarised by the database, for itt.weekly_sms_summarised:
    (cells: question, week, arm, count, mean; means: question, arm, participant, mean over
    the participant's answered weeks). Two GROUP BY queries instead of every answer — ten
    million at 100,000 participants — read into Python."""
    answers = SmsAnswer.objects.filter(trial=trial)
    cells = pd.DataFrame.from_records(
        list(
            answers.values_list(
                "question__code", "week__week", "participant__allocation__arm__code"
            )
            .annotate(n=Count("pk"), m=Avg("value"))
            .order_by()
        ),
        columns=["question", "week", "arm", "count", "mean"],
    )
    means = pd.DataFrame.from_records(
        list(
            answers.values_list(
                "question__code", "participant__allocation__arm__code", "participant_id"
            )
            .annotate(m=Avg("value"))
            .order_by()
            .iterator(chunk_size=CHUNK)
        ),
        columns=["question", "arm", "participant", "mean"],
    )
    for frame in (cells, means):
        frame["mean"] = frame["mean"].astype(float)
    return cells, means


def analysis_frame(trial: Trial) -> pd.DataFrame:
    """The ITT analysis set: every randomized participant (participants_frame) with their
    outcomes (outcomes_frame) joined on; participants without any outcome keep NaN."""
    people = participants_frame(trial)
    if not len(people):
        return people
    outcomes = outcomes_frame(trial)
    return people.join(outcomes, how="left") if len(outcomes) else people


def randomized_count(trial: Trial) -> int:
    return Participant.objects.filter(trial=trial, randomized_at__isnull=False).count()
