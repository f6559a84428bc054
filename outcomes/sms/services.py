"""Writes of the outcomes app: the SMS outbox.

An SMS is queued (stored) in the caller's transaction and sent by a Celery task after that
transaction commits, so nothing is sent for work that rolled back, and a gateway outage
delays messages instead of losing them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from outcomes.sms import gateways as sms
from outcomes.sms import sms_recipients
from outcomes.sms.models import OutboundMessage
from participants.models import Participant

Status = OutboundMessage.Status

# Stored errors are for people reading the admin; a gateway's full response is not needed.
MAX_ERROR_LENGTH = 1000


def sms_queue(
    *,
    participant: Participant,
    body: str,
    kind: str,
    week_id: int | None = None,
    question_id: int | None = None,
) -> OutboundMessage:
    """Store an SMS to the participant's phone and send it once the transaction commits.

    One INSERT, atomic by itself, so no atomic block of its own: called inside the
    caller's transaction (an SMS reply, a reminder) a block would cost a savepoint and its
    release, two round trips, for nothing; called outside one, the row commits at once and
    the hand-off runs right after, as it would at the end of a block."""
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
        week_id=week_id,
        question_id=question_id,
        next_attempt_at=timezone.now(),
    )
    send_after_commit([message.pk])
    return message


def sms_queue_many(messages: list[OutboundMessage]) -> list[OutboundMessage]:
    """Store many unsaved messages in one INSERT (the weekly job) and send them after commit.
    The caller's transaction must be atomic; the messages are validated by the caller."""
    now = timezone.now()
    for message in messages:
        message.next_attempt_at = now
    created = OutboundMessage.objects.bulk_create(messages)
    send_after_commit([m.pk for m in created])
    return created


# The Celery task that sends one queued message (outcomes.sms.tasks.sms_send), connected by
# SmsConfig.ready: the tasks call this module's services, so this module does not import them.
_send_task = None


def connect_send_task(task) -> None:
    """Make `task` (its `.delay(message_id)`) the one that sends queued messages."""
    global _send_task
    _send_task = task


def send_after_commit(message_ids: list[int]) -> None:
    """Hand the messages to the sending task once the current transaction commits."""
    ids = list(message_ids)
    sms_send = _send_task

    # A named function, not a partial: Django logs a failing robust callback by __qualname__.
    def send_queued_messages() -> None:
        for message_id in ids:
            sms_send.delay(message_id)

    # robust: if the broker cannot be reached, the caller's work has committed all the same
    # and must not fail now; the messages stay queued and sms_send_stale picks them up.
    transaction.on_commit(send_queued_messages, robust=True)


# The weekly tracking's messages go to active participants only (outcomes.sms.tracking): one
# queued just before the participant was lost to follow-up or completed the trial must not
# go either. Visit reminders keep going to the lost, whom the site is still trying to reach.
TRACKING_KINDS = frozenset(
    {
        OutboundMessage.Kind.SMS_QUESTION,
        OutboundMessage.Kind.SMS_REMINDER,
        OutboundMessage.Kind.SMS_THANKS,
        OutboundMessage.Kind.SMS_CLARIFICATION,
        OutboundMessage.Kind.SMS_OPT_IN,
    }
)


def _why_not_send(message: OutboundMessage) -> str:
    """A reason this participant must get nothing now, or "" (outcomes.sms.sms_recipients)."""
    participant = message.participant
    if participant is None:
        return ""
    return sms_recipients.why_not_send(
        status=participant.status,
        status_label=participant.get_status_display(),
        opted_out=participant.sms_opted_out_at is not None,
        tracking=message.kind in TRACKING_KINDS,
        phone=participant.phone,
        to=message.to,
    )


