"""What we measure and conclude. So far: the SMS outbox.

Every SMS the system sends is first stored as an OutboundMessage (outcomes.services.sms_queue)
and then sent by a Celery task (outcomes.tasks.sms_send), so a message is never lost when the
gateway is down and never sent for a transaction that rolled back. The two-way SMS issue adds
inbound messages and delivery receipts, matched by `gateway_message_id`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboundMessage(models.Model):
    """One SMS to send (or sent) to a participant, with its delivery state."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        VISIT_REMINDER = "visit_reminder", "Visit reminder"

    trial = models.ForeignKey(
        "trial.Trial", on_delete=models.PROTECT, related_name="outbound_messages"
    )
    # Null for messages to people who are not participants (e.g. staff alerts, later).
    participant = models.ForeignKey(
        "participants.Participant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="outbound_messages",
    )
    # Copied at queueing time: the message goes to the number we had when we decided to send.
    to = models.CharField("to (E.164)", max_length=16)
    body = models.TextField()
    kind = models.CharField(max_length=30, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Calls made to the gateway for this message."
    )
    last_error = models.TextField(blank=True)
    gateway_message_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                name="outbound_sent_has_time",
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
            ),
            models.CheckConstraint(name="outbound_has_body", condition=~Q(body="")),
        ]
        indexes = [
            # A sweeper or the admin finding what is still queued, oldest first.
            models.Index(fields=["status", "created_at"], name="outbound_status_created"),
        ]

    def __str__(self) -> str:
        return f"SMS {self.pk} to {self.to} ({self.get_status_display().lower()})"
