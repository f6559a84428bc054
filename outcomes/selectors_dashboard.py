"""Reads for the results dashboard: CONSORT counts, follow-up completeness, SMS response
rates. Each is a fixed number of aggregate or streamed queries whatever the trial size; arms
are keyed by Arm.code (the caller labels them as the user may see them)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from django.db.models import Count, F, Q

from outcomes import consort
from outcomes.models import Instrument, OutcomeEntry, SmsWeekTotal
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


def consort_counts(trial: Trial, arm_labels: list[tuple[str, str]], today: dt.date):
    """The CONSORT flow (outcomes.consort.count) from the database: five queries."""
    screening = dict(
        ScreeningRecord.objects.filter(trial=trial)
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
    participants = pd.DataFrame.from_records(
        list(
            Participant.objects.filter(trial=trial, randomized_at__isnull=False).values_list(
                "pk", "allocation__arm__code", "status"
            )
        ),
        columns=["participant_id", "arm", "status"],
    )
    visits = pd.DataFrame.from_records(
        list(
            Visit.objects.filter(trial=trial, definition__at_randomization=False)
            .order_by()
            .values_list("participant_id", "definition__code", "window_end", "outcome")
            .iterator(chunk_size=5000)
        ),
        columns=["participant_id", "visit", "window_end", "outcome"],
    )
    primary = pd.DataFrame.from_records(
        list(
            OutcomeEntry.objects.filter(trial=trial, instrument__primary=True, visit__isnull=False)
            .order_by()
            .values_list("participant_id", "visit__definition__code", "score", "not_done")
            .iterator(chunk_size=5000)
        ),
        columns=["participant_id", "visit", "score", "not_done"],
    )
    return consort.count(
        screening=screening,
        enrolled_not_randomized=not_randomized,
        participants=participants,
        visits=visits,
        primary=primary,
        visit_labels=followup_definitions(trial),
        arm_labels=arm_labels,
        today=today,
    )


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
    From the maintained totals (outcomes.sms_totals), not the millions of SMS weeks."""
    rows = (
        SmsWeekTotal.objects.filter(trial=trial, sent__gt=0)
        .order_by("week", "arm__code")
        .values_list("week", "arm__code", "sent", "answered", "complete")
    )
    keys = ("week", "arm", "sent", "answered", "complete")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def primary_instrument(trial: Trial) -> Instrument | None:
    return Instrument.objects.filter(trial=trial, primary=True).first()
