"""Reads of instruments and outcome entries for the pages: which instruments are due at a
visit or at baseline, and what has been entered. Each is one query whatever the trial size."""

from __future__ import annotations

from django.db.models import QuerySet

from outcomes.instruments.models import Instrument, OutcomeEntry
from participants.models import Participant, Visit
from trial.models import Trial


def baseline_instruments(trial: Trial) -> list[Instrument]:
    """The instruments due at the trial's baseline (the visit done at randomization)."""
    return list(
        Instrument.objects.filter(trial=trial, visits__at_randomization=True)
        .select_related("value_set", "baseline_variable")
        .distinct()
        .order_by("order", "pk")
    )


def visit_instruments(trial: Trial, visit: Visit) -> list[Instrument]:
    """The instruments due at `visit`, in the instruments' order."""
    return list(
        Instrument.objects.filter(trial=trial, visits=visit.definition_id).select_related(
            "value_set", "baseline_variable"
        )
    )


def visit_entries(visit: Visit) -> dict[int, OutcomeEntry]:
    """The entries recorded at `visit`, by instrument id."""
    return {e.instrument_id: e for e in OutcomeEntry.objects.filter(visit=visit)}


def baseline_entries(participant: Participant) -> QuerySet[OutcomeEntry]:
    """The participant's baseline entries made before randomization (no visit yet), with
    the baseline variable each may source."""
    return OutcomeEntry.objects.filter(participant=participant, visit__isnull=True).select_related(
        "instrument__baseline_variable"
    )
