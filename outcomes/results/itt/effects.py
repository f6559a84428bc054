"""Effect estimates: continuous outcomes (difference in means) and binary outcomes
(risk difference, adjusted odds ratio), one outcome at a time or several sharing their
adjusted models' work (outcomes.results.itt.adjusted). Pure: no Django."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from outcomes.results.itt import adjusted
from outcomes.results.itt._common import (
    _check_arms,
    _describe,
    _labels,
    _mean_sd,
    _not_estimable,
    _numeric,
    _pooled_difference,
)
from outcomes.results.itt.results import (
    ADJUSTED_OLS_METHOD,
    LOGIT_METHOD,
    NEWCOMBE_METHOD,
    WALD_METHOD,
    ArmProportion,
    ArmSummary,
    BinaryResult,
    ContinuousResult,
    Estimate,
    Outcome,
    Z,
)

# --- Continuous outcomes -------------------------------------------------------------------


def continuous_outcome(
    data: pd.DataFrame,
    *,
    outcome: str,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    factors: Sequence[str] = (),
    arm: str = "arm",
    label: str = "",
    visit: str = "",
) -> ContinuousResult:
    """Compare a continuous outcome between two arms.

    `data` has one row per randomized participant: `arm`, the outcome (NaN when missing),
    numeric `covariates` (the outcome's baseline value) and categorical `factors` (the
    minimization factors). The unadjusted difference is OLS of outcome on arm, which is the
    pooled-variance t-test; the adjusted one adds the covariates linearly and the factors as
    C() (ANCOVA; EMA guideline on adjustment for baseline covariates, 2015).
    """
    spec = Outcome(outcome, tuple(covariates), label, visit)
    return continuous_outcomes(data, [spec], arms=arms, labels=labels, factors=factors, arm=arm)[0]


def continuous_outcomes(
    data: pd.DataFrame,
    outcomes: Sequence[Outcome],
    *,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    factors: Sequence[str] = (),
    arm: str = "arm",
) -> list[ContinuousResult]:
    """continuous_outcome for each of `outcomes`, in order, each adjusted for its own
    covariates and the `factors`; the arms and factors are coded once and models over the
    same rows share one factorization (outcomes.results.itt.adjusted)."""
    _check_arms(data, arm, arms)
    names = _labels(arms, labels)
    in_arms = [(data[arm] == code).to_numpy() for code in arms]
    design = adjusted.Design(data, in_arms[1].astype(float), factors)
    parts, models = [], []
    for spec in outcomes:
        y = _numeric(data[spec.outcome]).to_numpy()
        covariates = [_numeric(data[name]).to_numpy() for name in spec.covariates]
        summaries, groups = [], []
        for code, name, in_arm in zip(arms, names, in_arms, strict=True):
            values = y[in_arm]
            values = values[~np.isnan(values)]
            groups.append(values)
            mean, sd = _mean_sd(values)
            summaries.append(ArmSummary(str(code), name, int(in_arm.sum()), len(values), mean, sd))
        rows = adjusted.model_rows(design, y, covariates)
        method = ADJUSTED_OLS_METHOD.format(covariates=_describe(spec.covariates, factors))
        models.append(adjusted.Model(y, covariates, rows, method))
        n_missing = int((~np.isnan(y)).sum() - rows.sum())
        parts.append((spec, summaries, _pooled_difference(groups[0], groups[1]), n_missing))
    adjusted.ols_fit(design, models)
    return [
        ContinuousResult(
            outcome=spec.outcome,
            label=spec.label or spec.outcome,
            visit=spec.visit,
            arms=(summaries[0], summaries[1]),
            unadjusted=unadjusted,
            adjusted=model.estimate,
            n_missing_covariate=n_missing,
        )
        for (spec, summaries, unadjusted, n_missing), model in zip(parts, models, strict=True)
    ]


# --- Binary outcomes -----------------------------------------------------------------------


def wilson_interval(events: int, n: int) -> tuple[float, float]:
    """Wilson score interval for a proportion (Wilson 1927); n must be positive."""
    p = events / n
    denominator = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def risk_difference(events0: int, n0: int, events1: int, n1: int) -> Estimate:
    """p1 - p0 with a Wald interval (truncated to [-1, 1]) and z test. When a proportion is
    0% or 100% the Wald SE collapses, so use Newcombe's hybrid score interval instead
    (Newcombe 1998, method 10) and give no p."""
    if n0 == 0 or n1 == 0:
        return _not_estimable(n0 + n1, WALD_METHOD, "An arm has no participants analysed.")
    p0, p1 = events0 / n0, events1 / n1
    difference = p1 - p0
    if p0 in (0.0, 1.0) or p1 in (0.0, 1.0):
        l0, u0 = wilson_interval(events0, n0)
        l1, u1 = wilson_interval(events1, n1)
        lower = difference - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
        upper = difference + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
        return Estimate(difference, lower, upper, None, n0 + n1, NEWCOMBE_METHOD)
    se = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    p = float(2 * stats.norm.sf(abs(difference) / se))
    # Wald overshoots in small samples; a risk difference lies in [-1, 1], so truncate.
    lower, upper = max(-1.0, difference - Z * se), min(1.0, difference + Z * se)
    return Estimate(difference, lower, upper, p, n0 + n1, WALD_METHOD)


def binary_outcome(
    data: pd.DataFrame,
    *,
    outcome: str,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    factors: Sequence[str] = (),
    arm: str = "arm",
    label: str = "",
    visit: str = "",
) -> BinaryResult:
    """Compare a 0/1 outcome (1 = event, e.g. "improved"; NaN missing) between two arms:
    risk difference (unadjusted) and odds ratio adjusted for `covariates` and `factors`."""
    spec = Outcome(outcome, tuple(covariates), label, visit)
    return binary_outcomes(data, [spec], arms=arms, labels=labels, factors=factors, arm=arm)[0]


def binary_outcomes(
    data: pd.DataFrame,
    outcomes: Sequence[Outcome],
    *,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    factors: Sequence[str] = (),
    arm: str = "arm",
) -> list[BinaryResult]:
    """binary_outcome for each of `outcomes`, in order, with the arms and factors coded
    once (outcomes.results.itt.adjusted)."""
    _check_arms(data, arm, arms)
    names = _labels(arms, labels)
    in_arms = [(data[arm] == code).to_numpy() for code in arms]
    design = adjusted.Design(data, in_arms[1].astype(float), factors)
    parts, models = [], []
    for spec in outcomes:
        y = _numeric(data[spec.outcome]).to_numpy()
        present = y[~np.isnan(y)]
        if not np.isin(present, [0.0, 1.0]).all():
            raise ValueError(f"{spec.outcome} must be 0/1 (or missing).")
        summaries = []
        for code, name, in_arm in zip(arms, names, in_arms, strict=True):
            values = y[in_arm]
            values = values[~np.isnan(values)]
            events, analysed = int(values.sum()), len(values)
            proportion = events / analysed if analysed else None
            summaries.append(
                ArmProportion(str(code), name, int(in_arm.sum()), analysed, events, proportion)
            )
        covariates = [_numeric(data[name]).to_numpy() for name in spec.covariates]
        rows = adjusted.model_rows(design, y, covariates)
        method = LOGIT_METHOD.format(covariates=_describe(spec.covariates, factors))
        models.append(adjusted.Model(y, covariates, rows, method))
        n_missing = int(len(present) - rows.sum())
        parts.append((spec, summaries, n_missing))
    adjusted.logit_fit(design, models)
    results = []
    for (spec, (reference, comparison), n_missing), model in zip(parts, models, strict=True):
        results.append(
            BinaryResult(
                outcome=spec.outcome,
                label=spec.label or spec.outcome,
                visit=spec.visit,
                arms=(reference, comparison),
                risk_difference=risk_difference(
                    reference.n_events,
                    reference.n_analysed,
                    comparison.n_events,
                    comparison.n_analysed,
                ),
                odds_ratio=model.estimate,
                n_missing_covariate=n_missing,
            )
        )
    return results
