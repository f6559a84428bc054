"""The SMS outbox and inbox: every message sent (or to send) and every message received.

Every SMS the system sends is first stored as an OutboundMessage (outcomes.sms.services.sms_queue)
and then sent by a Celery task (outcomes.sms.tasks.sms_send), so a message is never lost when the
gateway is down and never sent for a transaction that rolled back. Inbound messages and delivery
receipts are matched to it by `gateway_message_id`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from trial.models import text_length_check

SMS_BODY_MAX = 1600


class OutboundMessage(models.Model):
    """One SMS to send (or sent) to a participant, with its delivery state."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Not sent because, by the time it was due to go, the participant had opted out,
        # withdrawn or died (checked again at sending time).
        CANCELLED = "cancelled", "Cancelled"

    class Kind(models.TextChoices):
        VISIT_REMINDER = "visit_reminder", "Visit reminder"
        SMS_QUESTION = "sms_question", "Weekly question"
        SMS_REMINDER = "sms_reminder", "Weekly reminder"
        SMS_THANKS = "sms_thanks", "Thank-you"
        SMS_CLARIFICATION = "sms_clarification", "Clarification"
        SMS_OPT_IN = "sms_opt_in", "Opt-in confirmation"

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
    # Composed from the trial's SMS texts (each bounded in the admin); 1,600 characters is
    # the most the gateway takes in one message (Twilio's limit).
    body = models.TextField(max_length=SMS_BODY_MAX)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Calls made to the gateway for this message."
    )
    last_error = models.TextField(blank=True)
    gateway_message_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # When a send should next be tried: set at queueing and after each transient failure
    # (now + the retry delay). A queued message well past it has lost its task (broker
    # outage) and is picked up again by outcomes.sms.tasks.sms_send_stale.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # The gateway's own delivery report (status callback): queued, sent, delivered,
    # undelivered, failed, ... and its error code, if any.
    delivery_status = models.CharField(max_length=20, blank=True)
    delivery_error_code = models.CharField(max_length=20, blank=True)
    delivery_updated_at = models.DateTimeField(null=True, blank=True)
    # Weekly SMS tracking: the week and question this message belongs to.
    week = models.ForeignKey(
        "SmsWeek", on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    question = models.ForeignKey(
        "SmsQuestion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_outboundmessage"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                name="outbound_sent_has_time",
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
            ),
            models.CheckConstraint(name="outbound_has_body", condition=~Q(body="")),
            text_length_check("body", SMS_BODY_MAX, "outbound_body_length"),
            # The database guarantees one question, one reminder and one thank-you per
            # participant and week, whatever a re-run or a crashed job does.
            models.UniqueConstraint(
                fields=["week", "question"],
                condition=Q(kind="sms_question"),
                name="outbound_one_question_per_week",
            ),
            models.UniqueConstraint(
                fields=["week"], condition=Q(kind="sms_reminder"), name="outbound_one_reminder"
            ),
            models.UniqueConstraint(
                fields=["week"], condition=Q(kind="sms_thanks"), name="outbound_one_thanks"
            ),
        ]
        indexes = [
            # The stale sweeper: queued messages whose next try is overdue.
            models.Index(fields=["status", "next_attempt_at"], name="outbound_status_next"),
            # Delivery receipts find their message by the gateway's id.
            models.Index(fields=["gateway_message_id"], name="outbound_gateway_id"),
            # A participant's conversation, newest first.
            models.Index(fields=["participant", "-created_at"], name="outbound_participant"),
        ]

    def __str__(self) -> str:
        return f"SMS {self.pk} to {self.to} ({self.get_status_display().lower()})"


class InboundMessage(models.Model):
    """Every SMS received, raw, with what was made of it. Nothing is dropped: unreadable
    replies, late or extra answers and messages from unknown numbers are all kept here."""

    class Kind(models.TextChoices):
        ANSWER = "answer", "Answer"
        INVALID = "invalid", "Not understood"
        EXTRA = "extra", "Extra (week already answered)"
        NO_QUESTION = "no_question", "No question open"
        OPT_OUT = "opt_out", "Opt-out"
        OPT_IN = "opt_in", "Opt-in"
        UNKNOWN_NUMBER = "unknown_number", "Unknown number"
        NOT_TRACKED = "not_tracked", "Participant not tracked (withdrawn, deceased, opted out)"

    gateway_message_id = models.CharField(max_length=64, unique=True)
    trial = models.ForeignKey(
        "trial.Trial", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    participant = models.ForeignKey(
        "participants.Participant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inbound_messages",
    )
    from_number = models.CharField(max_length=64)
    to_number = models.CharField(max_length=64, blank=True)
    # The raw text as the gateway sent it, whole: never refused or cut (no length limit).
    body = models.TextField(blank=True)
    # True when `body` holds only the first 2,000 characters of what arrived (the limit
    # once applied when storing), so a reader knows the participant's text is incomplete.
    body_truncated = models.BooleanField(default=False)
    received_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    week = models.ForeignKey(
        "SmsWeek", on_delete=models.PROTECT, null=True, blank=True, related_name="inbound"
    )
    question = models.ForeignKey(
        "SmsQuestion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    value = models.SmallIntegerField(null=True, blank=True)
    reply = models.ForeignKey(
        OutboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_inboundmessage"
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["participant", "-received_at"], name="inbound_participant"),
            models.Index(fields=["trial", "kind", "-received_at"], name="inbound_trial_kind"),
        ]

    def __str__(self) -> str:
        return f"SMS from {self.from_number} ({self.get_kind_display().lower()})"
