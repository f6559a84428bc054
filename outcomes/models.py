"""What we measure and conclude: instruments (configuration) and the SMS outbox.

Every SMS the system sends is first stored as an OutboundMessage (outcomes.services.sms_queue)
and then sent by a Celery task (outcomes.tasks.sms_send), so a message is never lost when the
gateway is down and never sent for a transaction that rolled back. The two-way SMS issue adds
inbound messages and delivery receipts, matched by `gateway_message_id`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


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


# --- Instruments (configuration) ------------------------------------------------------------


class EQ5DValueSet(models.Model):
    """An EQ-5D-3L value set as data, with its citation (outcomes.scoring.EQ5DValueSet).

    The UK TTO value set (Dolan 1997) is loaded by a migration; others are added here.
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    citation = models.TextField()
    coefficients = models.JSONField(
        help_text='{"constant": c, "n3": n, "decrements": {"MO": {"2": x, "3": y}, ...}}'
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "EQ-5D value set"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from outcomes import scoring

        try:
            scoring.EQ5DValueSet.from_dict(self.code, self.coefficients or {})
        except scoring.ScoringError as exc:
            raise ValidationError({"coefficients": str(exc)}) from exc


class Instrument(models.Model):
    """A measurement instrument of a trial and the visits at which it is due.

    The kind selects the form and the scoring rule (outcomes.scoring); everything else is
    configuration, so the next trial can reuse or add instruments without code.
    """

    class Kind(models.TextChoices):
        PAIN_NRS = "pain_nrs", "Pain, 0–10 numeric rating scale"
        RMDQ = "rmdq", "Roland–Morris Disability Questionnaire (23 items)"
        EQ5D_3L = "eq5d_3l", "EQ-5D-3L (5 dimensions + VAS)"
        GLOBAL_7 = "global_7", "Global assessment, 7-point transition"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="instruments")
    code = models.SlugField(max_length=30)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    visits = models.ManyToManyField(
        "trial.VisitDefinition",
        related_name="instruments",
        blank=True,
        help_text="The visits at which this instrument is due.",
    )
    value_set = models.ForeignKey(
        EQ5DValueSet,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="EQ-5D-3L only: the value set the index is computed from.",
    )
    primary = models.BooleanField(default=False, help_text="The trial's primary outcome.")
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords(m2m_fields=[visits])

    class Meta:
        ordering = ["trial", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="instrument_code_unique"),
            models.CheckConstraint(
                name="instrument_value_set_only_for_eq5d",
                condition=Q(kind="eq5d_3l", value_set__isnull=False)
                | (~Q(kind="eq5d_3l") & Q(value_set__isnull=True)),
            ),
        ]

    def __str__(self) -> str:
        return self.name


# --- Outcome data -----------------------------------------------------------------------------


class OutcomeEntry(models.Model):
    """One instrument's data at one visit: the responses as entered and their scores, or
    "not done" with the reason. Changing saved values needs a reason for change, kept with
    who and when in the history (simple-history's change reason)."""

    class NotDone(models.TextChoices):
        NOT_REACHED = "not_reached", "Not reached"
        REFUSED = "refused", "Refused"
        TOO_ILL = "too_ill", "Too ill"
        OTHER = "other", "Other"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="outcome_entries"
    )
    visit = models.ForeignKey(
        "participants.Visit", on_delete=models.PROTECT, related_name="outcome_entries"
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="entries")
    responses = models.JSONField(default=dict, blank=True)
    # Scores (outcomes.scoring): pain 0–10, RMDQ 0–23, EQ-5D index, global answer 1–7.
    score = models.FloatField(null=True, blank=True)
    eq5d_profile = models.CharField(max_length=5, blank=True)
    eq5d_vas = models.PositiveSmallIntegerField(null=True, blank=True)
    improved = models.BooleanField(null=True, blank=True)
    not_done = models.CharField(max_length=12, choices=NotDone.choices, blank=True)
    not_done_note = models.CharField(max_length=300, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["visit", "instrument__order"]
        constraints = [
            models.UniqueConstraint(fields=["visit", "instrument"], name="one_entry_per_visit"),
            models.CheckConstraint(
                name="entry_done_or_not_done",
                condition=Q(not_done="") | (Q(score__isnull=True) & Q(eq5d_vas__isnull=True)),
            ),
        ]
        indexes = [models.Index(fields=["trial", "instrument"])]
        verbose_name_plural = "outcome entries"

    def __str__(self) -> str:
        return f"{self.participant} {self.instrument.code} at {self.visit_id}"
