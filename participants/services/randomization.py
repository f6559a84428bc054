"""Randomization by minimization, and the recount that audits its maintained counts."""

from __future__ import annotations

import random

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from participants import minimization
from participants.models import Allocation, FactorLevelCount, Participant
from participants.selectors import trial_config
from participants.services.common import require_recruiting
from participants.services.followup import visits_plan
from trial.models import FactorLevel, Site, Trial

# --- Randomization --------------------------------------------------------------------------


@transaction.atomic
def participant_randomize(
    *, participant: Participant, by, rng: random.Random | None = None
) -> tuple[Allocation, bool]:
    """Allocate the participant to an arm by minimization. Returns (allocation, created).

    Idempotent: a participant who already has an allocation gets that one back, so a
    double click, a refresh or a resubmitted form never allocates twice.
    """
    # 1. Lock the trial row. Minimization reads the per-level counts and the sequence
    #    counter; concurrent randomizations in the same trial must not see them change
    #    under them, so they queue here. (On SQLite, the IMMEDIATE transaction already
    #    holds the database write lock.) Everything from here to COMMIT holds that lock, so
    #    this function does as few statements as it can: the configuration comes from a
    #    per-process cache keyed on the locked row's config_version (trial_config), the
    #    site counter from the participant's row, visits and history rows in bulk.
    trial = Trial.objects.select_for_update().get(pk=participant.trial_id)
    # 2. Lock and re-read the participant (always trial first, then participant: every
    #    service that locks both takes them in this order) with its site and any
    #    allocation; a second request finds the first's allocation here and returns it.
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("site", "allocation__arm")
        .get(pk=participant.pk)
    )
    existing = getattr(participant, "allocation", None)
    if existing is not None:
        return existing, False

    # 3. Preconditions.
    if participant.status != Participant.Status.ENROLLED:
        raise ValidationError(
            f"This participant is {participant.get_status_display().lower()} and cannot be "
            "randomized.",
            code="not_enrolled",
        )
    require_recruiting(trial)
    if trial.allocation_count >= trial.target_sample_size:
        raise ValidationError(
            f"{trial.code} has reached its target of {trial.target_sample_size} participants; "
            "no more can be randomized.",
            code="target_reached",
        )
    if not participant.baseline_complete:
        raise ValidationError("Complete the baseline form before randomizing.", code="no_baseline")
    config = trial_config(trial)
    if len(config.arms) < 2:
        raise ValidationError("The trial needs at least two arms to randomize.", code="config")
    missing = [f.name for f in config.factors if f.code not in participant.factor_levels]
    if missing:
        raise ValidationError(
            f"Baseline lacks the minimization factor(s) {', '.join(missing)}; "
            "enter the baseline again.",
            code="no_baseline",
        )

    # 4. The patient's level of each factor, and the counts per arm with that level:
    #    (factors × arms) rows, independent of trial size.
    level_ids = {}
    for factor in config.factors:
        level = factor.level(participant.factor_levels[factor.code])
        if level is None:
            raise ValidationError(f"Stored level for {factor.name} no longer exists.")
        level_ids[factor.code] = level.id
    stored = {
        (level_id, arm_id): count
        for level_id, arm_id, count in FactorLevelCount.objects.filter(
            level_id__in=level_ids.values()
        ).values_list("level_id", "arm_id", "count")
    }
    missing_rows = [
        FactorLevelCount(trial=trial, level_id=level_id, arm=arm, count=0)
        for level_id in level_ids.values()
        for arm in config.arms
        if (level_id, arm.pk) not in stored
    ]
    if missing_rows:  # only while some level has never been seen in some arm
        FactorLevelCount.objects.bulk_create(missing_rows)
    arm_by_code = {arm.code: arm for arm in config.arms}
    counts = {
        factor: {arm.code: stored.get((level_id, arm.pk), 0) for arm in config.arms}
        for factor, level_id in level_ids.items()
    }
    weights = {f.code: f.weight for f in config.factors}

    # 5. Decide.
    decision = minimization.allocate(
        arms=[arm.code for arm in config.arms],
        counts=counts,
        weights=weights,
        measure=trial.imbalance_measure,
        p=float(trial.preferred_probability),
        rng=rng or random.SystemRandom(),
        simple_randomization=trial.allocation_count < trial.initial_random_allocations,
    )
    arm = arm_by_code[decision.arm]

    # 6. Write: sequence and per-site number (safe to read-then-write under the trial lock:
    #    only randomization changes them, and the site row was read after taking it), the
    #    allocation, the counts and the participant, all in this transaction.
    now = timezone.now()
    sequence = trial.allocation_count + 1
    Trial.objects.filter(pk=trial.pk).update(allocation_count=F("allocation_count") + 1)
    site = participant.site
    Site.objects.filter(pk=site.pk).update(randomized_count=F("randomized_count") + 1)
    number = f"{trial.code}-{site.code}-{site.randomized_count + 1:04d}"

    allocation = Allocation.objects.create(
        trial=trial,
        participant=participant,
        sequence=sequence,
        arm=arm,
        method=decision.method,
        factor_levels=dict(participant.factor_levels),
        counts_seen=counts,
        scores=decision.scores,
        probabilities=decision.probabilities,
        draw=decision.draw,
        settings_used={
            "imbalance_measure": trial.imbalance_measure,
            "preferred_probability": str(trial.preferred_probability),
            "initial_random_allocations": trial.initial_random_allocations,
            "weights": weights,
            "arms": [a.code for a in config.arms],
        },
        algorithm_version=minimization.ALGORITHM_VERSION,
        allocated_by=by,
        allocated_at=now,
    )
    updated = FactorLevelCount.objects.filter(level_id__in=level_ids.values(), arm=arm).update(
        count=F("count") + 1
    )
    if updated != len(level_ids):
        raise RuntimeError(f"expected {len(level_ids)} count rows to update, updated {updated}")

    participant.status = Participant.Status.ACTIVE
    participant.number = number
    participant.randomized_at = now
    participant.randomized_on = timezone.localdate(now, timezone=trial.zone)
    participant._history_user = by
    participant.save(update_fields=["status", "number", "randomized_at", "randomized_on"])
    # 7. The visit schedule, in the same transaction: no randomized participant without it.
    visits = visits_plan(participant=participant, by=by, definitions=config.visits)
    # 8. Baseline instruments entered before randomization belong to the baseline visit.
    _link_baseline_entries(participant, visits, by)
    allocation.participant = participant
    return allocation, True


