"""Running totals of the weekly SMS answers, kept so the results dashboard reads a few
thousand rows instead of millions of answers."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from outcomes.sms.models.config import SmsQuestion


class SmsQuestionWeekTotal(models.Model):
    """Per question, SMS week number and arm: how many answers and their sum.

    Maintained with SmsParticipantTotal and SmsWeekTotal by outcomes.sms.sms_totals in the
    transaction that stores the answer (or opens the weeks), so the results dashboard reads
    a few thousand rows instead of millions of answers. `sms_totals_check` recounts them.
    """

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    question = models.ForeignKey(SmsQuestion, on_delete=models.PROTECT, related_name="+")
    week = models.PositiveSmallIntegerField()
    arm = models.ForeignKey("trial.Arm", on_delete=models.PROTECT, related_name="+")
    answers = models.PositiveIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsquestionweektotal"
        constraints = [
            models.UniqueConstraint(
                fields=["question", "week", "arm"], name="sms_question_week_total_once"
            ),
        ]
        indexes = [models.Index(fields=["trial"], name="sms_qw_total_trial")]

    def __str__(self) -> str:
        return f"{self.question} week {self.week} {self.arm}: {self.answers}"


class SmsParticipantTotal(models.Model):
    """Per participant and question: how many weeks answered and the answers' sum (the
    participant's mean for the dashboard's between-arm comparison). See SmsQuestionWeekTotal."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="+"
    )
    question = models.ForeignKey(SmsQuestion, on_delete=models.PROTECT, related_name="+")
    # The participant's allocated arm, copied (allocations never change): the dashboard
    # groups by it without joining a hundred thousand allocations.
    arm = models.ForeignKey("trial.Arm", on_delete=models.PROTECT, related_name="+")
    answers = models.PositiveIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsparticipanttotal"
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "question"], name="sms_participant_total_once"
            ),
        ]
        indexes = [models.Index(fields=["trial", "question"], name="sms_p_total_trial")]

    def __str__(self) -> str:
        return f"{self.participant} {self.question}: {self.answers}"


class SmsWeekTotal(models.Model):
    """Per SMS week number and arm: weeks opened (question sent), weeks with any answer,
    weeks fully answered — the response rates. See SmsQuestionWeekTotal."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    week = models.PositiveSmallIntegerField()
    arm = models.ForeignKey("trial.Arm", on_delete=models.PROTECT, related_name="+")
    sent = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)
    complete = models.PositiveIntegerField(default=0)

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsweektotal"
        constraints = [
            models.UniqueConstraint(fields=["trial", "week", "arm"], name="sms_week_total_once"),
            models.CheckConstraint(
                name="sms_week_total_consistent",
                condition=Q(answered__lte=F("sent")) & Q(complete__lte=F("answered")),
            ),
        ]

    def __str__(self) -> str:
        return f"week {self.week} {self.arm}: {self.answered}/{self.sent}"
