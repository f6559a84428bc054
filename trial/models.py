"""What a trial *is*: its sites, arms, eligibility criteria, baseline variables,
minimization factors and settings, consent documents and who works on it.

Everything that shapes allocation (arms and their allocation ratios, factors, levels,
minimization settings) is frozen once the first participant is randomized: changing it
afterwards would make the stored allocations impossible to replay. `ConfigurationLocked`
guards that in Python and the admin shows it read-only with the reason. One exception: a
site factor's level for a site added later comes into being with the site (a new level
that no earlier allocation saw changes nothing they replay with).
"""

from __future__ import annotations

import math
import secrets
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

LOCKED_REASON = (
    "Locked because participants have been randomized: arms, minimization factors and "
    "settings cannot change without making the stored allocations impossible to replay."
)


class ConfigurationLocked(ValidationError):
    """Raised on an attempt to change allocation-shaping configuration after randomization."""

    def __init__(self) -> None:
        super().__init__(LOCKED_REASON, code="configuration_locked")


# Limits of free text typed in trial configuration and on unblinding (see participants.models
# for the clinical pages' limits).
DESCRIPTION_MAX = 2000
UNBLINDING_REASON_MAX = 2000


def text_length_check(field: str, limit: int, name: str) -> models.CheckConstraint:
    """A database check that a TextField holds at most `limit` characters (its form field
    says so next to the field: give the TextField the same max_length)."""
    return models.CheckConstraint(name=name, condition=LessThanOrEqual(Length(field), limit))


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. Europe/Copenhagen).")


def new_config_version() -> int:
    return secrets.randbits(62)


# --- The bound on p for the arms' allocation ratios -------------------------------------------
#
# The rule is the minimization engine's (participants.minimization.preferred_probability_bound:
# p >= (S - 1)/S, S = the sum of the ratios), one layer above this app. The participants app
# hands it in when it loads (ParticipantsConfig.ready), so the trial's validation calls that
# one rule without importing upwards.
_preferred_probability_bound: Callable[[Iterable[int]], Fraction] | None = None


def use_preferred_probability_bound(bound: Callable[[Iterable[int]], Fraction]) -> None:
    global _preferred_probability_bound
    _preferred_probability_bound = bound


def allocation_design_errors(p: Decimal, ratios: Sequence[int]) -> list[str]:
    """Why p and these arms' allocation ratios cannot be minimized over together (none when
    they can)."""
    return [e for e in (common_factor_error(ratios), preferred_probability_error(p, ratios)) if e]


