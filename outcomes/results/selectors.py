"""Reads for the results dashboard: CONSORT counts, follow-up completeness, SMS response
rates. Each is a fixed number of aggregate or streamed queries whatever the trial size; arms
are keyed by Arm.code (the caller labels them as the user may see them)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.results import consort, sql_frames
from outcomes.results.sql_frames import BOOL, DATE, FLOAT, INT, TEXT
from outcomes.sms.models import SmsWeekTotal
from participants.models import Participant, ScreeningRecord, Visit
from trial.models import Trial, VisitDefinition

# The arm allocated, from a visit's or an SMS week's participant.
ARM = F("participant__allocation__arm__code")


def followup_definitions(trial: Trial) -> list[tuple[str, str]]:
    """(code, label) of the follow-up visits (not the one done at randomization), in order."""
    return list(
        VisitDefinition.objects.filter(trial=trial, at_randomization=False)
        .order_by("order", "offset_days")
        .values_list("code", "label")
    )


def consort_counts(
    trial: Trial,
    arm_labels: list[tuple[str, str]],
    today: dt.date,
    data: pd.DataFrame | None = None,
    visits: pd.DataFrame | None = None,
):
    """The CONSORT flow (outcomes.results.consort.count) from the database, in six queries; fewer
    when `data`, the analysis frame (outcomes.results.analysis_data.analysis_frame) already read,
    gives the randomized participants and their primary outcome (the two largest reads),
    and when `visits` (consort_visits) was read already."""
    # A voided record was entered in error (a duplicate, the wrong patient): nobody assessed.
    screening = dict(
        ScreeningRecord.objects.filter(trial=trial, voided_at__isnull=True)
        .values("outcome")
        .annotate(n=Count("pk"))
        .values_list("outcome", "n")
    )
    not_randomized = dict(
        Participant.objects.filter(trial=trial, randomized_at__isnull=True)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    if visits is None:
        visits = consort_visits(trial)
    visit_labels = followup_definitions(trial)
    if data is not None:
        participants, primary = _from_analysis_frame(trial, data, visit_labels)
    else:
        participants, primary = _consort_frames(trial)
    return consort.count(
        screening=screening,
        enrolled_not_randomized=not_randomized,
        participants=participants,
        visits=visits,
        primary=primary,
        visit_labels=visit_labels,
        arm_labels=arm_labels,
        today=today,
    )


def consort_visits(trial: Trial) -> pd.DataFrame:
    """The follow-up visits, as consort.count takes them, with whether an attended visit
    was inside its window (None while not attended) and whether anything was recorded
    ahead of the window (`early`: an early reason given, the visit possibly still open
    with part of its outcomes entered). The frames here come through
    outcomes.results.sql_frames: COPY on PostgreSQL (a cursor made a Python object of each of ~1.5
    million values at 100,000 participants: 1.8 s)."""
    return sql_frames.read_frame(
        Visit.objects.filter(trial=trial, definition__at_randomization=False)
        .order_by()
        .annotate(early=ExpressionWrapper(~Q(early_reason=""), output_field=BooleanField()))
        .values_list(
            "participant_id", "definition__code", "window_end", "outcome", "in_window", "early"
        ),
        {
            "participant_id": INT,
            "visit": TEXT,
            "window_end": DATE,
            "outcome": TEXT,
            "in_window": BOOL,
            "early": BOOL,
        },
    )


def _consort_frames(trial: Trial) -> tuple[pd.DataFrame, pd.DataFrame]:
    participants = sql_frames.read_frame(
        Participant.objects.filter(trial=trial, randomized_at__isnull=False)
        .order_by()
        .values_list("pk", "allocation__arm__code", "status"),
        {"participant_id": INT, "arm": TEXT, "status": TEXT},
    )
    primary = sql_frames.read_frame(
        OutcomeEntry.objects.filter(trial=trial, instrument__primary=True, visit__isnull=False)
        .order_by()
        .values_list("participant_id", "visit__definition__code", "score", "not_done"),
        {"participant_id": INT, "visit": TEXT, "score": FLOAT, "not_done": TEXT},
    )
    return participants, primary


def _from_analysis_frame(trial: Trial, data: pd.DataFrame, visit_labels):
    """What _consort_frames reads, taken from the analysis frame: its participants, and
    the primary instrument's entries at the follow-up visits (an entry is there when its
    `_not_done` column is not missing: "" when done)."""
    participants = data[["participant_id", "arm", "status"]].reset_index(drop=True)
    parts = []
    # Every instrument marked primary, as the database read takes them (one, normally).
    for code in Instrument.objects.filter(trial=trial, primary=True).values_list("code", flat=True):
        for visit, _ in visit_labels:
            score, not_done = f"{code}_{visit}", f"{code}_{visit}_not_done"
            if not_done not in data.columns:
                continue
            # Only the three columns (the whole frame's rows copied took 0.1 s per visit).
            entered = data.loc[
                data[not_done].notna().to_numpy(), ["participant_id", score, not_done]
            ]
            parts.append(
                pd.DataFrame(
                    {
                        "participant_id": entered["participant_id"].to_numpy(),
                        "visit": visit,
                        "score": entered[score].to_numpy(dtype=float),
                        "not_done": entered[not_done].to_numpy(dtype=object),
                    }
                )
            )
    columns = ["participant_id", "visit", "score", "not_done"]
    primary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return participants, primary


def followup_completeness(trial: Trial, today: dt.date) -> list[dict]:
    """Per follow-up visit and arm: completed in window, completed late, missing (missed,
    or open with the window closed), not yet due, and the total planned (n_... keys: the
    model's own field names would clash). One query."""
    open_ = Q(outcome=Visit.Outcome.OPEN)
    return list(
        Visit.objects.filter(trial=trial, definition__at_randomization=False)
        .values("definition__code", "definition__label", "definition__order", arm=ARM)
        .annotate(
            n_in_window=Count("pk", filter=Q(outcome=Visit.Outcome.COMPLETED, in_window=True)),
            n_late=Count("pk", filter=Q(outcome=Visit.Outcome.COMPLETED, in_window=False)),
            n_missing=Count(
                "pk", filter=Q(outcome=Visit.Outcome.MISSED) | (open_ & Q(window_end__lt=today))
            ),
            n_not_yet_due=Count("pk", filter=open_ & Q(window_end__gte=today)),
            n_not_required=Count("pk", filter=Q(outcome=Visit.Outcome.NOT_REQUIRED)),
            n_total=Count("pk"),
        )
        .order_by("definition__order", "definition__code", "arm")
    )


def sms_response_rates(trial: Trial) -> list[dict]:
    """Per week number and arm: weeks sent, weeks with any answer, weeks fully answered.
    From the maintained totals (outcomes.sms.sms_totals), not the millions of SMS weeks."""
    rows = (
        SmsWeekTotal.objects.filter(trial=trial, sent__gt=0)
        .order_by("week", "arm__code")
        .values_list("week", "arm__code", "sent", "answered", "complete")
    )
    keys = ("week", "arm", "sent", "answered", "complete")
    return [dict(zip(keys, row, strict=True)) for row in rows]
