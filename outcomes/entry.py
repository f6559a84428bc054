"""Recording a visit's outcome data: one service for entry and correction.

Lives beside the SMS services (outcomes/services.py) but in its own module: one job each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from outcomes import scoring
from outcomes.models import Instrument, OutcomeEntry
from participants import schedule
from participants.models import Visit
from participants.services.common import not_in_future
from participants.services.followup import (
    require_followup,
    visit_record_attendance,
    visit_record_missed,
)

SCORE_FIELDS = ("score", "eq5d_profile", "eq5d_vas", "improved", "not_done", "not_done_note")


@dataclass(frozen=True)
class EntryInput:
    """What a form collected for one instrument: responses, or a not-done reason."""

    instrument: Instrument
    responses: dict = field(default_factory=dict)
    not_done: str = ""
    not_done_note: str = ""


def score_fields(instrument: Instrument, responses: dict) -> dict:
    """The stored score fields for an instrument's responses (outcomes.scoring rules)."""
    kind = instrument.kind
    out = {"score": None, "eq5d_profile": "", "eq5d_vas": None, "improved": None}
    if kind == Instrument.Kind.PAIN_NRS:
        out["score"] = scoring.pain_nrs(responses.get("value"))
    elif kind == Instrument.Kind.RMDQ:
        out["score"] = scoring.rmdq(responses.get("items") or [None] * scoring.RMDQ_ITEMS)
    elif kind == Instrument.Kind.EQ5D_3L:
        profile = scoring.eq5d_profile(responses)
        value_set = scoring.EQ5DValueSet.from_dict(
            instrument.value_set.code, instrument.value_set.coefficients
        )
        out["eq5d_profile"] = profile or ""
        out["score"] = scoring.eq5d_index(profile, value_set)
        out["eq5d_vas"] = scoring.eq5d_vas(responses.get("vas"))
    elif kind == Instrument.Kind.GLOBAL_7:
        answer = responses.get("answer")
        out["score"] = answer
        out["improved"] = scoring.global_improved(answer)
    return out


@transaction.atomic
def visit_record_outcomes(
    *,
    visit: Visit,
    entries: list[EntryInput],
    by,
    attended_on: dt.date | None = None,
    reason_for_change: str = "",
) -> Visit:
    """Save the instruments entered for a visit, then close the visit when every instrument
    due at it is recorded: attended on `attended_on` when any has data, missed when all
    were not done. Changing saved values needs `reason_for_change` (kept in the history).
    """
    # Lock the visit: two people entering the same visit must not interleave.
    visit = (
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__trial", "definition")
        .get(pk=visit.pk)
    )
    require_followup(visit.participant)
    if visit.outcome in (Visit.Outcome.MISSED, Visit.Outcome.NOT_REQUIRED):
        raise ValidationError(
            f"This visit is recorded as {visit.get_outcome_display().lower()}; "
            "no outcome data can be entered."
        )
    due = {i.pk: i for i in Instrument.objects.filter(visits=visit.definition_id)}
    existing = {
        e.instrument_id: e for e in OutcomeEntry.objects.select_for_update().filter(visit=visit)
    }
    reason = reason_for_change.strip()
    for item in entries:
        if item.instrument.pk not in due:
            raise ValidationError(f"{item.instrument.name} is not due at {visit.definition.label}.")
        if item.not_done and item.not_done not in OutcomeEntry.NotDone.values:
            raise ValidationError(f"{item.instrument.name}: unknown reason for not done.")
        try:
            values = (
                {"score": None, "eq5d_profile": "", "eq5d_vas": None, "improved": None}
                if item.not_done
                else score_fields(item.instrument, item.responses)
            )
        except scoring.ScoringError as exc:
            raise ValidationError(f"{item.instrument.name}: {exc}") from exc
        values["not_done"] = item.not_done
        values["not_done_note"] = item.not_done_note.strip()
        responses = {} if item.not_done else item.responses
        entry = existing.get(item.instrument.pk)
        if entry is None:
            entry = OutcomeEntry(
                trial_id=visit.trial_id,
                participant_id=visit.participant_id,
                visit=visit,
                instrument=item.instrument,
                entered_by=by,
            )
        elif entry.responses == responses and all(
            getattr(entry, f) == values[f] for f in SCORE_FIELDS
        ):
            continue  # unchanged
        elif not reason:
            raise ValidationError(
                {"reason_for_change": "Saved values are being changed: give the reason."}
            )
        else:
            entry._change_reason = reason
        entry.responses = responses
        for name, value in values.items():
            setattr(entry, name, value)
        entry._history_user = by
        entry.save()
        existing[item.instrument.pk] = entry

    if due and visit.outcome == Visit.Outcome.OPEN and set(due) <= set(existing):
        recorded = [existing[pk] for pk in due]
        if all(e.not_done for e in recorded):
            reasons = sorted({e.get_not_done_display() for e in recorded})
            visit = visit_record_missed(
                visit=visit, reason="Outcomes not done: " + ", ".join(reasons), by=by
            )
        else:
            if attended_on is None:
                raise ValidationError({"attended_on": "Enter the date of the visit."})
            visit = visit_record_attendance(visit=visit, attended_on=attended_on, by=by)
    elif (
        visit.outcome == Visit.Outcome.COMPLETED
        and attended_on is not None
        and attended_on != visit.attended_on
    ):
        visit = _correct_visit_date(visit, attended_on, reason, by)
    return visit


def _correct_visit_date(visit: Visit, attended_on: dt.date, reason: str, by) -> Visit:
    """A completed visit's date changed on the outcomes page: a correction like any other."""
    participant = visit.participant
    if not reason:
        raise ValidationError(
            {"reason_for_change": "The visit date is being changed: give the reason."}
        )
    not_in_future(participant.trial, "attended_on", attended_on, "visit date")
    if attended_on < participant.randomized_on:
        raise ValidationError(
            {
                "attended_on": "A follow-up visit cannot precede randomization "
                f"({participant.randomized_on:%d %b %Y})."
            }
        )
    visit.attended_on = attended_on
    visit.in_window = schedule.in_window(attended_on, visit.window_start, visit.window_end)
    visit._history_user = by
    visit._change_reason = reason
    visit.save(update_fields=["attended_on", "in_window"])
    return visit
