"""Recording a visit's outcome data: its entries, their corrections, and closing the visit."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction

from outcomes.instruments import scoring
from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.services.entries import SCORE_FIELDS, EntryInput, stored_values
from participants import schedule, status_rules
from participants.models import REASON_FOR_CHANGE_MAX, Visit
from participants.services.common import not_in_future, require_within, trial_today
from participants.services.followup import (
    early_attendance_reason,
    require_followup,
    visit_record_attendance,
    visit_record_missed,
)


# long: one locked transaction over a visit's entries (lock, check, save each entry, close
# the visit); its steps share the locked rows and read in the order they happen.
@transaction.atomic
def visit_record_outcomes(
    *,
    visit: Visit,
    entries: list[EntryInput],
    by,
    attended_on: dt.date | None = None,
    reason_for_change: str = "",
    early_reason: str = "",
) -> Visit:
    """Save the instruments entered for a visit, then close the visit when every instrument
    due at it is recorded: attended on `attended_on` when any has data, missed when all
    were not done. Changing saved values needs `reason_for_change` (kept in the history).
    Attended before the window opens, or missed before it closes, needs `early_reason`
    (participants.schedule), as on the visit's own pages.
    """
    # Lock the visit: two people entering the same visit must not interleave.
    visit = (
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__trial", "definition")
        .get(pk=visit.pk)
    )
    if not status_rules.outcomes_enterable(
        in_followup=visit.participant.in_followup, visit_outcome=visit.outcome
    ):
        require_followup(visit.participant)  # says why the participant is out of follow-up
        raise ValidationError(
            f"This visit is recorded as {visit.get_outcome_display().lower()}; "
            "no outcome data can be entered."
        )
    # Data entered before the window opens would count for a time point not yet reached
    # (participants.schedule): only with a confirmed reason, kept on the visit, whether or
    # not this entry completes it.
    today = trial_today(visit.participant.trial)
    entered_early = (
        bool(entries)
        and visit.outcome == Visit.Outcome.OPEN
        and schedule.attended_early(today, visit.window_start, visit.window_end)
    )
    if entered_early:
        early_reason = early_attendance_reason(visit, today, early_reason)
    due = {
        i.pk: i
        for i in Instrument.objects.filter(trial_id=visit.trial_id, visits=visit.definition_id)
    }
    existing = {
        e.instrument_id: e for e in OutcomeEntry.objects.select_for_update().filter(visit=visit)
    }
    reason = reason_for_change.strip()
    require_within("reason_for_change", reason, REASON_FOR_CHANGE_MAX)
    for item in entries:
        if item.instrument.pk not in due:
            raise ValidationError(f"{item.instrument.name} is not due at {visit.definition.label}.")
        if item.not_done and item.not_done not in OutcomeEntry.NotDone.values:
            raise ValidationError(f"{item.instrument.name}: unknown reason for not done.")
        try:
            responses, values = stored_values(item)
        except scoring.ScoringError as exc:
            raise ValidationError(f"{item.instrument.name}: {exc}") from exc
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

    if entered_early and visit.early_reason != early_reason:
        visit.early_reason = early_reason
        visit._history_user = by
        visit.save(update_fields=["early_reason"])

    if due and visit.outcome == Visit.Outcome.OPEN and set(due) <= set(existing):
        recorded = [existing[pk] for pk in due]
        if all(e.not_done for e in recorded):
            reasons = sorted({e.get_not_done_display() for e in recorded})
            visit = visit_record_missed(
                visit=visit,
                reason="Outcomes not done: " + ", ".join(reasons),
                by=by,
                early_reason=early_reason,
            )
        else:
            if attended_on is None:
                raise ValidationError({"attended_on": "Enter the date of the visit."})
            visit = visit_record_attendance(
                visit=visit, attended_on=attended_on, by=by, early_reason=early_reason
            )
    elif (
        visit.outcome == Visit.Outcome.COMPLETED
        and attended_on is not None
        and attended_on != visit.attended_on
    ):
        visit = _correct_visit_date(visit, attended_on, reason, by, early_reason)
    return visit


def _correct_visit_date(
    visit: Visit, attended_on: dt.date, reason: str, by, early_reason: str
) -> Visit:
    """A completed visit's date changed on the outcomes page: a correction like any other;
    moved before the window opens, it needs the confirmed reason an attendance would."""
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
    visit.early_reason = early_attendance_reason(visit, attended_on, early_reason)
    visit.attended_on = attended_on
    visit.in_window = schedule.in_window(attended_on, visit.window_start, visit.window_end)
    visit._history_user = by
    visit._change_reason = reason
    visit.save(update_fields=["attended_on", "in_window", "early_reason"])
    return visit
