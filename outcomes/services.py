"""Writes of the outcomes app: the SMS outbox.

An SMS is queued (stored) in the caller's transaction and sent by a Celery task after that
transaction commits, so nothing is sent for work that rolled back, and a gateway outage
delays messages instead of losing them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from outcomes import sms
from outcomes.models import OutboundMessage
from participants.models import Participant

Status = OutboundMessage.Status

# Stored errors are for people reading the admin; a gateway's full response is not needed.
MAX_ERROR_LENGTH = 1000


@transaction.atomic
def sms_queue(*, participant: Participant, body: str, kind: str) -> OutboundMessage:
    """Store an SMS to the participant's phone and send it once the transaction commits."""
    # Imported here: outcomes.tasks imports this module.
    from outcomes.tasks import sms_send

    if not participant.phone:
        raise ValidationError(f"{participant} has no mobile number to send an SMS to.")
    if not body.strip():
        raise ValidationError("An SMS needs a text.")
    if kind not in OutboundMessage.Kind.values:
        raise ValidationError(f"Unknown kind of SMS: {kind!r}.")
    message = OutboundMessage.objects.create(
        trial_id=participant.trial_id,
        participant=participant,
        to=participant.phone,
        body=body.strip(),
        kind=kind,
    )
    message_id = message.pk

    # A named function, not a partial: Django logs a failing robust callback by __qualname__.
    def send_after_commit() -> None:
        sms_send.delay(message_id)

    # robust: if the broker cannot be reached, the caller's work has committed all the same
    # and must not fail now; the message stays queued and sms_send_stale picks it up.
    transaction.on_commit(send_after_commit, robust=True)
    return message


def sms_send_now(*, message_id: int) -> str:
    """Send one queued message through the configured backend.

    Returns "sent"; "skipped" when the message is no longer queued (already sent or failed:
    a duplicate or retried task) or gone; "failed" when the gateway refused it for good.
    A TransientSmsError is recorded on the message and re-raised for the task to retry.
    """
    backend = sms.get_backend()
    try:
        with transaction.atomic():
            # Lock the row across the gateway call: a second delivery of the same task (a
            # redelivery after a worker restart, acks_late; a manual re-queue) waits here and
            # then finds the message sent, rather than sending it again. The lock covers one
            # row and the call is bounded by the gateway's timeout. (On SQLite the
            # IMMEDIATE transaction serializes instead.)
            message = OutboundMessage.objects.select_for_update().filter(pk=message_id).first()
            if message is None or message.status != Status.QUEUED:
                return "skipped"
            gateway_id = backend.send(to=message.to, body=message.body)
            # Conditional on "queued" as well, so nothing that bypassed the lock can turn a
            # failed message into a sent one or count a send twice.
            updated = OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(
                status=Status.SENT,
                sent_at=timezone.now(),
                gateway_message_id=gateway_id,
                attempts=F("attempts") + 1,
            )
            return "sent" if updated else "skipped"
    except sms.PermanentSmsError as exc:
        _record_attempt(message_id, exc, status=Status.FAILED)
        return "failed"
    except sms.TransientSmsError as exc:
        _record_attempt(message_id, exc, status=Status.QUEUED)
        raise


def sms_give_up(*, message_id: int, error: str) -> bool:
    """Mark a still-queued message failed (retries exhausted). True if it was queued."""
    updated = OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(
        status=Status.FAILED, last_error=error[:MAX_ERROR_LENGTH]
    )
    return bool(updated)


def _record_attempt(message_id: int, exc: Exception, *, status: str) -> None:
    # Outside the send transaction, which rolled back: the failed attempt must stay recorded.
    OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(
        status=status,
        attempts=F("attempts") + 1,
        last_error=(str(exc) or type(exc).__name__)[:MAX_ERROR_LENGTH],
    )
