"""The weekly SMS configuration of a trial: when the questions go, in which languages, and
the questions with their valid ranges and texts."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from simple_history.models import HistoricalRecords

from trial.models import TrialFixed, refuse_other_trials


class SmsSchedule(TrialFixed):
    """When a trial's weekly SMS questions go out (outcomes.sms.tracking)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    trial = models.OneToOneField(
        "trial.Trial", on_delete=models.PROTECT, related_name="sms_schedule"
    )
    enabled = models.BooleanField(default=True)
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    send_time = models.TimeField(help_text="Local time in the trial's time zone.")
    weeks = models.PositiveSmallIntegerField(
        help_text="How many weekly rounds each participant gets; week 1 is the first send "
        "day after the randomization date."
    )
    reminder_after_hours = models.PositiveSmallIntegerField(
        default=24, help_text="One reminder when a week's questions are unanswered this long."
    )
    max_clarifications = models.PositiveSmallIntegerField(
        default=3,
        help_text="Clarifying replies per participant and week at most (guards against "
        "loops with auto-responders); further unreadable replies are only logged.",
    )
    default_language = models.CharField(
        max_length=8, help_text="Language code used when a participant has none."
    )
    history = HistoricalRecords(table_name="outcomes_historicalsmsschedule")

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsschedule"
        verbose_name = "SMS schedule"
        constraints = [
            models.CheckConstraint(name="sms_schedule_weekday", condition=Q(weekday__lte=6)),
            models.CheckConstraint(name="sms_schedule_weeks", condition=Q(weeks__gte=1)),
            models.CheckConstraint(
                name="sms_schedule_reminder_delay",
                condition=Q(reminder_after_hours__gte=1) & Q(reminder_after_hours__lte=144),
            ),
        ]

    def __str__(self) -> str:
        return f"Weekly SMS of {self.trial.code}"

    def clean(self) -> None:
        super().clean()
        if (
            self.trial_id is not None
            and self.default_language
            and not SmsLanguage.objects.filter(
                trial_id=self.trial_id, code=self.default_language
            ).exists()
        ):
            raise ValidationError(
                {
                    "default_language": gettext(
                        "This trial has no SMS language “%(code)s”: add it under SMS "
                        "languages first, or use one of its codes."
                    )
                    % {"code": self.default_language}
                }
            )


class SmsLanguage(TrialFixed):
    """The fixed texts of the weekly SMS in one language. `clarification` may use {min}
    and {max} (the question's valid range); `reminder` is put before the question."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="sms_languages")
    code = models.CharField(max_length=8, help_text='e.g. "da", "en"')
    name = models.CharField(max_length=50)
    reminder = models.CharField(max_length=160, help_text='e.g. "Reminder:"')
    thanks = models.CharField(max_length=300)
    clarification = models.CharField(max_length=300)
    opted_in = models.CharField(max_length=300, help_text="Reply to START.")
    history = HistoricalRecords(table_name="outcomes_historicalsmslanguage")

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smslanguage"
        verbose_name = "SMS language"
        ordering = ["trial", "code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="sms_language_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        try:
            self.clarification.format(min=0, max=7)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValidationError(
                {"clarification": "Only {min} and {max} may appear in braces."}
            ) from exc


class SmsQuestion(TrialFixed):
    """A weekly question, asked in `order`, whose valid answers are the whole numbers
    min_value..max_value. Texts per language in SmsQuestionText."""

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="sms_questions")
    code = models.SlugField(max_length=30)
    label = models.CharField(max_length=200, help_text="Short label for screens and exports.")
    order = models.PositiveSmallIntegerField(default=0)
    min_value = models.SmallIntegerField(default=0)
    max_value = models.SmallIntegerField(default=7)
    history = HistoricalRecords(table_name="outcomes_historicalsmsquestion")

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsquestion"
        verbose_name = "SMS question"
        ordering = ["trial", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="sms_question_unique"),
            models.CheckConstraint(
                name="sms_question_range", condition=Q(min_value__lte=models.F("max_value"))
            ),
        ]

    def __str__(self) -> str:
        return self.label


class SmsQuestionText(models.Model):
    question = models.ForeignKey(SmsQuestion, on_delete=models.CASCADE, related_name="texts")
    language = models.ForeignKey(SmsLanguage, on_delete=models.CASCADE, related_name="texts")
    text = models.CharField(max_length=300)
    history = HistoricalRecords(table_name="outcomes_historicalsmsquestiontext")

    class Meta:
        # Named after the outcomes app (outcomes.sms.models says why).
        db_table = "outcomes_smsquestiontext"
        verbose_name = "SMS question text"
        constraints = [
            models.UniqueConstraint(
                fields=["question", "language"], name="sms_question_text_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.text

    def clean(self) -> None:
        super().clean()
        # In an inline, the parent may be unsaved: compare the objects, not only their ids.
        question = self.question if self.question_id or _has(self, "question") else None
        language = self.language if self.language_id or _has(self, "language") else None
        if question is not None and language is not None and question.trial_id is not None:
            refuse_other_trials(question.trial_id, "language", [language])


def _has(instance: models.Model, name: str) -> bool:
    """Whether the foreign key `name` holds an object (saved or not)."""
    return instance._meta.get_field(name).get_cached_value(instance, None) is not None
