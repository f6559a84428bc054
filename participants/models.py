"""What happens to a person: screening, consent, baseline, randomization."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from participants import status_rules
from participants.search import fold
from trial.models import Arm, FactorLevel, Site, Trial, text_length_check

# Limits of the free text users type (forms say so next to the field; the database refuses
# longer text: a CharField's length, a check constraint on a TextField's). Long enough for
# what each holds; a 5,000-character paste into a reason is an accident, not a reason.
REASON_MAX = 1000  # why a status changed, why a record was voided or a change reversed
REASON_FOR_CHANGE_MAX = 300  # a correction's reason (as the outcome entry page asks)
EARLY_REASON_MAX = 300  # why a visit was recorded ahead of its window
NOTE_MAX = 5000  # a contact attempt's note: what was said on the phone


class FoldedCopyField(models.TextField):
    """A copy of another field's text in search form (participants.search.fold), set
    whenever the row is saved or bulk-inserted (Django calls pre_save for both). Not
    editable: it is derived, never entered."""

    def __init__(self, *args, source: str = "", **kwargs):
        self.source = source
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        for key, value in (("editable", False), ("blank", True), ("default", "")):
            if kwargs.get(key, value) == value:
                kwargs.pop(key, None)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = fold(getattr(model_instance, self.source) or "")
        setattr(model_instance, self.attname, value)
        return value


class ScreeningRecord(models.Model):
    """One line of the screening log: a patient assessed for eligibility.

    Holds no direct identifiers (initials only); the screening log is reported in the
    CONSORT diagram as "assessed for eligibility".
    """

    class Outcome(models.TextChoices):
        INELIGIBLE = "ineligible", "Not eligible"
        ELIGIBLE = "eligible", "Eligible, awaiting consent"
        DECLINED = "declined", "Eligible, declined to participate"
        ENROLLED = "enrolled", "Consented and enrolled"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="screenings")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="screenings")
    initials = models.CharField(max_length=4)
    screened_on = models.DateField()
    # {criterion id (str): answer (bool)} as given on the checklist.
    answers = models.JSONField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    # Human-readable reasons, e.g. ["Inclusion not met: Age 18–60"]; empty when eligible.
    ineligibility_reasons = models.JSONField(default=list, blank=True)
    declined_reason = models.CharField(max_length=300, blank=True)
    screened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The one-time token of the form that created the record (a hidden field issued with the
    # empty form): a resubmission of the same form finds this record instead of adding a
    # second patient to the log. Unique in the database, so two submissions racing each other
    # cannot both insert. Null for records not entered through the form (demo, imports).
    form_token = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    # A record entered in error (a duplicate, the wrong patient) is voided by a trial manager
    # with the reason, never deleted: it stays in the log and the export, marked voided, and
    # is not counted as assessed for eligibility in the CONSORT diagram.
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    void_reason = models.CharField(max_length=REASON_MAX, blank=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-screened_on", "-pk"]
        indexes = [models.Index(fields=["trial", "site", "-screened_on"])]
        constraints = [
            models.UniqueConstraint(fields=["form_token"], name="screening_form_token_unique"),
            models.CheckConstraint(
                name="screening_void_recorded",
                condition=Q(voided_at__isnull=True, voided_by__isnull=True, void_reason="")
                | (Q(voided_at__isnull=False, voided_by__isnull=False) & ~Q(void_reason="")),
            ),
            # A screening that enrolled a participant is that participant's record: it is
            # corrected, or the participant withdrawn, never voided away.
            models.CheckConstraint(
                name="screening_voided_not_enrolled",
                condition=Q(voided_at__isnull=True) | ~Q(outcome="enrolled"),
            ),
        ]

    def __str__(self) -> str:
        return f"Screening {self.pk} ({self.initials}, {self.screened_on})"

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None


class Participant(models.Model):
    """An enrolled (consented) patient. Randomized once baseline is complete.

    `number` (e.g. MOD-01-0007) is assigned at randomization, per site and gap-free.
    """

    class Status(models.TextChoices):
        ENROLLED = "enrolled", "Enrolled (awaiting randomization)"
        ACTIVE = "active", "Active"
        WITHDRAWN = "withdrawn", "Withdrawn"
        LOST = "lost", "Lost to follow-up"
        DECEASED = "deceased", "Deceased"
        COMPLETED = "completed", "Completed"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="participants")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    screening = models.OneToOneField(
        ScreeningRecord, on_delete=models.PROTECT, related_name="participant"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ENROLLED)
    # NULL (not "") until randomized, so the unique constraint ignores unnumbered rows.
    number = models.CharField(max_length=30, null=True, blank=True, editable=False)  # noqa: DJ001

    consent_date = models.DateField()
    consent_document = models.ForeignKey(
        "trial.ConsentDocument", on_delete=models.PROTECT, related_name="+"
    )

    # Contact details: direct identifiers, never exported.
    full_name = models.CharField(max_length=200, blank=True)
    # The name as the participant search compares it (participants.search): kept in step
    # with full_name by the field itself and by save() below.
    search_name = FoldedCopyField(source="full_name")
    phone = models.CharField("mobile phone (E.164)", max_length=16, blank=True)

    # {variable code: int} and {factor code: level code}; frozen into the allocation.
    baseline = models.JSONField(default=dict, blank=True)
    factor_levels = models.JSONField(default=dict, blank=True)
    baseline_completed_at = models.DateTimeField(null=True, blank=True)

    # Set by participant_status_change (with a StatusChange row saying who, when and why).
    status_changed_on = models.DateField(null=True, blank=True)
    # False once a participant withdraws and refuses any further follow-up data collection.
    followup_allowed = models.BooleanField(default=True)

    # Weekly SMS tracking (outcomes.sms.tracking). Language: a code of the trial's SMS languages
    # ("" = the trial's default). Opted out by replying STOP (or recorded by staff); nothing
    # is sent while set. The missed-weeks count is maintained by the weekly job: consecutive
    # finished weeks without any valid answer (reset by an answer), for the worklist alert.
    sms_language = models.CharField("SMS language", max_length=8, blank=True)
    sms_opted_out_at = models.DateTimeField("SMS opted out at", null=True, blank=True)
    sms_missed_weeks = models.PositiveSmallIntegerField(default=0, editable=False)

    randomized_at = models.DateTimeField(null=True, blank=True)
    randomized_on = models.DateField(
        null=True, blank=True, help_text="Randomization date in the trial's time zone."
    )

    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["search_name"])  # derived from full_name

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "number"],
                condition=Q(number__isnull=False),
                name="participant_number_unique",
            ),
            models.CheckConstraint(
                name="participant_randomized_has_number",
                condition=Q(
                    number__isnull=True, randomized_at__isnull=True, randomized_on__isnull=True
                )
                | Q(number__isnull=False, randomized_at__isnull=False, randomized_on__isnull=False),
            ),
            # Enrolled means not yet randomized; the follow-up statuses need a randomization
            # (a consented participant who withdraws before randomization is "withdrawn").
            models.CheckConstraint(
                name="participant_status_matches_randomization",
                condition=Q(status="enrolled", randomized_at__isnull=True)
                | Q(
                    status__in=["active", "lost", "deceased", "completed"],
                    randomized_at__isnull=False,
                )
                | Q(status="withdrawn"),
            ),
            models.CheckConstraint(
                name="participant_consent_not_after_randomization",
                condition=Q(randomized_on__isnull=True)
                | Q(consent_date__lte=models.F("randomized_on")),
            ),
        ]
        indexes = [
            models.Index(fields=["trial", "site", "-created_at"]),
            models.Index(fields=["trial", "status"]),
            # Inbound SMS are matched to participants by the sender's number.
            models.Index(fields=["phone"], name="participant_phone"),
            # The weekly SMS job: active participants randomized in a date range.
            models.Index(fields=["trial", "status", "randomized_on"], name="participant_sms_due"),
            # The worklist's SMS alert: participants with weeks of silence. The condition is
            # outcomes.sms.sms_recipients.SILENT_AFTER_WEEKS (a lower layer cannot import it; a
            # test checks the two agree).
            models.Index(
                fields=["trial", "site"],
                condition=Q(sms_missed_weeks__gte=2),
                name="participant_sms_silent",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Enrolled #{self.pk}"

    def save(self, *args, **kwargs):
        # A save of named fields that include the name also writes its search form.
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "full_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "search_name"}
        return super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        """The participant number, or before randomization the screening initials and date
        (callers that list many participants select_related("screening"))."""
        if self.number:
            return self.number
        return f"{self.screening.initials}, screened {self.screening.screened_on:%Y-%m-%d}"

    @property
    def is_randomized(self) -> bool:
        return self.randomized_at is not None

    @property
    def in_followup(self) -> bool:
        """Visits can be recorded: randomized, and not withdrawn from follow-up or dead."""
        return status_rules.in_followup(
            status=self.status,
            randomized=self.is_randomized,
            followup_allowed=self.followup_allowed,
        )

    @property
    def baseline_complete(self) -> bool:
        return self.baseline_completed_at is not None


class Allocation(models.Model):
    """Append-only record of one randomization, with all it takes to replay and audit it.

    Never updated or deleted: the service only inserts, the admin is read-only, the model
    refuses save-on-existing and delete, and a database trigger (migration 0002) rejects
    UPDATE (and on PostgreSQL DELETE) of these rows.
    """

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="allocations")
    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, related_name="allocation"
    )
    sequence = models.PositiveIntegerField(help_text="1, 2, 3… within the trial, gap-free.")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="allocations")
    # Which of the arm's slots the draw picked (participants.minimization: an arm with
    # allocation ratio w is w slots); 1 with equal ratios. Minimization counts per slot.
    slot = models.PositiveSmallIntegerField(default=1, db_default=1)
    method = models.CharField(max_length=20)  # "minimization" or "random"
    factor_levels = models.JSONField()  # {factor code: level code}
    # Per arm, a number for an arm with ratio 1 and a list (one per slot) otherwise
    # (minimization.record): counts before this allocation {factor: {arm: n}}, total
    # weighted imbalance {arm: score} and probability {arm: p}.
    counts_seen = models.JSONField()
    scores = models.JSONField()
    probabilities = models.JSONField()
    draw = models.FloatField()  # the uniform [0, 1) draw that chose the arm
    # Settings in force: measure, p, weights, initial_random, arm order, ratios (v2).
    settings_used = models.JSONField()
    algorithm_version = models.CharField(max_length=40)
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    allocated_at = models.DateTimeField()

    class Meta:
        ordering = ["trial", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "sequence"], name="allocation_sequence_unique"
            ),
            models.CheckConstraint(
                name="allocation_draw_in_unit_interval", condition=Q(draw__gte=0) & Q(draw__lt=1)
            ),
            models.CheckConstraint(
                name="allocation_sequence_positive", condition=Q(sequence__gte=1)
            ),
            models.CheckConstraint(name="allocation_slot_positive", condition=Q(slot__gte=1)),
        ]
        indexes = [models.Index(fields=["trial", "arm"])]

    def __str__(self) -> str:
        return f"Allocation {self.sequence} of {self.trial.code}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Allocations are append-only and cannot be changed.")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Allocations are append-only and cannot be deleted.")


class FactorLevelCount(models.Model):
    """How many participants with this factor level are in this arm's slot (one slot per
    arm with equal ratios; see Allocation.slot).

    Maintained by participant_randomize in the same transaction as the allocation, so a
    randomization reads (factors × slots) rows however large the trial is.
    """

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    level = models.ForeignKey(FactorLevel, on_delete=models.PROTECT, related_name="counts")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")
    slot = models.PositiveSmallIntegerField(default=1, db_default=1)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "arm", "slot"], name="level_count_unique"),
            models.CheckConstraint(name="level_count_nonnegative", condition=Q(count__gte=0)),
            models.CheckConstraint(name="level_count_slot_positive", condition=Q(slot__gte=1)),
        ]

    def __str__(self) -> str:
        return f"{self.level} / {self.arm} ({self.slot}): {self.count}"


class StatusChange(models.Model):
    """Append-only history of a participant's status, with the reason for each change.

    Everyone randomized stays in the intention-to-treat population whatever this says. A
    change entered in error is reversed by a further row naming it (`reverses`,
    participants.status_reversal), never edited or deleted: the model refuses both.
    """

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="status_changes"
    )
    from_status = models.CharField(max_length=12, choices=Participant.Status.choices)
    to_status = models.CharField(max_length=12, choices=Participant.Status.choices)
    effective_on = models.DateField()
    reason = models.TextField(max_length=REASON_MAX)
    followup_allowed = models.BooleanField(
        null=True, blank=True, help_text="For withdrawals: may follow-up data still be collected?"
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    # Set on a reversal: the change entered in error that it reverses (at most once).
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversal"
    )

    class Meta:
        ordering = ["participant", "at", "pk"]
        constraints = [
            # A change changes something: the status, or (withdrawn → withdrawn) a
            # withdrawn participant's later refusal of any further follow-up, or the
            # reversal of that refusal.
            models.CheckConstraint(
                name="status_change_changes",
                condition=~Q(from_status=models.F("to_status"))
                | Q(to_status="withdrawn", followup_allowed=False)
                | Q(to_status="withdrawn", reverses__isnull=False),
            ),
            models.CheckConstraint(name="status_change_has_reason", condition=~Q(reason="")),
            text_length_check("reason", REASON_MAX, "status_change_reason_length"),
        ]

    def __str__(self) -> str:
        return f"{self.participant}: {self.from_status} → {self.to_status}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Status changes are append-only: record a reversal instead.")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Status changes are append-only: record a reversal instead.")


class Visit(models.Model):
    """One planned visit of a participant, with its target date and window.

    Dates are fixed when the visit is planned (at randomization), so a later change of the
    schedule affects only participants randomized afterwards unless re-planned on request.
    What the status *is* on a given day is derived from the dates (participants.schedule),
    so it is right without any periodic job; only what was recorded is stored (`outcome`).
    `trial` and `site` repeat the participant's so the worklist filters on one table.
    """

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"
        MISSED = "missed", "Missed"
        NOT_REQUIRED = "not_required", "Not required"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="visits")
    definition = models.ForeignKey(
        "trial.VisitDefinition", on_delete=models.PROTECT, related_name="visits"
    )
    target_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.OPEN)
    attended_on = models.DateField(null=True, blank=True)
    in_window = models.BooleanField(null=True, blank=True)
    missed_reason = models.CharField(max_length=300, blank=True)
    # Why the visit was recorded ahead of its window: attended before the window opened,
    # or missed before it closed (participants.schedule.early_recording). Confirmed by the
    # person recording it; empty otherwise.
    early_reason = models.CharField(
        _("reason for recording ahead of the window"), max_length=EARLY_REASON_MAX, blank=True
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_on = models.DateField(null=True, blank=True)
    # The status change that closed this visit ("not required" on death or withdrawal from
    # follow-up, "missed" on loss to follow-up), so reversing that change can open it again.
    closed_by = models.ForeignKey(
        "StatusChange",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="closed_visits",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["participant", "target_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "definition"], name="visit_once_per_definition"
            ),
            models.CheckConstraint(
                name="visit_window_contains_target",
                condition=Q(window_start__lte=models.F("target_date"))
                & Q(target_date__lte=models.F("window_end")),
            ),
            models.CheckConstraint(
                name="visit_completed_has_date",
                condition=(
                    Q(outcome="completed")
                    & Q(attended_on__isnull=False)
                    & Q(in_window__isnull=False)
                )
                | (~Q(outcome="completed") & Q(attended_on__isnull=True)),
            ),
            models.CheckConstraint(
                name="visit_missed_has_reason",
                condition=~Q(outcome="missed") | ~Q(missed_reason=""),
            ),
            # Attended before the window opened: only with a confirmed reason. (A miss
            # recorded before the window closed needs one too, but when it was recorded is
            # a local date the database cannot see; the service checks that.)
            models.CheckConstraint(
                name="visit_early_attendance_has_reason",
                condition=~Q(outcome="completed")
                | Q(attended_on__gte=models.F("window_start"))
                | ~Q(early_reason=""),
            ),
        ]
        indexes = [
            # The worklist: open visits of a trial by window, most urgent first.
            models.Index(fields=["trial", "outcome", "window_end"], name="visit_worklist_end"),
            models.Index(fields=["trial", "outcome", "window_start"], name="visit_worklist_start"),
        ]

    def __str__(self) -> str:
        return f"{self.participant} {self.definition.code}"

    def status(self, today) -> str:
        from participants import schedule

        return schedule.status(
            today=today,
            window_start=self.window_start,
            window_end=self.window_end,
            outcome=self.outcome,
        )


class ContactAttempt(models.Model):
    """A logged attempt to reach a participant (append-only)."""

    class Method(models.TextChoices):
        PHONE = "phone", "Phone call"
        SMS = "sms", "SMS"
        LETTER = "letter", "Letter"
        EMAIL = "email", "E-mail"

    class Result(models.TextChoices):
        REACHED = "reached", "Reached"
        NO_ANSWER = "no_answer", "No answer"
        MESSAGE = "message", "Left a message"
        WRONG_NUMBER = "wrong_number", "Wrong number or address"
        DECLINED = "declined", "Reached, declined the visit"
        OTHER = "other", "Other"

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="contact_attempts"
    )
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="contact_attempts"
    )
    method = models.CharField(max_length=10, choices=Method.choices)
    result = models.CharField(max_length=15, choices=Result.choices)
    note = models.TextField(blank=True, max_length=NOTE_MAX)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["participant", "-at"])]
        constraints = [text_length_check("note", NOTE_MAX, "contact_attempt_note_length")]

    def __str__(self) -> str:
        return f"{self.get_method_display()} to {self.participant}: {self.get_result_display()}"


class DigestLog(models.Model):
    """One coordinator digest per user, trial and day: the unique row makes the daily
    digest task idempotent (a second run that day finds it and sends nothing)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    due = models.PositiveIntegerField()
    overdue = models.PositiveIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "trial", "day"], name="one_digest_per_day")
        ]

    def __str__(self) -> str:
        return f"Digest for {self.user} ({self.trial.code}, {self.day})"
