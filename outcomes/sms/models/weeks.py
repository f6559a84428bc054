"""The weekly SMS data: each participant's weekly round and the answers it collected."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from outcomes.sms.models.config import SmsQuestion
from outcomes.sms.models.messages import InboundMessage


class SmsWeek(models.Model):
    """One participant's weekly round: opened when its first question is queued, current
    until the participant's next week opens (answers are accepted until then).

    `current_question` is the question awaiting an answer (null once all are answered).
    `trial` and `site` repeat the participant's so the weekly grid reads one table.
    """

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("trial.Site", on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="sms_weeks"
    )
    week = models.PositiveSmallIntegerField()
    send_date = models.DateField(help_text="The local date the week's first question went.")
    opened_at = models.DateTimeField()
    current_question = models.ForeignKey(
        SmsQuestion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    answered = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    clarifications = models.PositiveSmallIntegerField(default=0)

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsweek"
        verbose_name = "SMS week"
        ordering = ["participant", "week"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "week"], name="sms_week_once"),
            models.CheckConstraint(name="sms_week_positive", condition=Q(week__gte=1)),
            models.CheckConstraint(
                name="sms_week_complete_has_no_question",
                condition=Q(completed_at__isnull=True) | Q(current_question__isnull=True),
            ),
        ]
        indexes = [
            # The weekly grid: a site's weeks by send date.
            models.Index(fields=["trial", "send_date", "site"], name="sms_week_grid"),
            # The reminder job: open weeks without a reminder, oldest first.
            models.Index(
                fields=["opened_at"],
                condition=Q(completed_at__isnull=True, reminder_sent_at__isnull=True),
                name="sms_week_needs_reminder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} SMS week {self.week}"


class SmsAnswer(models.Model):
    """The value of one question for one participant and week: the first valid answer."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="sms_answers"
    )
    week = models.ForeignKey(SmsWeek, on_delete=models.PROTECT, related_name="answers")
    question = models.ForeignKey(SmsQuestion, on_delete=models.PROTECT, related_name="answers")
    value = models.SmallIntegerField()
    message = models.OneToOneField(InboundMessage, on_delete=models.PROTECT, related_name="answer")
    answered_at = models.DateTimeField()

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsanswer"
        verbose_name = "SMS answer"
        ordering = ["week", "question__order"]
        constraints = [
            models.UniqueConstraint(fields=["week", "question"], name="sms_answer_first_wins"),
        ]
        indexes = [models.Index(fields=["trial", "question"], name="sms_answer_trial")]

    def __str__(self) -> str:
        return f"{self.participant} week {self.week.week} {self.question.code}={self.value}"