def common_factor_error(ratios: Sequence[int]) -> str | None:
    """Ratios with a common factor: 2:2 is 1:1 with twice the slots, which only lowers
    balance and raises the bound on p."""
    if len(ratios) < 2 or any(r is None or r < 1 for r in ratios):
        return None
    common = math.gcd(*ratios)
    if common == 1:
        return None
    return gettext(
        "The allocation ratios %(ratios)s have the common factor %(factor)d: enter them in "
        "lowest terms (%(lowest)s)."
    ) % {
        "ratios": ":".join(map(str, ratios)),
        "factor": common,
        "lowest": ":".join(str(r // common) for r in ratios),
    }


def preferred_probability_error(p: Decimal | None, ratios: Sequence[int]) -> str | None:
    """p below the minimization engine's bound for these ratios, said with the bound."""
    if p is None or len(ratios) < 2 or any(r is None or r < 1 for r in ratios):
        return None  # nothing to minimize over yet, or a field error reported by itself
    if _preferred_probability_bound is None:
        raise RuntimeError("the participants app has not registered the bound on p")
    bound = _preferred_probability_bound(ratios)
    if Fraction(p) >= bound:
        return None
    values = {
        "arms": len(ratios),
        "ratios": ":".join(map(str, ratios)),
        "slots": sum(ratios),
        "bound": f"{bound.numerator}/{bound.denominator}",
        # The least value a trial can store (three decimals) that meets the bound.
        "least": (Decimal(bound.numerator) / Decimal(bound.denominator)).quantize(
            Decimal("0.001"), rounding=ROUND_CEILING
        ),
        "p": p,
    }
    if all(r == 1 for r in ratios):
        message = ngettext(
            "With %(arms)d arm, the probability of the preferred arm must be at least "
            "%(bound)s (%(least)s), not %(p)s: below that an arm that worsens balance would "
            "be likelier than one that improves it.",
            "With %(arms)d arms, the probability of the preferred arm must be at least "
            "%(bound)s (%(least)s), not %(p)s: below that an arm that worsens balance would "
            "be likelier than one that improves it.",
            len(ratios),
        )
    else:
        message = gettext(
            "With allocation ratios %(ratios)s (%(slots)d slots), the probability of the "
            "preferred arm must be at least %(bound)s (%(least)s), not %(p)s: below that an "
            "arm that worsens balance would be likelier than one that improves it."
        )
    return message % values


# Allocation ratios run 1..MAX_RATIO: more slots only push the bound on p towards 1.
MAX_RATIO = 10


# --- Links within one trial -------------------------------------------------------------------
# A configuration object links only to objects of its own trial (a visit of trial MOD must
# never make an instrument of trial KNEE due). Validation says so next to the field; the
# database refuses it too (trial.same_trial).


def refuse_other_trials(trial_id: int | None, field: str, objects) -> None:
    """Raise a ValidationError on `field` naming each of `objects` (anything with a `trial`)
    that belongs to a trial other than `trial_id`."""
    foreign = [obj for obj in objects if obj is not None and obj.trial_id != trial_id]
    if trial_id is None or not foreign:
        return
    raise ValidationError(
        {
            field: [
                gettext("“%(name)s” belongs to trial %(code)s, not to this trial.")
                % {"name": obj, "code": obj.trial.code}
                for obj in foreign
            ]
        },
        code="other_trial",
    )


class TrialFixed(models.Model):
    """A configuration object that stays in the trial it was created in: its links (and
    anything recorded with it) were checked against that trial. Moving it would carry them
    into another trial unchecked."""

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if self.pk is None or self.trial_id is None:
            return
        stored = type(self).objects.filter(pk=self.pk).values_list("trial_id", flat=True).first()
        if stored is not None and stored != self.trial_id:
            raise ValidationError(
                {"trial": _("This cannot move to another trial: create it in that trial.")},
                code="trial_fixed",
            )


class MaintainedCounters(models.Model):
    """A model with counters kept by F() updates in services (under a row lock). A save of
    the whole instance (the admin's, say) must not write back the counter values it read
    earlier: a randomization committed in between would be undone and the next one would
    reuse its number. Updates of an existing row therefore leave `maintained` out, unless
    update_fields names them."""

    maintained: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.maintained
            ]
        return super().save(*args, **kwargs)


class Trial(MaintainedCounters):
    class Status(models.TextChoices):
        SETUP = "setup", "Set-up"
        RECRUITING = "recruiting", "Recruiting"
        CLOSED = "closed", "Closed"

    class ImbalanceMeasure(models.TextChoices):
        RANGE = "range", "Range (max − min)"
        VARIANCE = "variance", "Variance"
        SD = "sd", "Standard deviation"

    code = models.CharField(
        max_length=12,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9]{1,11}$", "Use 2–12 capital letters/digits.")],
        help_text="Short code used in URLs and participant numbers, e.g. MOD.",
    )
    name = models.CharField(max_length=300)
    registry_id = models.CharField("registry id", max_length=40, blank=True)
    target_sample_size = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SETUP)
    time_zone = models.CharField(
        max_length=64, default="Europe/Copenhagen", validators=[validate_time_zone]
    )
    # The lower bound of every screening date (and so of consent, randomization and
    # follow-up dates, which cannot precede screening). Entered by the trial manager rather
    # than taken from when the trial was set up here: a trials unit may move a trial into
    # Trialdesk after recruitment began elsewhere and enter its earlier screening log.
    recruitment_start = models.DateField(
        _("recruitment start"),
        help_text=_(
            "The first day patients could be screened for this trial (it may precede the day "
            "the trial was set up here). Screening dates before it are refused."
        ),
    )

    # Minimization settings (Pocock & Simon 1975).
    imbalance_measure = models.CharField(
        max_length=10, choices=ImbalanceMeasure.choices, default=ImbalanceMeasure.RANGE
    )
    preferred_probability = models.DecimalField(
        "probability of the preferred arm",
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.800"),
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("1"))],
        help_text="Chance that the arm minimizing imbalance is chosen. 0.8 is customary; "
        "1.0 is deterministic minimization, which staff can predict.",
    )
    deterministic_acknowledged = models.BooleanField(
        "I accept that deterministic minimization (p = 1) is predictable",
        default=False,
        help_text="Required for p = 1: with no random element, anyone who knows earlier "
        "allocations can predict the next one, and allocation concealment is lost.",
    )
    initial_random_allocations = models.PositiveIntegerField(
        default=0,
        help_text="Number of first participants allocated purely at random before "
        "minimization starts.",
    )

    visit_reminder_days = models.PositiveSmallIntegerField(
        "SMS reminder, days before a visit window opens",
        null=True,
        blank=True,
        help_text="Empty: participants get no visit reminders.",
    )

    # Maintained by participant_randomize under the trial row lock: the allocation sequence
    # number is allocation_count + 1, so reaching the target is one comparison, not a count.
    allocation_count = models.PositiveIntegerField(default=0, editable=False)
    # A new random value whenever the configuration randomization reads (arms, factors,
    # levels, baseline variables, visit definitions) is saved or deleted (trial.signals):
    # the per-process cache of that configuration (participants.selectors.trial_config) is
    # keyed on it, so it is never stale, and a randomization reads it with the trial row it
    # locks. Random, not a counter: a rolled-back edit must not leave a cached entry under a
    # value a later edit would reuse.
    config_version = models.BigIntegerField(default=new_config_version, editable=False)
    maintained = ("allocation_count", "config_version")

    # Blinding (trial.blinding): until a trial manager unblinds the trial, with a reason,
    # statisticians see the arms only as neutral codes (Arm.blind_code).
    unblinded_at = models.DateTimeField(null=True, blank=True, editable=False)
    unblinded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    unblinding_reason = models.TextField(
        blank=True, editable=False, max_length=UNBLINDING_REASON_MAX
    )

    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                name="trial_p_between_half_and_one",
                condition=Q(preferred_probability__gte=Decimal("0.5"))
                & Q(preferred_probability__lte=Decimal("1")),
            ),
            models.CheckConstraint(
                name="trial_deterministic_needs_acknowledgement",
                condition=Q(preferred_probability__lt=Decimal("1"))
                | Q(deterministic_acknowledged=True),
            ),
            models.CheckConstraint(
                name="trial_allocations_within_target",
                condition=Q(allocation_count__lte=models.F("target_sample_size")),
            ),
            models.CheckConstraint(
                name="trial_unblinding_recorded",
                condition=Q(unblinded_at__isnull=True)
                | (Q(unblinded_by__isnull=False) & ~Q(unblinding_reason="")),
            ),
            text_length_check(
                "unblinding_reason", UNBLINDING_REASON_MAX, "trial_unblinding_reason_length"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"

    @property
    def is_locked(self) -> bool:
        """True once anyone is randomized: allocation-shaping settings are then frozen."""
        return self.allocation_count > 0

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def allocation_ratios(self) -> dict[str, int]:
        """{arm code: allocation ratio} in the configured arm order."""
        return dict(self.arms.order_by("order", "pk").values_list("code", "allocation_ratio"))

    def clean(self) -> None:
        if self.preferred_probability == 1 and not self.deterministic_acknowledged:
            raise ValidationError(
                {
                    "deterministic_acknowledged": "p = 1 makes minimization deterministic and "
                    "predictable; tick this box to confirm that is intended."
                }
            )
        if self.pk:
            stored = Trial.objects.filter(pk=self.pk).values(*MINIMIZATION_SETTINGS).first()
            if stored and self.allocation_count > 0:
                changed = [f for f in MINIMIZATION_SETTINGS if stored[f] != getattr(self, f)]
                if changed:
                    raise ConfigurationLocked()
        pending = getattr(self, "_pending_formsets", {})  # the admin page's (trial.admin_forms)
        if self.pk and not self.allocation_count and Arm not in pending:
            # Against the stored arms, unless the page also edits the arms: then its arm
            # formset checks p against the arms the page leaves (trial.admin.ArmFormSet).
            # A locked trial's p and arms cannot change (one that v1 let through with a
            # lower p is refused by participants.services.common.require_recruiting).
            ratios = list(self.arms.values_list("allocation_ratio", flat=True))
            errors = allocation_design_errors(self.preferred_probability, ratios)
            if errors:
                raise ValidationError({"preferred_probability": errors})
        if self.pk and self.recruitment_start:
            earliest = (
                self.screenings.filter(screened_on__lt=self.recruitment_start)
                .order_by("screened_on")
                .values_list("screened_on", flat=True)
                .first()
            )
            if earliest is not None:
                raise ValidationError(
                    {
                        "recruitment_start": _(
                            "A patient was screened on %(date)s: recruitment cannot have "
                            "started after that."
                        )
                        % {"date": date_format(earliest)}
                    }
                )
        if self.pk and self.target_sample_size < self.allocation_count:
            raise ValidationError(
                {
                    "target_sample_size": f"{self.allocation_count} participants are already "
                    "randomized; the target cannot be below that."
                }
            )


MINIMIZATION_SETTINGS = (
    "imbalance_measure",
    "preferred_probability",
    "deterministic_acknowledged",
    "initial_random_allocations",
)


class FrozenAfterRandomization(models.Model):
    """Refuses saves and deletes once the trial has randomized anyone."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self._assert_editable()
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._assert_editable()
        return super().delete(*args, **kwargs)

    def _assert_editable(self) -> None:
        trial = self._trial_for_lock()
        # Re-read the count: the instance in memory may be stale.
        if Trial.objects.filter(pk=trial.pk, allocation_count__gt=0).exists():
            raise ConfigurationLocked()

    def _trial_for_lock(self) -> Trial:
        return self.trial


class Site(MaintainedCounters):
    maintained = ("randomized_count",)

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(
        max_length=4,
        validators=[RegexValidator(r"^[0-9A-Z]{1,4}$", "Use 1–4 digits or capital letters.")],
        help_text="Used in participant numbers, e.g. 01 → MOD-01-0007.",
    )
    name = models.CharField(max_length=200)
    # Per-site participant numbers; incremented under the trial row lock at randomization.
    randomized_count = models.PositiveIntegerField(default=0, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "code"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="site_code_unique_in_trial")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Arm(FrozenAfterRandomization):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(max_length=30)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=DESCRIPTION_MAX)
    order = models.PositiveSmallIntegerField(default=0)
    # Unequal allocation (2:1, 2:2:1) by Kuznetsova & Tymofyeyev's expansion: the arm is
    # this many slots in minimization (participants.minimization). 1 for every arm = equal.
    allocation_ratio = models.PositiveSmallIntegerField(
        _("allocation ratio"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RATIO)],
        help_text=_(
            "This arm's share in the allocation ratio, e.g. 2 and 1 for 2:1 allocation. Equal "
            "numbers for every arm: equal allocation."
        ),
    )
    # The neutral code ("A", "B", ...) blinded users see instead of the name: a random
    # mapping, drawn again whenever arms are added or removed before anyone is randomized
    # and fixed from then on (trial.blind_codes, trial.blinding.trial_assign_blind_codes).
    blind_code = models.CharField(max_length=2, blank=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "order", "pk"]
        constraints = [
            models.CheckConstraint(
                name="arm_allocation_ratio_in_range",
                condition=Q(allocation_ratio__gte=1) & Q(allocation_ratio__lte=MAX_RATIO),
            ),
            models.UniqueConstraint(fields=["trial", "code"], name="arm_code_unique_in_trial"),
            models.UniqueConstraint(
                fields=["trial", "blind_code"],
                condition=~Q(blind_code=""),
                name="arm_blind_code_unique_in_trial",
            ),
            text_length_check("description", DESCRIPTION_MAX, "arm_description_length"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self._assert_editable()  # a locked trial says so before anything else
        if self._state.adding and self.trial_id:
            # Adding arms only ever raises the bound on p, so whatever order a set of new
            # arms is saved in, each addition is allowed if the whole set is (the admin's
            # formset checks the set first; trial.admin).
            p = Trial.objects.filter(pk=self.trial_id).values_list(
                "preferred_probability", flat=True
            )[0]
            others = Arm.objects.filter(trial_id=self.trial_id).values_list(
                "allocation_ratio", flat=True
            )
            error = preferred_probability_error(p, [*others, self.allocation_ratio])
            if error:
                raise ValidationError(error, code="preferred_probability_bound")
        return super().save(*args, **kwargs)


class EligibilityCriterion(models.Model):
    class Kind(models.TextChoices):
        INCLUSION = "inclusion", "Inclusion"
        EXCLUSION = "exclusion", "Exclusion"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="criteria")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    question = models.CharField(max_length=300)
    ineligible_answer = models.BooleanField(
        help_text="The answer that makes the patient ineligible: usually “No” for inclusion "
        "criteria and “Yes” for exclusion criteria."
    )
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "-kind", "order", "pk"]  # inclusion before exclusion
        verbose_name_plural = "eligibility criteria"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.question}"


class BaselineVariable(models.Model):
    """A numeric value measured at baseline, e.g. age in years or current pain 0–10.

    min/max are the valid range (anything outside is a data-entry error); the optional
    eligible_min/eligible_max are the eligibility criteria (outside: not eligible).
    """

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="baseline_variables")
    code = models.SlugField(max_length=30)
    label = models.CharField(max_length=200)
    unit = models.CharField(max_length=30, blank=True)
    min_value = models.IntegerField()
    max_value = models.IntegerField()
    eligible_min = models.IntegerField(null=True, blank=True)
    eligible_max = models.IntegerField(null=True, blank=True)
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="baseline_code_unique"),
            models.CheckConstraint(
                name="baseline_min_le_max", condition=Q(min_value__lte=models.F("max_value"))
            ),
        ]

    def __str__(self) -> str:
        return self.label


class MinimizationFactor(TrialFixed, FrozenAfterRandomization):
    class Kind(models.TextChoices):
        CHOICE = "choice", _("Level chosen directly")
        DERIVED = "derived", _("Level derived from a baseline value by cut points")
        # One level per site, made and kept by trial.site_levels; nothing to choose.
        SITE = "site", _("Level is the participant's site")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="factors")
    code = models.SlugField(max_length=30)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHOICE)
    variable = models.ForeignKey(
        BaselineVariable,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="For derived factors: the baseline value the cut points apply to.",
    )
    weight = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="factor_code_unique"),
            models.CheckConstraint(name="factor_weight_positive", condition=Q(weight__gt=0)),
            models.CheckConstraint(
                name="factor_derived_has_variable",
                condition=(Q(kind="derived") & Q(variable__isnull=False))
                | (Q(kind__in=["choice", "site"]) & Q(variable__isnull=True)),
            ),
            # Two site factors would count every participant's site twice.
            models.UniqueConstraint(
                fields=["trial"], condition=Q(kind="site"), name="factor_one_site_factor"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.kind == self.Kind.DERIVED and self.variable_id is None:
            raise ValidationError({"variable": "A derived factor needs a baseline variable."})
        if self.kind == self.Kind.CHOICE and self.variable_id is not None:
            raise ValidationError({"variable": "Only derived factors use a baseline variable."})
        if self.kind == self.Kind.SITE:
            if self.variable_id is not None:
                raise ValidationError(
                    {"variable": _("A site factor's levels are the sites: it uses no variable.")}
                )
            others = MinimizationFactor.objects.filter(trial_id=self.trial_id, kind=self.kind)
            if self.trial_id and others.exclude(pk=self.pk).exists():
                raise ValidationError(
                    {"kind": _("This trial already has a site factor; it can have only one.")}
                )
            if self.pk and self.levels.filter(site__isnull=True).exists():
                raise ValidationError(
                    {
                        "kind": _(
                            "Delete this factor's levels first: a site factor's levels are "
                            "made from the sites."
                        )
                    }
                )
        elif self.pk and self.levels.filter(site__isnull=False).exists():
            raise ValidationError(
                {
                    "kind": _(
                        "This factor's levels are its sites: delete it and add a new factor "
                        "instead."
                    )
                }
            )
        if self.variable_id:
            refuse_other_trials(self.trial_id, "variable", [self.variable])


class FactorLevel(FrozenAfterRandomization):
    """A level of a factor. Derived levels cover [lower, upper): lower inclusive, upper
    exclusive, either open-ended when empty (age < 40 is upper=40; ≥ 40 is lower=40).
    A site factor's levels are its trial's sites, one each (`site`), with no cut points."""

    factor = models.ForeignKey(MinimizationFactor, on_delete=models.PROTECT, related_name="levels")
    code = models.SlugField(max_length=30)
    label = models.CharField(max_length=100)
    lower = models.IntegerField(null=True, blank=True, help_text="Inclusive lower cut point.")
    upper = models.IntegerField(null=True, blank=True, help_text="Exclusive upper cut point.")
    order = models.PositiveSmallIntegerField(default=0)
    # A site factor's level: the site it stands for. Deleting a site (possible only while it
    # has no participants, hence before any allocation used the level) deletes its level.
    site = models.ForeignKey(
        Site,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        editable=False,
        related_name="factor_levels",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["factor", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["factor", "code"], name="level_code_unique"),
            models.UniqueConstraint(
                fields=["factor", "site"], condition=Q(site__isnull=False), name="level_site_unique"
            ),
            models.CheckConstraint(
                name="level_lower_below_upper",
                condition=Q(lower__isnull=True)
                | Q(upper__isnull=True)
                | Q(lower__lt=models.F("upper")),
            ),
            models.CheckConstraint(
                name="level_site_has_no_cut_points",
                condition=Q(site__isnull=True) | (Q(lower__isnull=True) & Q(upper__isnull=True)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.factor.name}: {self.label}"

    def clean(self) -> None:
        if self.factor_id and self.factor.kind == MinimizationFactor.Kind.SITE:
            if self.site_id is None:
                raise ValidationError(
                    _("A site factor's levels are made from the trial's sites; add a site instead.")
                )
            if self.lower is not None or self.upper is not None:
                raise ValidationError(_("A site factor's levels have no cut points."))
        if self.factor_id and self.site_id:
            refuse_other_trials(self.factor.trial_id, "site", [self.site])

    def _assert_editable(self) -> None:
        # A site added after randomization started gets its level all the same: no earlier
        # allocation saw it, so they all replay as before, and the site's participants need it.
        if self._state.adding and self.site_id is not None:
            return
        super()._assert_editable()

    def _trial_for_lock(self) -> Trial:
        return self.factor.trial


class ConsentDocument(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=60)
    effective_from = models.DateField()
    active = models.BooleanField(default=True, help_text="Offered when recording consent.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "version"], name="consent_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.effective_from:%Y-%m-%d})"


class Membership(TrialFixed):
    """A user's place in a trial: the roles they hold in it and the sites they work at (none
    listed: every site of the trial). Roles are per trial (trial.roles): holding one in this
    trial gives nothing in another. Changed on the trial's team page by its trial managers
    (trial.services.membership_change), one history row per change (who, when, before and
    after). A membership with no role left grants nothing; it stays for its history."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trial_memberships"
    )
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="memberships")
    sites = models.ManyToManyField(Site, blank=True, help_text=_("Empty: all sites of the trial."))
    clinician = models.BooleanField(
        _("clinician"),
        default=False,
        help_text=_("Screens, consents, records baseline and randomizes at the listed sites."),
    )
    coordinator = models.BooleanField(
        _("coordinator"),
        default=False,
        help_text=_("Follow-up at the listed sites: worklist, outcomes, weekly SMS."),
    )
    statistician = models.BooleanField(
        _("statistician"),
        default=False,
        help_text=_("Results, balance and follow-up counts (blinded until unblinding)."),
    )
    trial_manager = models.BooleanField(
        _("trial manager"),
        default=False,
        help_text=_("Everything in this trial: its configuration, its team and unblinding."),
    )
    history = HistoricalRecords(m2m_fields=[sites])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "trial"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.trial.code}"


