"""Opt-out and opt-in of the weekly SMS reported to staff (by phone, in person), recorded by a
coordinator or trial manager. A participant's own STOP/START reply is handled in
outcomes.sms.tracking.sms_receive; this is the same change of state with who and why.

    participant_sms_opt_out   nothing more is sent; queued messages are cancelled
    participant_sms_opt_in    the weekly questions resume with the next weekly round
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from outcomes.sms.models import OutboundMessage
from participants.models import Participant


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
    locked.sms_opted_out_at = now or timezone.now()
    locked._change_reason = f"Opted out of SMS, reported to staff: {reason}"
    locked._history_user = by
    locked.save(update_fields=["sms_opted_out_at"])
    # As for a STOP reply: nothing queued goes out any more (the sending task re-checks
    # the opt-out too, so a message being sent right now is the only one that may leave).
    OutboundMessage.objects.filter(
        participant_id=locked.pk, status=OutboundMessage.Status.QUEUED
    ).update(status=OutboundMessage.Status.CANCELLED, last_error="Participant opted out of SMS.")
    return locked


@transaction.atomic
def participant_sms_opt_in(*, participant: Participant, by: User, reason: str) -> Participant:
    """Record that the participant wants the SMS again. No confirmation SMS is sent (they
    told staff themselves); the next weekly round includes them."""
    reason = _reason(reason)
    locked = _locked(participant)
    if locked.sms_opted_out_at is None:
        raise ValidationError(f"{locked} is not opted out of SMS.")
    locked.sms_opted_out_at = None
    locked._change_reason = f"Opted back in to SMS, reported to staff: {reason}"
    locked._history_user = by
    locked.save(update_fields=["sms_opted_out_at"])
    return locked
