"""Opt-out and opt-in of the SMS: the one place either is written.

    sms_opt_out               nothing more is sent; queued messages are cancelled
    sms_opt_in                the weekly questions resume with the next weekly round
    participant_sms_opt_out   an opt-out reported to staff (by phone, in person), recorded by
    participant_sms_opt_in    a coordinator or trial manager: the same change, with who and why

A participant's own STOP/START reply (outcomes.sms.tracking.sms_receive) calls sms_opt_out and
sms_opt_in for every participant with the sender's number.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from outcomes.sms import sms_recipients
from outcomes.sms.models import OutboundMessage
from participants.models import Participant


def sms_opt_out(
    *, participants: list[Participant], at: dt.datetime, change_reason: str, by: User | None = None
) -> None:
    """Stop every SMS to `participants`, whose rows the caller has locked: those not opted
    out yet are from `at` (with `change_reason` in their history), and whatever is still
    queued for any of them is cancelled. The sending task re-checks the opt-out too, so a
    message being sent right now is the only one that may leave."""
    for participant in participants:
        if participant.sms_opted_out_at is None:
            participant.sms_opted_out_at = at
            participant._change_reason = change_reason
            if by is not None:
                participant._history_user = by
            participant.save(update_fields=["sms_opted_out_at"])
    OutboundMessage.objects.filter(
        participant_id__in=[p.pk for p in participants], status=OutboundMessage.Status.QUEUED
    ).update(status=OutboundMessage.Status.CANCELLED, last_error=sms_recipients.OPTED_OUT)


def sms_opt_in(
    *, participants: list[Participant], change_reason: str, by: User | None = None
) -> None:
    """SMS to `participants` (rows locked by the caller) resume: those opted out are not
    any more, with `change_reason` in their history. Nothing is sent here."""
    for participant in participants:
        if participant.sms_opted_out_at is not None:
            participant.sms_opted_out_at = None
            participant._change_reason = change_reason
            if by is not None:
                participant._history_user = by
            participant.save(update_fields=["sms_opted_out_at"])


def _locked(participant: Participant) -> Participant:
    # Lock the participant row: an inbound STOP/START (which locks the same rows in
    # sms_receive) or the sending task cannot interleave with this change.
    return Participant.objects.select_for_update().get(pk=participant.pk)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say how the participant told you."})
    return reason


@transaction.atomic
def participant_sms_opt_out(
    *, participant: Participant, by: User, reason: str, now: dt.datetime | None = None
) -> Participant:
    """Record that the participant wants no more SMS, and cancel what is still queued."""
    reason = _reason(reason)
    locked = _locked(participant)
    if locked.sms_opted_out_at is not None:
        raise ValidationError(f"{locked} opted out of SMS already.")
    sms_opt_out(
        participants=[locked],
        at=now or timezone.now(),
        change_reason=f"Opted out of SMS, reported to staff: {reason}",
        by=by,
    )
    return locked


@transaction.atomic
def participant_sms_opt_in(*, participant: Participant, by: User, reason: str) -> Participant:
    """Record that the participant wants the SMS again. No confirmation SMS is sent (they
    told staff themselves); the next weekly round includes them."""
    reason = _reason(reason)
    locked = _locked(participant)
    if locked.sms_opted_out_at is None:
        raise ValidationError(f"{locked} is not opted out of SMS.")
    sms_opt_in(
        participants=[locked],
        change_reason=f"Opted back in to SMS, reported to staff: {reason}",
        by=by,
    )
    return locked