class VisitDefinition(models.Model):
    """A visit of the schedule: `offset_days` after the randomization date, with a window
    of `window_before` days before and `window_after` days after that target.

    Participants' visits are planned at randomization from the definitions then in force;
    changing a definition affects later participants (see manage.py replan_visits).
    """

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="visit_definitions")
    code = models.SlugField(max_length=30)
    label = models.CharField(max_length=100)
    offset_days = models.PositiveIntegerField(help_text="Days after the randomization date.")
    window_before = models.PositiveIntegerField(default=0)
    window_after = models.PositiveIntegerField(default=0)
    at_randomization = models.BooleanField(
        default=False,
        help_text="Done at enrollment (the baseline): recorded as completed on the "
        "randomization date.",
    )
    order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["trial", "order", "offset_days"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="visit_code_unique_in_trial"),
        ]

    def __str__(self) -> str:
        return self.label


class BlindingLog(models.Model):
    """Append-only audit of unblinding and of every view or export of unblinded results
    while the trial is blinded (trial managers may; each time is recorded)."""

    class Action(models.TextChoices):
        UNBLINDED = "unblinded", "Unblinded the trial"
        VIEWED = "viewed", "Viewed unblinded results"
        EXPORTED = "exported", "Exported unblinded data"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="blinding_log")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    what = models.CharField(max_length=200, blank=True, help_text="The page or export.")
    reason = models.TextField(blank=True, max_length=UNBLINDING_REASON_MAX)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["trial", "-at"], name="blinding_log_trial_at")]
        constraints = [
            models.CheckConstraint(
                name="blinding_log_unblinding_has_reason",
                condition=~Q(action="unblinded") | ~Q(reason=""),
            ),
            text_length_check("reason", UNBLINDING_REASON_MAX, "blinding_log_reason_length"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.get_action_display().lower()} ({self.trial.code})"
