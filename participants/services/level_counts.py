"""The recount that audits randomization's maintained per-level counts (FactorLevelCount)
against the allocations themselves."""

from __future__ import annotations

from participants.models import Allocation, FactorLevelCount
from trial.models import FactorLevel, Trial


def recount_level_counts(trial: Trial) -> dict[tuple[int, int, int], int]:
    """Recount participants per (level id, arm id, slot) from the allocations themselves.

    Used by tests and audits to check the maintained FactorLevelCount rows.
    """
    levels = {
        (lv.factor.code, lv.code): lv.pk
        for lv in FactorLevel.objects.filter(factor__trial=trial).select_related("factor")
    }
    result: dict[tuple[int, int, int], int] = {}
    for factor_levels, arm_id, slot in Allocation.objects.filter(trial=trial).values_list(
        "factor_levels", "arm_id", "slot"
    ):
        for factor_code, level_code in factor_levels.items():
            key = (levels[(factor_code, level_code)], arm_id, slot)
            result[key] = result.get(key, 0) + 1
    return result


def stored_level_counts(trial: Trial) -> dict[tuple[int, int, int], int]:
    """The maintained counts, non-zero ones, keyed as recount_level_counts keys them."""
    return {
        (level_id, arm_id, slot): count
        for level_id, arm_id, slot, count in FactorLevelCount.objects.filter(
            trial=trial, count__gt=0
        ).values_list("level_id", "arm_id", "slot", "count")
    }
