"""Reads: what a user may see, and the configuration the services and forms work from."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from participants.models import Allocation, FactorLevelCount, Participant, ScreeningRecord
from trial import roles
from trial.models import Arm, BaselineVariable, EligibilityCriterion, MinimizationFactor, Trial


@dataclass(frozen=True)
class LevelSpec:
    id: int
    code: str
    label: str
    lower: int | None
    upper: int | None


@dataclass(frozen=True)
class FactorSpec:
    id: int
    code: str
    name: str
    kind: str
    variable_code: str | None
    weight: float
    levels: tuple[LevelSpec, ...]

    def level(self, code: str) -> LevelSpec | None:
        return next((lv for lv in self.levels if lv.code == code), None)


@dataclass(frozen=True)
class VariableSpec:
    code: str
    label: str
    unit: str
    min_value: int
    max_value: int
    eligible_min: int | None
    eligible_max: int | None


@dataclass(frozen=True)
class TrialConfig:
    arms: tuple[Arm, ...]
    factors: tuple[FactorSpec, ...]
    variables: tuple[VariableSpec, ...]


def trial_config(trial: Trial) -> TrialConfig:
    """Arms, factors with levels and baseline variables of a trial: three queries."""
    arms = tuple(Arm.objects.filter(trial=trial).order_by("order", "pk"))
    factors = tuple(
        FactorSpec(
            id=f.pk,
            code=f.code,
            name=f.name,
            kind=f.kind,
            variable_code=f.variable.code if f.variable_id else None,
            weight=float(f.weight),
            levels=tuple(
                LevelSpec(lv.pk, lv.code, lv.label, lv.lower, lv.upper) for lv in f.levels.all()
            ),
        )
        for f in MinimizationFactor.objects.filter(trial=trial)
        .select_related("variable")
        .prefetch_related("levels")
        .order_by("order", "pk")
    )
    variables = tuple(
        VariableSpec(
            v.code, v.label, v.unit, v.min_value, v.max_value, v.eligible_min, v.eligible_max
        )
        for v in BaselineVariable.objects.filter(trial=trial).order_by("order", "pk")
    )
    return TrialConfig(arms=arms, factors=factors, variables=variables)


def criteria_for(trial: Trial) -> list[EligibilityCriterion]:
    return list(EligibilityCriterion.objects.filter(trial=trial).order_by("-kind", "order", "pk"))


def participants_visible_to(user, trial: Trial) -> QuerySet[Participant]:
    """Participants of the sites the user works at, with what list pages show."""
    if not roles.can_view_participants(user):
        return Participant.objects.none()
    return Participant.objects.filter(
        trial=trial, site__in=roles.sites_for(user, trial)
    ).select_related("site", "screening", "allocation__arm", "consent_document")


def screenings_visible_to(user, trial: Trial) -> QuerySet[ScreeningRecord]:
    if not roles.can_enroll(user):
        return ScreeningRecord.objects.none()
    return ScreeningRecord.objects.filter(
        trial=trial, site__in=roles.sites_for(user, trial)
    ).select_related("site", "screened_by")


@dataclass(frozen=True)
class BalanceRow:
    factor: str
    level: str
    counts: tuple[int, ...]  # per arm, in arm order
    total: int


def balance_table(trial: Trial) -> tuple[tuple[Arm, ...], tuple[int, ...], list[BalanceRow]]:
    """Arm totals and participants per factor level and arm, from the maintained counts.

    A fixed number of queries whatever the trial size. Only for roles that may see the
    running balance (see roles.can_view_balance).
    """
    config = trial_config(trial)
    arm_ids = [arm.pk for arm in config.arms]
    totals_by_arm = dict(
        Allocation.objects.filter(trial=trial)
        .values("arm")
        .annotate(n=Count("pk"))
        .values_list("arm", "n")
    )
    stored = {
        (row["level_id"], row["arm_id"]): row["count"]
        for row in FactorLevelCount.objects.filter(trial=trial).values(
            "level_id", "arm_id", "count"
        )
    }
    rows = []
    for factor in config.factors:
        for level in factor.levels:
            counts = tuple(stored.get((level.id, arm_id), 0) for arm_id in arm_ids)
            rows.append(BalanceRow(factor.name, level.label, counts, sum(counts)))
    return config.arms, tuple(totals_by_arm.get(a, 0) for a in arm_ids), rows
