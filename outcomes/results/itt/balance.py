"""Minimization balance against what simple randomization would be expected to give.
Pure: no Django.

With unequal allocation ratios the balance of a level is measured on the deviations from
the ratio's split, n_k − n·w_k/S (S = the sum of the ratios): their range is 0 when the
level is split exactly in the ratio, and with equal ratios it is max − min of the counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from outcomes.results.itt.results import (
    EXACT_RANGE_MAX_N,
    SIMULATION_DRAWS,
    SIMULATION_SEED,
    Balance,
    BalanceRow,
)

# --- Minimization balance ------------------------------------------------------------------


@lru_cache(maxsize=64)
def _binomial_table(n: int, c: int) -> np.ndarray:
    """pmf[r, x] = P(Binomial(r, 1/c) = x) for r, x in 0..n."""
    r = np.arange(n + 1)
    return stats.binom.pmf(r[None, :], r[:, None], 1 / c)


def _all_within(n: int, k: int, lo: int, hi: int) -> float:
    """P(every cell of a multinomial(n, 1/k) holds lo..hi): distribute the balls cell by cell;
    with r balls left for c cells the next cell holds Binomial(r, 1/c)."""
    r = np.arange(n + 1)
    x = np.arange(lo, min(hi, n) + 1)
    rest = r[:, None] - x[None, :]
    valid = rest >= 0
    rest = np.clip(rest, 0, n)
    g = ((r >= lo) & (r <= hi)).astype(float)  # one cell left
    for c in range(2, k + 1):
        pmf = _binomial_table(n, c)[:, lo : min(hi, n) + 1]
        g = (pmf * np.where(valid, g[rest], 0.0)).sum(axis=1)
    return float(g[n])


@lru_cache(maxsize=4096)
def expected_range(n: int, k: int) -> tuple[float, str]:
    """Expected max - min of the arm counts among n participants under simple randomization
    to k equal arms, and "exact" or "simulated".

    1. k = 2: E|2X - n| with X ~ Binomial(n, 1/2), summed over the binomial.
    2. k > 2 and n <= EXACT_RANGE_MAX_N: E[max] - E[min] from the tail sums
       E[max] = sum_{m<n} (1 - P(all <= m)) and E[min] = sum_{m>=1} P(all >= m).
    3. Otherwise the mean range of SIMULATION_DRAWS multinomial draws, seed fixed.
    """
    if n <= 0 or k <= 1:
        return 0.0, "exact"
    if k == 2:
        x = np.arange(n + 1)
        return float((np.abs(2 * x - n) * stats.binom.pmf(x, n, 0.5)).sum()), "exact"
    if n <= EXACT_RANGE_MAX_N:
        ceiling = -(-n // k)  # P(max > m) = 1 while m < ceil(n/k)
        e_max = ceiling + sum(1 - _all_within(n, k, 0, m) for m in range(ceiling, n))
        e_min = sum(_all_within(n, k, m, n) for m in range(1, n // k + 1))
        return float(e_max - e_min), "exact"
    rng = np.random.default_rng(SIMULATION_SEED)
    draws = rng.multinomial(n, [1 / k] * k, size=SIMULATION_DRAWS)
    return float(np.ptp(draws, axis=1).mean()), "simulated"


@lru_cache(maxsize=4096)
def expected_deviation_range(n: int, ratios: tuple[int, ...]) -> tuple[float, str]:
    """Expected range of the deviations X_k − n·w_k/S of the arm counts from the ratio's
    split among n participants under simple randomization in the ratio (arm k with
    probability w_k/S), and "exact" or "simulated".

    1. Equal ratios: `expected_range` (the deviations differ from the counts by a constant).
    2. Two arms: the range is 2|X − nρ| with X ~ Binomial(n, ρ), summed over the binomial.
    3. Otherwise the mean range of SIMULATION_DRAWS multinomial draws, seed fixed.
    """
    k = len(ratios)
    if len(set(ratios)) <= 1:
        return expected_range(n, k)
    if n <= 0:
        return 0.0, "exact"
    rho = np.array(ratios, dtype=float) / sum(ratios)
    if k == 2:
        x = np.arange(n + 1)
        return float((2 * np.abs(x - n * rho[0]) * stats.binom.pmf(x, n, rho[0])).sum()), "exact"
    rng = np.random.default_rng(SIMULATION_SEED)
    draws = rng.multinomial(n, rho, size=SIMULATION_DRAWS)
    return float(np.ptp(draws - n * rho, axis=1).mean()), "simulated"


def minimization_balance(
    counts: Mapping[str, Mapping[str, Mapping[str, int]]] | pd.DataFrame,
    *,
    arms: Sequence[str],
    ratios: Sequence[int] | None = None,
) -> Balance:
    """Imbalance per factor level (max - min of the arm counts; with unequal `ratios`, one
    per arm, the range of the deviations from the ratio's split) against its expectation
    under simple randomization in the ratio, and both totals (sum over all levels of all
    factors; the expected total is a sum of expectations, valid whatever the correlation
    between factors).

    `counts` is {factor: {level: {arm: n}}} or a frame with columns factor, level, arm, n.
    """
    ratios = tuple(ratios) if ratios is not None else (1,) * len(arms)
    if len(ratios) != len(arms):
        raise ValueError(f"{len(ratios)} ratios for {len(arms)} arms")
    equal = len(set(ratios)) <= 1
    if isinstance(counts, pd.DataFrame):
        nested: dict[str, dict[str, dict[str, int]]] = {}
        for row in counts.itertuples(index=False):
            level = nested.setdefault(str(row.factor), {}).setdefault(str(row.level), {})
            level[row.arm] = level.get(row.arm, 0) + int(row.n)
        counts = nested
    rows = []
    for factor, levels in counts.items():
        for level, by_arm in levels.items():
            if set(by_arm) - set(arms):
                raise ValueError(f"Counts for an arm not in {list(arms)}: {factor} / {level}")
            row_counts = tuple(int(by_arm.get(a, 0)) for a in arms)
            n = sum(row_counts)
            expected, how = expected_deviation_range(n, ratios)
            if equal:
                imbalance = max(row_counts) - min(row_counts)
            else:
                split = [n * w / sum(ratios) for w in ratios]
                deviations = [c - e for c, e in zip(row_counts, split, strict=True)]
                imbalance = max(deviations) - min(deviations)
            rows.append(BalanceRow(factor, level, row_counts, n, imbalance, expected, how))
    return Balance(
        arms=tuple(str(a) for a in arms),
        rows=tuple(rows),
        total_imbalance=sum(r.imbalance for r in rows),
        expected_total=float(sum(r.expected_simple for r in rows)),
        ratios=ratios,
    )
