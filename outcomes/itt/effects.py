"""Effect estimates: continuous outcomes (difference in means) and binary outcomes
(risk difference, adjusted odds ratio). Pure: no Django."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.discrete.discrete_model import Logit  # (statsmodels.api: +38 MB, 0.4 s)
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    HessianInversionWarning,
    PerfectSeparationError,
    PerfectSeparationWarning,
)

from outcomes.itt._common import (
    _check_arms,
    _describe,
    _design,
    _identifiable,
    _labels,
    _mean_sd,
    _model_frame,
    _not_estimable,
    _num,
    _numeric,
    _ols_adjusted,
    _pooled_difference,
)
from outcomes.itt.results import (
    ADJUSTED_OLS_METHOD,
    CONFIDENCE,
    LOGIT_METHOD,
    MAX_LOG_ODDS,
    NEWCOMBE_METHOD,
    WALD_METHOD,
    ArmProportion,
    ArmSummary,
    BinaryResult,
    ContinuousResult,
    Estimate,
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
    _check_arms(data, arm, arms)
    names = _labels(arms, labels)
    y = _numeric(data[outcome])
    summaries, groups = [], []
    for code, name in zip(arms, names, strict=True):
        in_arm = data[arm] == code
        values = y[in_arm].dropna().to_numpy()
        groups.append(values)
        mean, sd = _mean_sd(values)
        summaries.append(ArmSummary(str(code), name, int(in_arm.sum()), len(values), mean, sd))
    treat = (data[arm] == arms[1]).astype(float)
    used, terms, n_missing = _model_frame(data, y, treat, covariates, factors)
    method = ADJUSTED_OLS_METHOD.format(covariates=_describe(covariates, factors))
    return ContinuousResult(
        outcome=outcome,
        label=label or outcome,
        visit=visit,
        arms=(summaries[0], summaries[1]),
        unadjusted=_pooled_difference(groups[0], groups[1]),
        adjusted=_ols_adjusted(used, terms, method),
        n_missing_covariate=n_missing,
    )


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


def _logit_adjusted(used: pd.DataFrame, terms: Sequence[str], method: str) -> Estimate:
    """Adjusted odds ratio; separation and non-convergence give None with a reason."""
    n = len(used)
    exog = _design(used, terms)
    reason = _identifiable(used, exog)
    if reason:
        return _not_estimable(n, method, reason)
    by_arm = used.groupby("treat")["y"].agg(["sum", "count"])
    if ((by_arm["sum"] == 0) | (by_arm["sum"] == by_arm["count"])).any():
        return _not_estimable(n, method, "Separation: an arm has no events or only events.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = Logit(used["y"].astype(float), exog)
            fit = model.fit(method="newton", maxiter=100, disp=0)
        except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as error:
            return _not_estimable(n, method, f"The model could not be fitted: {error}")
    kinds = {type(w.message) for w in caught}
    if PerfectSeparationWarning in kinds:
        return _not_estimable(n, method, "Separation: a covariate predicts the outcome exactly.")
    if ConvergenceWarning in kinds or not fit.mle_retvals.get("converged", False):
        return _not_estimable(n, method, "The logistic regression did not converge.")
    if HessianInversionWarning in kinds or _quasi_separated(fit.params):
        return _not_estimable(n, method, "Quasi-separation: a group has no events or only events.")
    beta = float(fit.params["treat"])
    low, high = fit.conf_int(1 - CONFIDENCE).loc["treat"]
    values = [_num(np.exp(beta)), _num(np.exp(low)), _num(np.exp(high)), _num(fit.pvalues["treat"])]
    if any(v is None for v in values):
        return _not_estimable(n, method, "The odds ratio or its CI is not finite.")
    return Estimate(values[0], values[1], values[2], values[3], n, method)


def _quasi_separated(params: pd.Series) -> bool:
    """A group coefficient (arm, or a factor level's dummy: `f<i>_<k>`, _model_frame's
    names) so large that its group has no events or only events. (The dummies were once
    named C(...) by patsy; since _model_frame codes them itself, only the arm was checked.)"""
    groups = [name for name in params.index if name == "treat" or name.startswith("f")]
    return bool((params[groups].abs() > MAX_LOG_ODDS).any())


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
    _check_arms(data, arm, arms)
    names = _labels(arms, labels)
    y = _numeric(data[outcome])
    if not y.dropna().isin([0.0, 1.0]).all():
        raise ValueError(f"{outcome} must be 0/1 (or missing).")
    summaries = []
    for code, name in zip(arms, names, strict=True):
        in_arm = data[arm] == code
        values = y[in_arm].dropna()
        events, analysed = int(values.sum()), len(values)
        proportion = events / analysed if analysed else None
        summaries.append(
            ArmProportion(str(code), name, int(in_arm.sum()), analysed, events, proportion)
        )
    reference, comparison = summaries
    treat = (data[arm] == arms[1]).astype(float)
    used, terms, n_missing = _model_frame(data, y, treat, covariates, factors)
    method = LOGIT_METHOD.format(covariates=_describe(covariates, factors))
    return BinaryResult(
        outcome=outcome,
        label=label or outcome,
        visit=visit,
        arms=(reference, comparison),
        risk_difference=risk_difference(
            reference.n_events, reference.n_analysed, comparison.n_events, comparison.n_analysed
        ),
        odds_ratio=_logit_adjusted(used, terms, method),
        n_missing_covariate=n_missing,
    )
