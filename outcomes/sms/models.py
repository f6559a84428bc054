"""What we measure and conclude: instruments (configuration) and the SMS outbox.

Every SMS the system sends is first stored as an OutboundMessage (outcomes.sms.services.sms_queue)
and then sent by a Celery task (outcomes.sms.tasks.sms_send), so a message is never lost when the
gateway is down and never sent for a transaction that rolled back. The two-way SMS issue adds
inbound messages and delivery receipts, matched by `gateway_message_id`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from simple_history.models import HistoricalRecords

from trial.models import TrialFixed, refuse_other_trials, text_length_check

SMS_BODY_MAX = 1600
CITATION_MAX = 1000


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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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


# --- Weekly SMS tracking (configuration) ------------------------------------------------------


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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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


# --- Weekly SMS tracking (data) ---------------------------------------------------------------


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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
    # Set on messages stored before bodies were kept whole (cut at 2,000 characters then).
    body_truncated = models.BooleanField(default=False)
    received_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    week = models.ForeignKey(
        SmsWeek, on_delete=models.PROTECT, null=True, blank=True, related_name="inbound"
    )
    question = models.ForeignKey(
        SmsQuestion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    value = models.SmallIntegerField(null=True, blank=True)
    reply = models.ForeignKey(
        OutboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
        db_table = "outcomes_inboundmessage"
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["participant", "-received_at"], name="inbound_participant"),
            models.Index(fields=["trial", "kind", "-received_at"], name="inbound_trial_kind"),
        ]

    def __str__(self) -> str:
        return f"SMS from {self.from_number} ({self.get_kind_display().lower()})"


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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
        db_table = "outcomes_smsanswer"
        verbose_name = "SMS answer"
        ordering = ["week", "question__order"]
        constraints = [
            models.UniqueConstraint(fields=["week", "question"], name="sms_answer_first_wins"),
        ]
        indexes = [models.Index(fields=["trial", "question"], name="sms_answer_trial")]

    def __str__(self) -> str:
        return f"{self.participant} week {self.week.week} {self.question.code}={self.value}"


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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
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
