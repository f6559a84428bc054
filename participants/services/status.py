"""Reversing a status change entered in error: apply participants.status_reversal's decision
(lock, re-read, decide, write, audit)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from participants import selectors, status_reversal
from participants.models import REASON_MAX, Participant, StatusChange, Visit
from participants.services.common import require_within

Status = Participant.Status


@dataclass(frozen=True)
class Reversed:
    reversal: StatusChange  # the new row, naming the change it reverses
    reopened: int  # visits opened again
    kept: list[Visit]  # visits the change closed that had something recorded since


REFUSALS = {
    status_reversal.NOT_LATEST: _(
        "Only the participant's latest status change can be reversed; reverse the later ones first."
    ),
    status_reversal.ALREADY_REVERSED: _("This status change was already reversed."),
    status_reversal.IS_REVERSAL: _(
        "A reversal cannot itself be reversed: record a new status change instead."
    ),
    status_reversal.STATUS_MOVED: _("The participant's status has changed since; reload the page."),
}


@transaction.atomic
def status_change_reverse(*, change: StatusChange, reason: str, by) -> Reversed:
    """Reverse a status change entered in error, with the reason: the participant's previous
    status, status date and follow-up come back, visits the change closed open again
    (unless something was recorded on them since), and everything the weekly SMS and the
    worklist derive from the status follows. The change itself stays; the reversal is a new
    row naming it (participants.status_reversal)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": gettext("Give the reason for the reversal.")})
    require_within("reason", reason, REASON_MAX)
    # 1. Lock the participant, as participant_status_change does: a status change and a
    #    reversal at the same moment queue here, so each decides from the other's result.
    participant = Participant.objects.select_for_update(of=("self",)).get(pk=change.participant_id)
    visits = list(
        Visit.objects.select_for_update(of=("self",))
        .filter(participant=participant, closed_by__isnull=False)
        .select_related("closed_by", "definition")
        .order_by("pk")
    )
    # 2. Decide.
    decision = status_reversal.decide(
        changes=selectors.as_reversal_changes(
            StatusChange.objects.filter(participant=participant).order_by("at", "pk")
        ),
        change_id=change.pk,
        status=participant.status,
        followup_allowed=participant.followup_allowed,
        visits=[
            status_reversal.ClosedVisit(
                id=v.pk,
                outcome=v.outcome,
                closed_by_id=v.closed_by_id,
                # The change closed the visit at its own time (services.followup); every
                # later record of the visit (services that write it) moves recorded_at on.
                recorded_since=v.recorded_at is None or v.recorded_at > v.closed_by.at,
            )
            for v in visits
        ],
    )
    if decision.refusal:
        raise ValidationError(REFUSALS[decision.refusal], code=decision.refusal)
    # 3. Write: the reversal row, the participant, the visits; each audited with the reason.
    reversal = StatusChange.objects.create(
        participant=participant,
        from_status=decision.from_status,
        to_status=decision.to_status,
        effective_on=decision.effective_on,
        reason=reason,
        followup_allowed=decision.followup_allowed
        if decision.to_status == Status.WITHDRAWN
        else None,
        by=by,
        reverses_id=decision.change_id,
    )
    why = gettext("Status change of %(date)s reversed (entered in error): %(reason)s") % {
        "date": date_format(decision.effective_on),
        "reason": reason,
    }
    participant.status = decision.to_status
    participant.status_changed_on = decision.status_changed_on
    participant.followup_allowed = decision.followup_allowed
    participant._history_user = by
    participant._change_reason = why
    participant.save(update_fields=["status", "status_changed_on", "followup_allowed"])
    by_id = {v.pk: v for v in visits}
    for visit_id in decision.reopen:
        visit = by_id[visit_id]
        visit.outcome = Visit.Outcome.OPEN
        visit.missed_reason = ""
        visit.recorded_by = None
        visit.recorded_at = None
        visit.closed_by = None
        visit._history_user = by
        visit._change_reason = why
        visit.save(
            update_fields=["outcome", "missed_reason", "recorded_by", "recorded_at", "closed_by"]
        )
    return Reversed(reversal, len(decision.reopen), [by_id[pk] for pk in decision.kept])