def _link_baseline_entries(participant: Participant, visits: list, by) -> None:
    """Give the participant's visit-less outcome entries (the baseline instruments, entered
    at enrollment) the visit done at randomization at which each instrument is due. Without
    such a visit in the schedule they stay visit-less. One locking read, one UPDATE and one
    INSERT of history rows, whatever the number of instruments."""
    # Imported here, not at the top: outcomes builds on participants (its models and
    # services import ours), so a module-level import would make the two apps circular.
    from outcomes.models import OutcomeEntry

    at_randomization = {v.definition_id: v for v in visits if v.definition.at_randomization}
    if not at_randomization:
        return
    # order_by("pk"): the default ordering joins the (nullable) visit, and PostgreSQL
    # cannot lock the nullable side of an outer join.
    rows = (
        OutcomeEntry.objects.select_for_update(of=("self",))
        .filter(
            participant=participant,
            visit__isnull=True,
            instrument__visits__in=list(at_randomization),
        )
        .annotate(due_at=F("instrument__visits"))
        .order_by("pk")
    )
    linked = {}
    for entry in rows:
        if entry.pk not in linked:  # an instrument due at two such visits: the first
            entry.visit = at_randomization[entry.due_at]
            linked[entry.pk] = entry
    linked = list(linked.values())
    if linked:
        bulk_update_with_history(
            linked,
            OutcomeEntry,
            ["visit"],
            default_user=by,
            default_change_reason="Linked to the baseline visit at randomization",
        )


def recount_level_counts(trial: Trial) -> dict[tuple[int, int], int]:
    """Recount participants per (level id, arm id) from the allocations themselves.

    Used by tests and audits to check the maintained FactorLevelCount rows.
    """
    levels = {
        (lv.factor.code, lv.code): lv.pk
        for lv in FactorLevel.objects.filter(factor__trial=trial).select_related("factor")
    }
    result: dict[tuple[int, int], int] = {}
    for factor_levels, arm_id in Allocation.objects.filter(trial=trial).values_list(
        "factor_levels", "arm_id"
    ):
        for factor_code, level_code in factor_levels.items():
            key = (levels[(factor_code, level_code)], arm_id)
            result[key] = result.get(key, 0) + 1
    return result
