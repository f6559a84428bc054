"""Instruments and outcome entries: what is measured at each visit, the EQ-5D value sets
it is scored with (outcomes.instruments.scoring), and the entered values."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from trial.models import TrialFixed, refuse_other_trials, text_length_check

CITATION_MAX = 1000


class _History(HistoricalRecords):
    """simple-history's records, with the table of the visits' history kept too.

    simple-history names that table after the app label and offers no option for it; it
    keeps the name it had in the flat outcomes app, like every other table here."""

    def get_meta_options_m2m(self, through_model):
        options = super().get_meta_options_m2m(through_model)
        options["db_table"] = f"outcomes_historical{through_model._meta.model_name}"
        return options


# --- Instruments (configuration) ------------------------------------------------------------


class EQ5DValueSet(models.Model):
    """An EQ-5D-3L value set as data, with its citation (outcomes.instruments.scoring.EQ5DValueSet).

    The UK TTO value set (Dolan 1997) is loaded by a migration; others are added here.
    """

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    citation = models.TextField(max_length=CITATION_MAX)
    coefficients = models.JSONField(
        help_text='{"constant": c, "n3": n, "decrements": {"MO": {"2": x, "3": y}, ...}}'
    )
    history = HistoricalRecords(table_name="outcomes_historicaleq5dvalueset")

    class Meta:
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
        db_table = "outcomes_eq5dvalueset"
        verbose_name = "EQ-5D value set"
        constraints = [text_length_check("citation", CITATION_MAX, "eq5d_citation_length")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from outcomes.instruments import scoring

        try:
            scoring.EQ5DValueSet.from_dict(self.code, self.coefficients or {})
        except scoring.ScoringError as exc:
            raise ValidationError({"coefficients": str(exc)}) from exc


class Instrument(TrialFixed):
    """A measurement instrument of a trial and the visits at which it is due.

    The kind selects the form and the scoring rule (outcomes.instruments.scoring); everything
    else is configuration, so the next trial can reuse or add instruments without code.
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
    baseline_variable = models.OneToOneField(
        "trial.BaselineVariable",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="source_instrument",
        help_text="The score entered at baseline (before randomization) is this baseline "
        "variable, e.g. baseline pain for a minimization factor. Pain and Roland–Morris only.",
    )
    order = models.PositiveSmallIntegerField(default=0)
    history = _History(m2m_fields=[visits], table_name="outcomes_historicalinstrument")

    class Meta:
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
        db_table = "outcomes_instrument"
        ordering = ["trial", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="instrument_code_unique"),
            models.CheckConstraint(
                name="instrument_baseline_variable_whole_score",
                condition=Q(baseline_variable__isnull=True) | Q(kind__in=["pain_nrs", "rmdq"]),
            ),
            models.CheckConstraint(
                name="instrument_value_set_only_for_eq5d",
                condition=Q(kind="eq5d_3l", value_set__isnull=False)
                | (~Q(kind="eq5d_3l") & Q(value_set__isnull=True)),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        # The visits it is due at are checked by the admin's form and the database
        # (outcomes.links): a many-to-many is saved after the instrument.
        if self.baseline_variable_id is not None:
            refuse_other_trials(self.trial_id, "baseline_variable", [self.baseline_variable])


# --- Outcome data -----------------------------------------------------------------------------


class NotDoneReason(models.TextChoices):
    NOT_REACHED = "not_reached", "Not reached"
    REFUSED = "refused", "Refused"
    TOO_ILL = "too_ill", "Too ill"
    OTHER = "other", "Other"


class OutcomeEntry(models.Model):
    """One instrument's data at one visit: the responses as entered and their scores, or
    "not done" with the reason. Changing saved values needs a reason for change, kept with
    who and when in the history (simple-history's change reason)."""

    NotDone = NotDoneReason

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="outcome_entries"
    )
    # Null for baseline instruments entered at enrollment, before randomization; set to the
    # baseline visit (VisitDefinition.at_randomization) when the participant is randomized.
    visit = models.ForeignKey(
        "participants.Visit",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="outcome_entries",
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="entries")
    responses = models.JSONField(default=dict, blank=True)
    # Scores (outcomes.instruments.scoring): pain 0–10, RMDQ 0–23, EQ-5D index, global answer 1–7.
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
    history = HistoricalRecords(table_name="outcomes_historicaloutcomeentry")

    class Meta:
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
        db_table = "outcomes_outcomeentry"
        ordering = ["visit", "instrument__order"]
        constraints = [
            models.UniqueConstraint(fields=["visit", "instrument"], name="one_entry_per_visit"),
            models.UniqueConstraint(
                fields=["participant", "instrument"],
                condition=Q(visit__isnull=True),
                name="one_baseline_entry_before_randomization",
            ),
            models.CheckConstraint(
                name="entry_done_or_not_done",
                condition=Q(not_done="") | (Q(score__isnull=True) & Q(eq5d_vas__isnull=True)),
            ),
            # The analysis reads the reason as its position in this list
            # (outcomes.results.analysis_data).
            models.CheckConstraint(
                name="entry_not_done_known",
                condition=Q(not_done__in=["", *NotDoneReason.values]),
            ),
        ]
        indexes = [models.Index(fields=["trial", "instrument"])]
        verbose_name_plural = "outcome entries"

    def __str__(self) -> str:
        return f"{self.participant} {self.instrument.code} at {self.visit_id}"
