"""Reads: what a user may see, and the configuration the services and forms work from."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from participants import status_reversal, status_rules
from participants.models import (
    Allocation,
    ContactAttempt,
    FactorLevelCount,
    Participant,
    ScreeningRecord,
    StatusChange,
    Visit,
)
from trial import roles
from trial.models import (
    Arm,
    BaselineVariable,
    EligibilityCriterion,
    MinimizationFactor,
    Trial,
    VisitDefinition,
)


@dataclass(frozen=True)
class LevelSpec:
    id: int
    code: str
    label: str
    lower: int | None
    upper: int | None
    site_id: int | None = None  # a site factor's level: the site it stands for


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

    def level_for_site(self, site_id: int) -> LevelSpec | None:
        return next((lv for lv in self.levels if lv.site_id == site_id), None)


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
    visits: tuple[VisitDefinition, ...]

    def site_levels(self, site_id: int) -> dict[str, str]:
        """{site factor code: the level of this site}: the one rule for a site factor's
        level (nothing to choose). Empty without a site factor, or if the site has no level
        yet (trial.site_levels makes them; randomization then says the factor is missing)."""
        levels = {}
        for factor in self.factors:
            if factor.kind == "site":
                level = factor.level_for_site(site_id)
                if level is not None:
                    levels[factor.code] = level.code
        return levels


# Per process: {(trial id, config version): TrialConfig}. Keyed on Trial.config_version,
# which every save or delete of this configuration bumps (trial.signals), so an entry is
# never stale: an edit makes a new key. Randomization reads the configuration on every call
# (and checks the version again under the trial lock); five queries' worth of ORM work is
# saved each time (make bench). The model instances in it are only read.
_CONFIGS_MAX = 64


def trial_config(trial: Trial) -> TrialConfig:
    """Arms, factors with levels, baseline variables and visit definitions of a trial, as
    of `trial.config_version` (so pass a trial row read in this transaction)."""
    return _cached_config(trial.pk, trial.config_version)


# Least recently used out when full (a clear-all would also drop the trials in use: the
# allocation benchmark's statement count caught one such refill); thread-safe.
@functools.lru_cache(maxsize=_CONFIGS_MAX)
def _cached_config(trial_id: int, config_version) -> TrialConfig:
    return _load_config(trial_id)


def _load_config(trial_id: int) -> TrialConfig:
    arms = tuple(Arm.objects.filter(trial_id=trial_id).order_by("order", "pk"))
    factors = tuple(
        FactorSpec(
            id=f.pk,
            code=f.code,
            name=f.name,
            kind=f.kind,
            variable_code=f.variable.code if f.variable_id else None,
            weight=float(f.weight),
            levels=tuple(
                LevelSpec(lv.pk, lv.code, lv.label, lv.lower, lv.upper, lv.site_id)
                for lv in f.levels.all()
            ),
        )
        for f in MinimizationFactor.objects.filter(trial_id=trial_id)
        .select_related("variable")
        .prefetch_related("levels")
        .order_by("order", "pk")
    )
    variables = tuple(
        VariableSpec(
            v.code, v.label, v.unit, v.min_value, v.max_value, v.eligible_min, v.eligible_max
        )
        for v in BaselineVariable.objects.filter(trial_id=trial_id).order_by("order", "pk")
    )
    visits = tuple(VisitDefinition.objects.filter(trial_id=trial_id))
    return TrialConfig(arms=arms, factors=factors, variables=variables, visits=visits)


def criteria_for(trial: Trial) -> list[EligibilityCriterion]:
    return list(EligibilityCriterion.objects.filter(trial=trial).order_by("-kind", "order", "pk"))


def participants_visible_to(user, trial: Trial) -> QuerySet[Participant]:
    """Participants of the sites the user works at, with what list pages show."""
    if not roles.can_view_participants(user, trial):
        return Participant.objects.none()
    return Participant.objects.filter(
        trial=trial, site__in=roles.sites_for(user, trial)
    ).select_related("site", "screening", "allocation__arm", "consent_document")


def screenings_visible_to(user, trial: Trial) -> QuerySet[ScreeningRecord]:
    if not roles.can_enroll(user, trial):
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
    # Per arm: what the allocation ratio gives `total` (total × ratio / sum of ratios).
    expected: tuple[float, ...]


@dataclass(frozen=True)
class BalanceTable:
    arms: tuple[Arm, ...]
    ratios: tuple[int, ...]  # per arm
    unequal: bool  # the arms' allocation ratios differ
    all_randomized: BalanceRow
    rows: tuple[BalanceRow, ...]


def balance_table(trial: Trial) -> BalanceTable:
    """Participants per arm, in all and per factor level, observed and expected under the
    allocation ratios, from the maintained counts (summed over each arm's slots).

    A fixed number of queries whatever the trial size. Only for roles that may see the
    running balance (see roles.can_view_balance).
    """
    config = trial_config(trial)
    arm_ids = [arm.pk for arm in config.arms]
    ratios = tuple(arm.allocation_ratio for arm in config.arms)
    totals_by_arm = dict(
        Allocation.objects.filter(trial=trial)
        .values("arm")
        .annotate(n=Count("pk"))
        .values_list("arm", "n")
    )
    stored: dict[tuple[int, int], int] = {}
    for level_id, arm_id, count in FactorLevelCount.objects.filter(trial=trial).values_list(
        "level_id", "arm_id", "count"
    ):
        stored[(level_id, arm_id)] = stored.get((level_id, arm_id), 0) + count

    def row(factor: str, level: str, counts: tuple[int, ...]) -> BalanceRow:
        total = sum(counts)
        expected = tuple(total * r / sum(ratios) for r in ratios) if ratios else ()
        return BalanceRow(factor, level, counts, total, expected)

    rows = [
        row(factor.name, level.label, tuple(stored.get((level.id, a), 0) for a in arm_ids))
        for factor in config.factors
        for level in factor.levels
    ]
    return BalanceTable(
        arms=config.arms,
        ratios=ratios,
        unequal=len(set(ratios)) > 1,
        all_randomized=row("", "", tuple(totals_by_arm.get(a, 0) for a in arm_ids)),
        rows=tuple(rows),
    )


# --- Follow-up --------------------------------------------------------------------------------

WORKLIST_BUCKETS = {
    "attention": "Due and overdue",
    "overdue": "Overdue",
    "due": "Due now",
    "upcoming": "Upcoming",
}


def _followup_visits(user, trial: Trial) -> QuerySet[Visit]:
    visits = Visit.objects.filter(trial=trial)
    if not roles.is_trial_manager(user, trial):
        visits = visits.filter(site__in=roles.sites_for(user, trial))
    return visits


def worklist(
    user,
    trial: Trial,
    *,
    bucket: str,
    today: dt.date,
    upcoming_days: int = 14,
    site_id: int | None = None,
    definition_id: int | None = None,
) -> QuerySet[Visit]:
    """Open visits needing attention, most urgent first, with what a coordinator needs to
    call: one query per page however large the trial (indexes visit_worklist_end/_start).

    "attention" and "overdue" sort by window end, so the most overdue come first and the
    due ones follow by how soon their window closes; "upcoming" sorts by window start.
    """
    visits = _followup_visits(user, trial).filter(outcome=Visit.Outcome.OPEN)
    if site_id:
        visits = visits.filter(site_id=site_id)
    if definition_id:
        visits = visits.filter(definition_id=definition_id)
    if bucket == "overdue":
        visits = visits.filter(window_end__lt=today).order_by("window_end", "pk")
    elif bucket == "due":
        visits = visits.filter(window_start__lte=today, window_end__gte=today).order_by(
            "window_end", "pk"
        )
    elif bucket == "upcoming":
        visits = visits.filter(
            window_start__gt=today, window_start__lte=today + dt.timedelta(days=upcoming_days)
        ).order_by("window_start", "pk")
    else:
        visits = visits.filter(window_start__lte=today).order_by("window_end", "pk")
    last_contact = ContactAttempt.objects.filter(participant=OuterRef("participant_id")).order_by(
        "-at", "-pk"
    )
    return visits.select_related("participant", "definition", "site").annotate(
        last_contact_at=Subquery(last_contact.values("at")[:1]),
        last_contact_result=Subquery(last_contact.values("result")[:1]),
    )


def worklist_counts(
    user,
    trial: Trial,
    *,
    today: dt.date,
    upcoming_days: int = 14,
    site_id: int | None = None,
    definition_id: int | None = None,
) -> dict:
    """How many open visits are overdue, due and upcoming under the same filters as the
    list: one aggregate query."""
    visits = _followup_visits(user, trial).filter(outcome=Visit.Outcome.OPEN)
    if site_id:
        visits = visits.filter(site_id=site_id)
    if definition_id:
        visits = visits.filter(definition_id=definition_id)
    return visits.aggregate(
        overdue=Count("pk", filter=Q(window_end__lt=today)),
        due=Count("pk", filter=Q(window_start__lte=today, window_end__gte=today)),
        upcoming=Count(
            "pk",
            filter=Q(
                window_start__gt=today,
                window_start__lte=today + dt.timedelta(days=upcoming_days),
            ),
        ),
    )


def participant_timeline(participant: Participant, today: dt.date) -> dict:
    """Visits with their status on `today` and whether their outcomes may be entered
    (`can_enter_outcomes`, participants.status_rules), contact attempts and status history: each
    change says whether it was reversed (`is_reversed`) and whether it is the one that may
    be reversed now (`can_reverse`, participants.status_reversal)."""
    visits = list(
        participant.visits.select_related("definition", "recorded_by").order_by("target_date")
    )
    in_followup = participant.in_followup
    for visit in visits:
        visit.status_today = visit.status(today)
        visit.can_enter_outcomes = status_rules.outcomes_enterable(
            in_followup=in_followup, visit_outcome=visit.outcome
        )
    changes = list(participant.status_changes.select_related("by", "reverses").order_by("at", "pk"))
    reversed_ids = {c.reverses_id for c in changes if c.reverses_id}
    latest = status_reversal.reversible(as_reversal_changes(changes))
    for change in changes:
        change.is_reversed = change.pk in reversed_ids
        change.can_reverse = latest is not None and change.pk == latest.id
    return {
        "visits": visits,
        "contacts": list(
            participant.contact_attempts.select_related("visit__definition", "by")[:100]
        ),
        "status_changes": changes,
        "reversible_change": next((c for c in changes if c.can_reverse), None),
    }


def as_reversal_changes(rows) -> list[status_reversal.Change]:
    """StatusChange rows (oldest first) as participants.status_reversal takes them."""
    return [
        status_reversal.Change(
            id=c.pk,
            from_status=c.from_status,
            to_status=c.to_status,
            effective_on=c.effective_on,
            followup_allowed=c.followup_allowed,
            reverses_id=c.reverses_id,
        )
        for c in rows
    ]


def reversible_change(participant: Participant) -> StatusChange | None:
    """The status change that may be reversed now: the latest still in effect."""
    rows = list(participant.status_changes.select_related("by").order_by("at", "pk"))
    latest = status_reversal.reversible(as_reversal_changes(rows))
    return next((c for c in rows if latest is not None and c.pk == latest.id), None)


def followup_summary(user, trial: Trial, today: dt.date) -> list[dict]:
    """Visits per definition by status on `today`: counts only, for statisticians too."""
    open_ = Q(outcome=Visit.Outcome.OPEN)
    rows = (
        _followup_visits(user, trial)
        .values("definition_id", "definition__label", "definition__order")
        .annotate(
            n_upcoming=Count("pk", filter=open_ & Q(window_start__gt=today)),
            n_due=Count("pk", filter=open_ & Q(window_start__lte=today, window_end__gte=today)),
            n_overdue=Count("pk", filter=open_ & Q(window_end__lt=today)),
            n_in_window=Count("pk", filter=Q(outcome=Visit.Outcome.COMPLETED, in_window=True)),
            n_late=Count("pk", filter=Q(outcome=Visit.Outcome.COMPLETED, in_window=False)),
            n_missed=Count("pk", filter=Q(outcome=Visit.Outcome.MISSED)),
            n_not_required=Count("pk", filter=Q(outcome=Visit.Outcome.NOT_REQUIRED)),
            n_total=Count("pk"),
        )
        .order_by("definition__order", "definition_id")
    )
    return list(rows)
