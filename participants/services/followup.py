"""Follow-up: planning visits, recording attendance or a miss, contact attempts, and
participant status changes (withdrawn, lost to follow-up, deceased, completed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from participants import schedule
from participants.models import (
    EARLY_REASON_MAX,
    NOTE_MAX,
    REASON_MAX,
    ContactAttempt,
    Participant,
    StatusChange,
    Visit,
)
from participants.services.common import not_in_future, require_within, trial_today
from trial.models import Trial, VisitDefinition

Status = Participant.Status

# Which status changes make sense. Everyone randomized stays in the ITT population
# whatever their status; these only record what happened to them.
ALLOWED_CHANGES: dict[str, set[str]] = {
    Status.ENROLLED: {Status.WITHDRAWN},
    Status.ACTIVE: {Status.WITHDRAWN, Status.LOST, Status.DECEASED, Status.COMPLETED},
    Status.LOST: {Status.ACTIVE, Status.WITHDRAWN, Status.DECEASED},
    Status.WITHDRAWN: {Status.DECEASED},
    Status.COMPLETED: {Status.DECEASED},
    Status.DECEASED: set(),
}


def allowed_changes(participant: Participant) -> set[str]:
    """The statuses this participant may move to. Before randomization only withdrawal
    (and nothing after it: the follow-up statuses need a randomization); a participant
    withdrawn with follow-up allowed may later refuse it (withdrawn → withdrawn)."""
    if not participant.is_randomized:
        return (
            set(ALLOWED_CHANGES[Status.ENROLLED])
            if participant.status == Status.ENROLLED
            else set()
        )
    allowed = set(ALLOWED_CHANGES[participant.status])
    if participant.status == Status.WITHDRAWN and participant.followup_allowed:
        allowed.add(Status.WITHDRAWN)
    return allowed


def _specs(definitions: Iterable[VisitDefinition]) -> list[schedule.VisitSpec]:
    return [
        schedule.VisitSpec(d.code, d.offset_days, d.window_before, d.window_after)
        for d in definitions
    ]


def visits_planned(
    *, participant: Participant, by, definitions: Iterable[VisitDefinition], now: dt.datetime
) -> list[Visit]:
    """The participant's visits from the trial's schedule, unsaved (randomization writes
    them in its own batch), planned from `participant.randomized_on`. Visits done at
    randomization (the baseline) are recorded as completed, by `by` at `now`."""
    definitions = list(definitions)
    planned = schedule.plan(participant.randomized_on, _specs(definitions))
    visits = []
    for definition, plan in zip(definitions, planned, strict=True):
        done = definition.at_randomization
        visits.append(
            Visit(
                trial_id=participant.trial_id,
                site_id=participant.site_id,
                participant=participant,
                definition=definition,
                target_date=plan.target,
                window_start=plan.window_start,
                window_end=plan.window_end,
                outcome=Visit.Outcome.COMPLETED if done else Visit.Outcome.OPEN,
                attended_on=participant.randomized_on if done else None,
                in_window=True if done else None,
                recorded_by=by if done else None,
                recorded_at=now if done else None,
            )
        )
    return visits


def _lock_visit(visit: Visit) -> Visit:
    # Lock the visit row: two coordinators recording the same visit must not both win.
    # of=("self",): lock only the visit, not the joined participant and trial rows, which
    # randomization locks (participant, then trial): holding them here would only queue
    # randomizations behind follow-up work.
    return (
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__trial")
        .get(pk=visit.pk)
    )


def require_followup(participant: Participant) -> None:
    if not participant.is_randomized:
        raise ValidationError("This participant has not been randomized; there are no visits.")
    if participant.status == Status.DECEASED:
        raise ValidationError("This participant has died; no further visits can be recorded.")
    if not participant.followup_allowed:
        raise ValidationError(
            "This participant withdrew and refused further follow-up; no visit data can be "
            "recorded."
        )


def early_attendance_reason(visit: Visit, attended_on: dt.date, early_reason: str) -> str:
    """The reason to store with an attendance on `attended_on`: required (confirmed by the
    person recording it) when that is before the window opens, else none."""
    if not schedule.attended_early(attended_on, visit.window_start, visit.window_end):
        return ""
    if not early_reason.strip():
        raise ValidationError(
            {
                "early_reason": gettext(
                    "The window of this visit opens on %(start)s, after this date: its data "
                    "would count for a time point not yet reached. Confirm the date and give "
                    "the reason."
                )
                % {"start": date_format(visit.window_start)}
            },
            code="early_attendance",
        )
    require_within("early_reason", early_reason.strip(), EARLY_REASON_MAX)
    return early_reason.strip()


def early_miss_reason(visit: Visit, today: dt.date, early_reason: str) -> str:
    """The reason to store with a miss recorded `today`: required (confirmed) while the
    window has not closed, else none."""
    if not schedule.missed_early(today, visit.window_start, visit.window_end):
        return ""
    if not early_reason.strip():
        raise ValidationError(
            {
                "early_reason": gettext(
                    "The window of this visit is open until %(end)s: the visit can still take "
                    "place. To record it as missed now, confirm and give the reason."
                )
                % {"end": date_format(visit.window_end)}
            },
            code="early_miss",
        )
    require_within("early_reason", early_reason.strip(), EARLY_REASON_MAX)
    return early_reason.strip()


@transaction.atomic
def visit_record_attendance(
    *, visit: Visit, attended_on: dt.date, by, early_reason: str = ""
) -> Visit:
    """Mark a visit attended on a date, flagging whether that was inside its window. A
    date before the window opens needs `early_reason` (kept on the visit and its history)."""
    visit = _lock_visit(visit)
    participant = visit.participant
    require_followup(participant)
    if visit.outcome != Visit.Outcome.OPEN:
        raise ValidationError(
            f"This visit is already recorded as {visit.get_outcome_display().lower()}."
        )
    not_in_future(participant.trial, "attended_on", attended_on, "attendance date")
    if attended_on < participant.randomized_on:
        raise ValidationError(
            {
                "attended_on": "A follow-up visit cannot precede randomization "
                f"({participant.randomized_on:%d %b %Y})."
            }
        )
    visit.early_reason = early_attendance_reason(visit, attended_on, early_reason)
    visit.outcome = Visit.Outcome.COMPLETED
    visit.attended_on = attended_on
    visit.in_window = schedule.in_window(attended_on, visit.window_start, visit.window_end)
    visit.recorded_by = by
    visit.recorded_at = timezone.now()
    visit._history_user = by
    visit.save(
        update_fields=[
            "outcome",
            "attended_on",
            "in_window",
            "early_reason",
            "recorded_by",
            "recorded_at",
        ]
    )
    return visit


@transaction.atomic
def visit_record_missed(*, visit: Visit, reason: str, by, early_reason: str = "") -> Visit:
    """Record that a visit will not take place, with the reason. Before its window has
    closed (it could still take place) that needs `early_reason` too, confirmed."""
    visit = _lock_visit(visit)
    if not visit.participant.is_randomized:
        raise ValidationError("This participant has not been randomized; there are no visits.")
    if visit.outcome != Visit.Outcome.OPEN:
        raise ValidationError(
            f"This visit is already recorded as {visit.get_outcome_display().lower()}."
        )
    if not reason.strip():
        raise ValidationError({"reason": "Say why the visit was missed."})
    visit.early_reason = early_miss_reason(
        visit, trial_today(visit.participant.trial), early_reason
    )
    visit.outcome = Visit.Outcome.MISSED
    visit.missed_reason = reason.strip()
    visit.recorded_by = by
    visit.recorded_at = timezone.now()
    visit._history_user = by
    visit.save(
        update_fields=["outcome", "missed_reason", "early_reason", "recorded_by", "recorded_at"]
    )
    return visit


@transaction.atomic
def contact_attempt_log(
    *,
    participant: Participant,
    method: str,
    result: str,
    note: str = "",
    visit: Visit | None = None,
    by,
) -> ContactAttempt:
    """Log an attempt to reach a participant (optionally about one of their visits)."""
    participant = Participant.objects.get(pk=participant.pk)  # the caller's copy may be stale
    if not participant.is_randomized:
        raise ValidationError("Contacts are logged for randomized participants.")
    if visit is not None and visit.participant_id != participant.pk:
        raise ValidationError({"visit": "That visit belongs to another participant."})
    if method not in ContactAttempt.Method.values:
        raise ValidationError({"method": "Choose how you tried to reach the participant."})
    if result not in ContactAttempt.Result.values:
        raise ValidationError({"result": "Choose the result of the attempt."})
    if len(note.strip()) > NOTE_MAX:
        raise ValidationError(
            {"note": gettext("Keep the note within %(n)d characters.") % {"n": NOTE_MAX}}
        )
    return ContactAttempt.objects.create(
        participant=participant, visit=visit, method=method, result=result, note=note.strip(), by=by
    )


@transaction.atomic
def participant_status_change(
    *,
    participant: Participant,
    to_status: str,
    effective_on: dt.date,
    reason: str,
    by,
    followup_allowed: bool | None = None,
) -> Participant:
    """Change a participant's status with a reason; audited in StatusChange and history.

    Open visits become "not required" when the participant dies or withdraws from
    follow-up, and "missed" when lost to follow-up; completing needs no open visits.
    """
    # Lock the participant: two status changes at once must not both pass the checks.
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("trial")
        .get(pk=participant.pk)
    )
    trial: Trial = participant.trial
    current = participant.status
    if to_status not in Status.values:
        raise ValidationError({"to_status": "Unknown status."})
    refusing_followup = (
        to_status == current == Status.WITHDRAWN
        and participant.followup_allowed
        and followup_allowed is False
    )
    if to_status == current and not refusing_followup:
        raise ValidationError(
            {"to_status": f"The participant is already {participant.get_status_display().lower()}."}
        )
    if to_status not in allowed_changes(participant) and not refusing_followup:
        raise ValidationError(
            {
                "to_status": f"A participant who is {participant.get_status_display().lower()} "
                f"cannot become {Status(to_status).label.lower()}."
            }
        )
    if not reason.strip():
        raise ValidationError({"reason": "Give the reason for the change."})
    not_in_future(trial, "effective_on", effective_on, "date")
    earliest = participant.randomized_on or participant.consent_date
    if effective_on < earliest:
        raise ValidationError(
            {"effective_on": f"The date cannot precede {earliest:%d %b %Y} (enrollment)."}
        )
    if participant.status_changed_on and effective_on < participant.status_changed_on:
        raise ValidationError(
            {
                "effective_on": "The date cannot precede the previous status change "
                f"({participant.status_changed_on:%d %b %Y})."
            }
        )
    if to_status in (Status.DECEASED, Status.LOST, Status.WITHDRAWN, Status.COMPLETED):
        last_seen = (
            Visit.objects.filter(participant=participant, attended_on__isnull=False)
            .order_by("-attended_on")
            .values_list("attended_on", flat=True)
            .first()
        )
        if to_status == Status.DECEASED and last_seen and effective_on < last_seen:
            raise ValidationError(
                {
                    "effective_on": "A visit was attended on "
                    f"{last_seen:%d %b %Y}; the date of death cannot precede it."
                }
            )
    if to_status == Status.WITHDRAWN and followup_allowed is None:
        raise ValidationError(
            {"followup_allowed": "Say whether follow-up data may still be collected."}
        )
    open_visits = Visit.objects.filter(participant=participant, outcome=Visit.Outcome.OPEN)
    if to_status == Status.COMPLETED:
        n_open = open_visits.count()
        if n_open:
            raise ValidationError(
                {
                    "to_status": f"{n_open} visit(s) are still open: record them as attended "
                    "or missed first."
                }
            )
    require_within("reason", reason.strip(), REASON_MAX)
    change = StatusChange.objects.create(
        participant=participant,
        from_status=current,
        to_status=to_status,
        effective_on=effective_on,
        reason=reason.strip(),
        followup_allowed=followup_allowed if to_status == Status.WITHDRAWN else None,
        by=by,
    )
    history_reason = gettext("Status changed to %(status)s: %(reason)s") % {
        "status": Status(to_status).label.lower(),
        "reason": reason.strip(),
    }
    if to_status == Status.DECEASED or (to_status == Status.WITHDRAWN and not followup_allowed):
        _close_open_visits(open_visits, Visit.Outcome.NOT_REQUIRED, "", change, history_reason)
    elif to_status == Status.LOST:
        today = trial_today(trial)
        # Only visits whose window has closed are missed; open and later windows stay
        # planned, so a participant who is found again (lost → active) can still attend.
        _close_open_visits(
            open_visits.filter(window_end__lt=today),
            Visit.Outcome.MISSED,
            LOST_REASON,
            change,
            history_reason,
        )
    participant.status = to_status
    participant.status_changed_on = effective_on
    if to_status == Status.WITHDRAWN:
        participant.followup_allowed = bool(followup_allowed)
    participant._history_user = by
    participant._change_reason = history_reason
    participant.save(update_fields=["status", "status_changed_on", "followup_allowed"])
    return participant


LOST_REASON = "Participant lost to follow-up"


def _close_open_visits(visits, outcome: str, reason: str, change: StatusChange, why: str) -> None:
    """Close the visits a status change ends, linked to it (so reversing it reopens them).
    Recorded at the change's own time (`at`): anything recorded on the visit afterwards has
    a later time (participants.status_reversal: "recorded since")."""
    for visit in visits.select_for_update():
        visit.outcome = outcome
        visit.missed_reason = reason
        visit.recorded_by = change.by
        visit.recorded_at = change.at
        visit.closed_by = change
        visit._history_user = change.by
        visit._change_reason = why
        visit.save(
            update_fields=["outcome", "missed_reason", "recorded_by", "recorded_at", "closed_by"]
        )


@transaction.atomic
def visits_replan(*, trial: Trial, by, reason: str) -> int:
    """Re-plan the open visits of already randomized participants from the current schedule,
    and add visits for definitions they lack. Returns how many visits changed or were added.

    Recorded visits (attended, missed, not required) never change. Audited in the visits'
    history with `reason`.
    """
    if not reason.strip():
        raise ValidationError("Give the reason for re-planning (it is kept in the audit trail).")
    definitions = {d.pk: d for d in VisitDefinition.objects.filter(trial=trial)}
    changed = 0
    participants = Participant.objects.filter(trial=trial, randomized_at__isnull=False).exclude(
        status__in=[Status.DECEASED, Status.COMPLETED]
    )
    for participant in participants.iterator(chunk_size=500):
        existing = {v.definition_id: v for v in participant.visits.select_for_update()}
        for definition in definitions.values():
            (plan,) = schedule.plan(participant.randomized_on, _specs([definition]))
            visit = existing.get(definition.pk)
            if visit is None:
                if not participant.followup_allowed or definition.at_randomization:
                    continue
                visit = Visit(
                    trial=trial, site_id=participant.site_id, participant=participant,
                    definition=definition, target_date=plan.target,
                    window_start=plan.window_start, window_end=plan.window_end,
                )  # fmt: skip
            elif visit.outcome != Visit.Outcome.OPEN or (
                (visit.target_date, visit.window_start, visit.window_end)
                == (plan.target, plan.window_start, plan.window_end)
            ):
                continue
            if visit.window_start != plan.window_start:
                visit.reminder_sent_on = None  # the reminder was for the old window
            visit.target_date = plan.target
            visit.window_start = plan.window_start
            visit.window_end = plan.window_end
            visit._history_user = by
            visit._change_reason = reason.strip()
            visit.save()
            changed += 1
    return changed
