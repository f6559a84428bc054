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

from participants import schedule, status_rules
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

# The rule lives in participants.status_rules; these names stay for the callers.
ALLOWED_CHANGES = status_rules.ALLOWED_CHANGES


def allowed_changes(participant: Participant) -> set[str]:
    """The statuses this participant may move to (participants.status_rules)."""
    return status_rules.allowed_changes(
        status=participant.status,
        randomized=participant.is_randomized,
        followup_allowed=participant.followup_allowed,
    )


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
    """Refuse, saying why, unless the participant is in follow-up (participants.status_rules)."""
    if participant.in_followup:
        return
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
    follow-up, and "missed" when lost to follow-up; completing needs no open visits
    (participants.status_rules decides).
    """
    # 1. Lock the participant: two status changes at once must not both pass the checks.
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("trial")
        .get(pk=participant.pk)
    )
    trial: Trial = participant.trial
    reason = reason.strip()
    # 2. Decide, reading only what this change needs: the last attendance for a death,
    #    the open visits for a completion.
    open_visits = Visit.objects.filter(participant=participant, outcome=Visit.Outcome.OPEN)
    facts = status_rules.Participant(
        status=participant.status,
        randomized=participant.is_randomized,
        followup_allowed=participant.followup_allowed,
        earliest=participant.randomized_on or participant.consent_date,
        status_changed_on=participant.status_changed_on,
        last_attended_on=_last_attended_on(participant) if to_status == Status.DECEASED else None,
        open_visits=open_visits.count() if to_status == Status.COMPLETED else 0,
    )
    decision = status_rules.decide_status_change(
        facts,
        to_status=to_status,
        effective_on=effective_on,
        reason=reason,
        followup_allowed=followup_allowed,
        today=trial_today(trial),
    )
    if decision.refusal:
        raise ValidationError(
            {
                decision.field: _status_refusal_message(
                    decision.refusal, participant, facts, to_status
                )
            }
        )
    require_within("reason", reason, REASON_MAX)
    # 3. Write and audit: the change row, the visits it closes, the participant.
    change = StatusChange.objects.create(
        participant=participant,
        from_status=participant.status,
        to_status=to_status,
        effective_on=effective_on,
        reason=reason,
        followup_allowed=decision.change_followup_allowed,
        by=by,
    )
    history_reason = gettext("Status changed to %(status)s: %(reason)s") % {
        "status": Status(to_status).label.lower(),
        "reason": reason,
    }
    if decision.close_as:
        closing = open_visits
        if decision.close_before is not None:
            closing = closing.filter(window_end__lt=decision.close_before)
        why_missed = LOST_REASON if decision.close_as == Visit.Outcome.MISSED else ""
        _close_open_visits(closing, decision.close_as, why_missed, change, history_reason)
    participant.status = to_status
    participant.status_changed_on = effective_on
    participant.followup_allowed = decision.followup_allowed
    participant._history_user = by
    participant._change_reason = history_reason
    participant.save(update_fields=["status", "status_changed_on", "followup_allowed"])
    return participant


def _last_attended_on(participant: Participant) -> dt.date | None:
    return (
        Visit.objects.filter(participant=participant, attended_on__isnull=False)
        .order_by("-attended_on")
        .values_list("attended_on", flat=True)
        .first()
    )


def _status_refusal_message(
    refusal: str, participant: Participant, facts: status_rules.Participant, to_status: str
) -> str:
    """A status_rules refusal in words, for the field it names."""
    now = participant.get_status_display().lower()
    if refusal == status_rules.UNKNOWN_STATUS:
        return gettext("Unknown status.")
    if refusal == status_rules.ALREADY:
        return gettext("The participant is already %(status)s.") % {"status": now}
    if refusal == status_rules.NOT_ALLOWED:
        return gettext("A participant who is %(now)s cannot become %(to)s.") % {
            "now": now,
            "to": Status(to_status).label.lower(),
        }
    if refusal == status_rules.NO_REASON:
        return gettext("Give the reason for the change.")
    if refusal == status_rules.IN_FUTURE:
        return gettext("The date cannot be in the future.")
    if refusal == status_rules.BEFORE_ENROLLMENT:
        return gettext("The date cannot precede %(date)s (enrollment).") % {
            "date": f"{facts.earliest:%d %b %Y}"
        }
    if refusal == status_rules.BEFORE_PREVIOUS_CHANGE:
        return gettext("The date cannot precede the previous status change (%(date)s).") % {
            "date": f"{facts.status_changed_on:%d %b %Y}"
        }
    if refusal == status_rules.DEATH_BEFORE_VISIT:
        return gettext("A visit was attended on %(date)s; the date of death cannot precede it.") % {
            "date": f"{facts.last_attended_on:%d %b %Y}"
        }
    if refusal == status_rules.FOLLOWUP_UNSAID:
        return gettext("Say whether follow-up data may still be collected.")
    return gettext("%(n)d visit(s) are still open: record them as attended or missed first.") % {
        "n": facts.open_visits
    }


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