def sms_send_now(*, message_id: int) -> str:
    """Send one queued message through the configured backend.

    Returns "sent"; "skipped" when the message is no longer queued (already sent or failed:
    a duplicate or retried task) or gone; "cancelled" when the participant must no longer
    get messages (opted out, withdrawn, deceased); "failed" when the gateway refused it for
    good.
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
            message = (
                OutboundMessage.objects.select_for_update(of=("self",))
                .select_related("participant")
                .filter(pk=message_id)
                .first()
            )
            if message is None or message.status != Status.QUEUED:
                return "skipped"
            why_not = _why_not_send(message)
            if why_not:
                OutboundMessage.objects.filter(pk=message_id).update(
                    status=Status.CANCELLED, last_error=why_not
                )
                return "cancelled"
            gateway_id = backend.send(to=message.to, body=message.body)
            # Conditional on "queued" as well, so nothing that bypassed the lock can turn a
            # failed message into a sent one or count a send twice.
            now = timezone.now()
            updated = OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(
                status=Status.SENT,
                sent_at=now,
                last_attempt_at=now,
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


@transaction.atomic
def sms_requeue_failed(*, message_ids: list[int], by) -> int:
    """Queue failed messages again once a person has fixed the cause (gateway credentials,
    an account limit): their attempts start over, the participant is checked again when each
    is sent, and who re-queued them is kept in the message's error field. Returns how many."""
    now = timezone.now()
    ids = list(
        OutboundMessage.objects.select_for_update()
        .filter(pk__in=message_ids, status=Status.FAILED)
        .values_list("pk", flat=True)
    )
    OutboundMessage.objects.filter(pk__in=ids).update(
        status=Status.QUEUED,
        attempts=0,
        next_attempt_at=now,
        last_error=Concat(
            Value(f"Re-queued by {by.get_username()} at {now:%Y-%m-%d %H:%M} UTC. Before: "),
            F("last_error"),
        ),
    )
    send_after_commit(ids)
    return len(ids)


def sms_give_up(*, message_id: int, error: str) -> bool:
    """Mark a still-queued message failed (retries exhausted). True if it was queued."""
    updated = OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(
        status=Status.FAILED, last_error=error[:MAX_ERROR_LENGTH]
    )
    return bool(updated)


def sms_retry_at(*, message_id: int, at) -> int:
    """Note when a still-queued message will be tried again; returns its attempts so far."""
    OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(next_attempt_at=at)
    return (
        OutboundMessage.objects.filter(pk=message_id).values_list("attempts", flat=True).first()
        or 0
    )


def _record_attempt(message_id: int, exc: Exception, *, status: str) -> None:
    # Outside the send transaction, which rolled back: the failed attempt must stay recorded.
    OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED).update(
        status=status,
        attempts=F("attempts") + 1,
        last_attempt_at=timezone.now(),
        last_error=(str(exc) or type(exc).__name__)[:MAX_ERROR_LENGTH],
    )


# Twilio's message statuses in the order they happen; a late callback for an earlier status
# (callbacks can arrive out of order) must not overwrite a later one.
DELIVERY_ORDER = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "undelivered": 4, "failed": 4, "delivered": 4, "receiving": 0, "received": 4, "read": 5,
    "canceled": 4,
}  # fmt: skip


def sms_delivery_status(*, gateway_message_id: str, status: str, error_code: str = "") -> bool:
    """Record the gateway's delivery report for a message; False if no message has that id."""
    status = (status or "").strip().lower()[:20]
    if not gateway_message_id or status not in DELIVERY_ORDER:
        return False
    with transaction.atomic():
        message = (
            OutboundMessage.objects.select_for_update()
            .filter(gateway_message_id=gateway_message_id)
            .first()
        )
        if message is None:
            return False
        current = DELIVERY_ORDER.get(message.delivery_status, -1)
        if DELIVERY_ORDER[status] >= current:
            message.delivery_status = status
            message.delivery_error_code = (error_code or "")[:20]
            message.delivery_updated_at = timezone.now()
            message.save(
                update_fields=["delivery_status", "delivery_error_code", "delivery_updated_at"]
            )
    return True
