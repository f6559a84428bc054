"""Intention-to-treat statistics, pure (no Django): pandas frames in, frozen dataclasses out.

Everyone randomized is analysed in the arm allocated (ICH E9 §5.2.1). Each analysis is
available-case: a participant whose outcome is missing is left out of that analysis only, and
every result reports n analysed of n randomized per arm. Arms are codes; the caller passes the
order ``arms=(reference, comparison)`` and the ``labels`` to show (blinded codes are fine).
Results hold floats, ints and strings only; ``None`` means "not estimable" and ``reason`` says
why. An analysis never raises because of the data (tiny arms, constant or missing outcomes,
separation); it raises ``ValueError`` only for a caller's mistake (an arm code not in ``arms``).

Analyses
    continuous_outcome   mean (SD) per arm; difference in means, unadjusted and adjusted
    binary_outcome       n (%) per arm; risk difference; adjusted odds ratio
    weekly_sms           weekly means per arm (plot) and a participant-level comparison
    table1               baseline characteristics by arm and overall
    minimization_balance imbalance per factor level against simple randomization
    forest_rows          estimates ready for plots.forest_svg
Building blocks, public for reuse and tests: risk_difference, wilson_interval,
expected_range, weekly_series.

Numeric columns are read with pandas.to_numeric (Decimal, bool and numeric strings are fine;
other text counts as missing).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    HessianInversionWarning,
    PerfectSeparationError,
    PerfectSeparationWarning,
)

CONFIDENCE = 0.95
Z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
# A log odds ratio beyond this (OR > 3 million) for the arm or a factor level means the
# maximum-likelihood estimate does not exist (quasi-complete separation), whatever the
# optimiser reports.
MAX_LOG_ODDS = 15.0
# Exact expected range of a multinomial up to this many participants per level; beyond it,
# a simulation with a fixed seed (reproducible to the digit).
EXACT_RANGE_MAX_N = 200
SIMULATION_DRAWS = 20_000
SIMULATION_SEED = 20_240_501

OLS_METHOD = (
    "OLS of outcome on arm; identical to the pooled-variance two-sample t-test "
    "(t distribution, n - 2 df)"
)
ADJUSTED_OLS_METHOD = "OLS of outcome on arm, {covariates}; complete cases"
WALD_METHOD = "Wald (unpooled SE, truncated to [-1, 1]), z test"
NEWCOMBE_METHOD = "Newcombe hybrid score (Wilson) interval: a proportion is 0% or 100%"
LOGIT_METHOD = "logistic regression of outcome on arm, {covariates}; complete cases"
SMS_METHOD = (
    "participant-level summary (each participant's mean over answered weeks), compared by "
    "OLS / pooled-variance t-test"
)


@dataclass(frozen=True)
class Estimate:
    """A comparison between arms with its 95% CI; None where not estimable (see reason)."""

    estimate: float | None
    lower: float | None
    upper: float | None
    p: float | None
    n: int  # participants in this analysis
    method: str
    reason: str = ""  # empty when everything is estimable


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    label: str
    n_randomized: int
    n_analysed: int
    mean: float | None
    sd: float | None


@dataclass(frozen=True)
class ContinuousResult:
    outcome: str
    label: str
    visit: str
    arms: tuple[ArmSummary, ArmSummary]
    unadjusted: Estimate  # comparison - reference
    adjusted: Estimate
    n_missing_covariate: int  # outcome present but a covariate missing: not in `adjusted`


@dataclass(frozen=True)
class ArmProportion:
    arm: str
    label: str
    n_randomized: int
    n_analysed: int
    n_events: int
    proportion: float | None


@dataclass(frozen=True)
class BinaryResult:
    outcome: str
    label: str
    visit: str
    arms: tuple[ArmProportion, ArmProportion]
    risk_difference: Estimate  # comparison - reference
    odds_ratio: Estimate  # comparison vs reference, adjusted
    n_missing_covariate: int


@dataclass(frozen=True)
class WeeklyMean:
    question: str
    week: int
    arm: str
    label: str
    n: int
    mean: float | None


@dataclass(frozen=True)
class SmsComparison:
    question: str
    arms: tuple[ArmSummary, ArmSummary]  # n_analysed = participants with >= 1 answer
    difference: Estimate


@dataclass(frozen=True)
class SmsResult:
    weekly: tuple[WeeklyMean, ...]
    comparisons: tuple[SmsComparison, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    kind: Literal["numeric", "categorical"]
    levels: tuple[tuple[object, str], ...] = ()  # (value, label); unlisted values follow
    decimals: int = 1


@dataclass(frozen=True)
class Cell:
    text: str
    n: int  # non-missing values in the column
    missing: int
    mean: float | None = None
    sd: float | None = None
    count: int | None = None
    percent: float | None = None  # of non-missing values


@dataclass(frozen=True)
class Table1Row:
    variable: str
    label: str
    level: str | None  # None for numeric variables
    cells: tuple[Cell, ...]  # one per arm, then overall


@dataclass(frozen=True)
class Table1:
    columns: tuple[str, ...]
    n: tuple[int, ...]
    rows: tuple[Table1Row, ...]


@dataclass(frozen=True)
class BalanceRow:
    factor: str
    level: str
    counts: tuple[int, ...]  # in the order of `arms`
    n: int
    imbalance: int  # max - min (|a - b| for two arms)
    expected_simple: float  # expected max - min under simple randomization
    expected_method: str  # "exact" or "simulated"


@dataclass(frozen=True)
class Balance:
    arms: tuple[str, ...]
    rows: tuple[BalanceRow, ...]
    total_imbalance: int
    expected_total: float


@dataclass(frozen=True)
class ForestRow:
    label: str
    visit: str
    estimate: float | None
    lower: float | None
    upper: float | None
    scale: Literal["difference", "odds ratio"]


# --- Helpers ------------------------------------------------------------------------------


def _num(x: object) -> float | None:
    """A finite float, or None (NaN-free results)."""
    if x is None:
        return None
    value = float(x)  # type: ignore[arg-type]
    return value if math.isfinite(value) else None


def _not_estimable(n: int, method: str, reason: str, estimate: float | None = None) -> Estimate:
    return Estimate(_num(estimate), None, None, None, n, method, reason)


def _labels(arms: Sequence[str], labels: Sequence[str] | None) -> tuple[str, ...]:
    result = tuple(str(a) for a in arms) if labels is None else tuple(labels)
    if len(result) != len(arms):
        raise ValueError("Give one label per arm.")
    return result


def _check_arms(data: pd.DataFrame, arm: str, arms: Sequence[str], two: bool = True) -> None:
    if two and len(arms) != 2:
        raise ValueError("Give two arms: (reference, comparison).")
    unknown = set(data[arm].dropna().unique()) - set(arms)
    if unknown or data[arm].isna().any():
        raise ValueError(f"Rows with an arm not in {list(arms)}: {sorted(map(str, unknown))}")


def _numeric(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.astype(object), errors="coerce").astype(float)


def _mean_sd(values: np.ndarray) -> tuple[float | None, float | None]:
    mean = _num(values.mean()) if len(values) else None
    sd = _num(values.std(ddof=1)) if len(values) > 1 else None
    return mean, sd


def _pooled_difference(y0: np.ndarray, y1: np.ndarray, method: str = OLS_METHOD) -> Estimate:
    """Difference in means y1 - y0 with the pooled-variance t interval and p."""
    n0, n1 = len(y0), len(y1)
    n = n0 + n1
    if n0 == 0 or n1 == 0:
        return _not_estimable(n, method, "An arm has no participants with the outcome.")
    difference = float(y1.mean() - y0.mean())
    df = n - 2
    if df < 1:
        return _not_estimable(n, method, "Too few participants to estimate the SD.", difference)
    if np.ptp(y0) == 0 and np.ptp(y1) == 0:
        return _not_estimable(n, method, "No variation within arms: no CI or p.", difference)
    pooled = (((y0 - y0.mean()) ** 2).sum() + ((y1 - y1.mean()) ** 2).sum()) / df
    se = math.sqrt(pooled * (1 / n0 + 1 / n1))
    q = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))
    p = float(2 * stats.t.sf(abs(difference) / se, df))
    return Estimate(difference, difference - q * se, difference + q * se, p, n, method)


def _model_frame(
    data: pd.DataFrame,
    y: pd.Series,
    treat: pd.Series,
    covariates: Sequence[str],
    factors: Sequence[str],
) -> tuple[pd.DataFrame, str, int]:
    """Rows with the outcome and every covariate, safe column names, the formula, and the
    number of rows with the outcome but a covariate missing."""
    frame = pd.DataFrame({"y": y, "treat": treat})
    for i, name in enumerate(covariates):
        frame[f"x{i}"] = _numeric(data[name])
    for i, name in enumerate(factors):
        frame[f"f{i}"] = data[name].astype(object)
    with_outcome = frame[frame["y"].notna()]
    used = with_outcome.dropna()
    for i in range(len(factors)):
        # Strings after dropping missing rows: patsy then makes columns for observed levels
        # only (a pandas Categorical would add all-zero columns for unused levels).
        used = used.assign(**{f"f{i}": used[f"f{i}"].astype(str)})
    terms = ["treat"] + [f"x{i}" for i in range(len(covariates))]
    terms += [f"C(f{i})" for i in range(len(factors))]
    return used, "y ~ " + " + ".join(terms), len(with_outcome) - len(used)


def _describe(covariates: Sequence[str], factors: Sequence[str]) -> str:
    parts = list(covariates) + [f"C({f})" for f in factors]
    return ", ".join(parts) if parts else "no covariates"


def _identifiable(used: pd.DataFrame, formula: str) -> str:
    """Why the arm coefficient cannot be estimated, or ''."""
    if used["treat"].nunique() < 2:
        return "An arm has no participants with the outcome and all covariates."
    model = smf.ols(formula, data=used)
    rank = np.linalg.matrix_rank(model.exog)
    if rank < model.exog.shape[1]:
        return "Covariates are collinear with each other or with arm."
    if len(used) - rank < 1:
        return "Too few participants for the number of covariates."
    return ""


def _ols_adjusted(used: pd.DataFrame, formula: str, method: str) -> Estimate:
    n = len(used)
    reason = _identifiable(used, formula)
    if reason:
        return _not_estimable(n, method, reason)
    if used["y"].nunique() == 1:
        return _not_estimable(n, method, "No variation in the outcome: no CI or p.", 0.0)
    fit = smf.ols(formula, data=used).fit()
    estimate = float(fit.params["treat"])
    if fit.ssr <= 1e-20 * max(float((used["y"] ** 2).sum()), 1.0):
        # Residuals are rounding error: the SE (and so the CI and p) is meaningless.
        return _not_estimable(n, method, "The model fits exactly: no CI or p.", estimate)
    lower, upper = (_num(v) for v in fit.conf_int(1 - CONFIDENCE).loc["treat"])
    p = _num(fit.pvalues["treat"])
    if lower is None or upper is None or p is None or fit.bse["treat"] == 0:
        return _not_estimable(n, method, "The model fits exactly: no CI or p.", estimate)
    return Estimate(estimate, lower, upper, p, n, method)


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
    used, formula, n_missing = _model_frame(data, y, treat, covariates, factors)
    method = ADJUSTED_OLS_METHOD.format(covariates=_describe(covariates, factors))
    return ContinuousResult(
        outcome=outcome,
        label=label or outcome,
        visit=visit,
        arms=(summaries[0], summaries[1]),
        unadjusted=_pooled_difference(groups[0], groups[1]),
        adjusted=_ols_adjusted(used, formula, method),
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


def _logit_adjusted(used: pd.DataFrame, formula: str, method: str) -> Estimate:
    """Adjusted odds ratio; separation and non-convergence give None with a reason."""
    n = len(used)
    reason = _identifiable(used, formula)
    if reason:
        return _not_estimable(n, method, reason)
    by_arm = used.groupby("treat")["y"].agg(["sum", "count"])
    if ((by_arm["sum"] == 0) | (by_arm["sum"] == by_arm["count"])).any():
        return _not_estimable(n, method, "Separation: an arm has no events or only events.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.logit(formula, data=used).fit(method="newton", maxiter=100, disp=0)
        except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as error:
            return _not_estimable(n, method, f"The model could not be fitted: {error}")
    kinds = {type(w.message) for w in caught}
    if PerfectSeparationWarning in kinds:
        return _not_estimable(n, method, "Separation: a covariate predicts the outcome exactly.")
    if ConvergenceWarning in kinds or not fit.mle_retvals.get("converged", False):
        return _not_estimable(n, method, "The logistic regression did not converge.")
    dummies = [name for name in fit.params.index if name == "treat" or name.startswith("C(")]
    if HessianInversionWarning in kinds or (fit.params[dummies].abs() > MAX_LOG_ODDS).any():
        return _not_estimable(n, method, "Quasi-separation: a group has no events or only events.")
    beta = float(fit.params["treat"])
    low, high = fit.conf_int(1 - CONFIDENCE).loc["treat"]
    values = [_num(np.exp(beta)), _num(np.exp(low)), _num(np.exp(high)), _num(fit.pvalues["treat"])]
    if any(v is None for v in values):
        return _not_estimable(n, method, "The odds ratio or its CI is not finite.")
    return Estimate(values[0], values[1], values[2], values[3], n, method)


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
    used, formula, n_missing = _model_frame(data, y, treat, covariates, factors)
    method = LOGIT_METHOD.format(covariates=_describe(covariates, factors))
    return BinaryResult(
        outcome=outcome,
        label=label or outcome,
        visit=visit,
        arms=(reference, comparison),
        risk_difference=risk_difference(
            reference.n_events, reference.n_analysed, comparison.n_events, comparison.n_analysed
        ),
        odds_ratio=_logit_adjusted(used, formula, method),
        n_missing_covariate=n_missing,
    )


# --- Weekly SMS ----------------------------------------------------------------------------


def weekly_sms(
    answers: pd.DataFrame,
    *,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    questions: Sequence[str] | None = None,
    n_randomized: Mapping[str, int] | None = None,
    participant: str = "participant",
    arm: str = "arm",
    week: str = "week",
    question: str = "question",
    value: str = "value",
) -> SmsResult:
    """Weekly means per arm, and the between-arm difference over the whole tracking period.

    `answers` is long: one row per participant, week and question (value NaN if unanswered).
    The comparison summarises each participant first (their mean over answered weeks), then
    compares those means by OLS / t-test. Weeks of one person are correlated, so treating
    answers as independent would overstate precision; one summary per participant respects
    that clustering (Matthews et al., BMJ 1990, "analysis of serial measurements").
    `n_randomized` per arm code defaults to the participants present in `answers`.
    """
    _check_arms(answers, arm, arms)
    names = _labels(arms, labels)
    if (answers.groupby(participant)[arm].nunique() > 1).any():
        raise ValueError("A participant appears in more than one arm.")
    frame = answers.assign(**{value: _numeric(answers[value])})
    if questions is None:
        questions = sorted(frame[question].dropna().unique(), key=str)
    weekly: list[WeeklyMean] = []
    comparisons: list[SmsComparison] = []
    for code in questions:
        rows = frame[frame[question] == code]
        answered = rows.dropna(subset=[value])
        for w in sorted(rows[week].dropna().unique()):
            for arm_code, name in zip(arms, names, strict=True):
                cell = answered[(answered[week] == w) & (answered[arm] == arm_code)][value]
                mean = _num(cell.mean()) if len(cell) else None
                weekly.append(WeeklyMean(str(code), int(w), str(arm_code), name, len(cell), mean))
        per_person = answered.groupby([arm, participant])[value].mean()
        summaries, groups = [], []
        for arm_code, name in zip(arms, names, strict=True):
            means = per_person.loc[arm_code].to_numpy() if arm_code in per_person.index else []
            means = np.asarray(means, dtype=float)
            groups.append(means)
            if n_randomized is not None:
                randomized = int(n_randomized[arm_code])
            else:
                randomized = int(answers.loc[answers[arm] == arm_code, participant].nunique())
            mean, sd = _mean_sd(means)
            summaries.append(ArmSummary(str(arm_code), name, randomized, len(means), mean, sd))
        difference = _pooled_difference(groups[0], groups[1], SMS_METHOD)
        comparisons.append(SmsComparison(str(code), (summaries[0], summaries[1]), difference))
    return SmsResult(tuple(weekly), tuple(comparisons))


def weekly_series(result: SmsResult, question: str) -> dict[str, list[tuple[float, float | None]]]:
    """{arm label: [(week, mean or None)]} for plots.line_svg."""
    series: dict[str, list[tuple[float, float | None]]] = {}
    for m in result.weekly:
        if m.question == question:
            series.setdefault(m.label, []).append((float(m.week), m.mean))
    return series


# --- Table 1 -------------------------------------------------------------------------------


def _numeric_cell(values: pd.Series, decimals: int) -> Cell:
    present = values.dropna().to_numpy()
    missing = len(values) - len(present)
    mean, sd = _mean_sd(present)
    if mean is None:
        text = "–"
    else:
        text = f"{mean:.{decimals}f} ({'–' if sd is None else f'{sd:.{decimals}f}'})"
        if missing:
            text += f", n={len(present)}"
    return Cell(text, len(present), missing, mean=mean, sd=sd)


def table1(
    data: pd.DataFrame,
    variables: Sequence[Variable],
    *,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    arm: str = "arm",
    overall: str = "Overall",
) -> Table1:
    """Baseline characteristics by arm (any number of arms) and overall: numeric as
    mean (SD), with n when values are missing; categorical as n (%) of those with a value,
    percentages rounded to whole numbers, and a "Missing" row when any are missing. No
    p-values: baseline differences after randomization are chance by construction (CONSORT
    2010, item 15)."""
    _check_arms(data, arm, arms, two=False)
    names = _labels(arms, labels)
    columns = [data[data[arm] == code] for code in arms] + [data]
    rows: list[Table1Row] = []
    for var in variables:
        if var.kind == "numeric":
            cells = tuple(_numeric_cell(_numeric(c[var.name]), var.decimals) for c in columns)
            rows.append(Table1Row(var.name, var.label, None, cells))
            continue
        levels = list(var.levels)
        listed = {value for value, _ in levels}
        extra = sorted(set(data[var.name].dropna().unique()) - listed, key=str)
        levels += [(value, str(value)) for value in extra]
        for value, level_label in levels:
            cells = []
            for c in columns:
                present = c[var.name].dropna()
                count = int((present == value).sum())
                percent = 100 * count / len(present) if len(present) else None
                text = f"{count} ({percent:.0f}%)" if percent is not None else "0"
                missing = len(c) - len(present)
                cells.append(Cell(text, len(present), missing, count=count, percent=percent))
            rows.append(Table1Row(var.name, var.label, level_label, tuple(cells)))
        if data[var.name].isna().any():
            cells = []
            for c in columns:
                missing = int(c[var.name].isna().sum())
                cells.append(Cell(str(missing), len(c) - missing, missing, count=missing))
            rows.append(Table1Row(var.name, var.label, "Missing", tuple(cells)))
    return Table1(
        columns=(*names, overall),
        n=tuple(len(c) for c in columns),
        rows=tuple(rows),
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


def minimization_balance(
    counts: Mapping[str, Mapping[str, Mapping[str, int]]] | pd.DataFrame,
    *,
    arms: Sequence[str],
) -> Balance:
    """Imbalance per factor level (max - min of the arm counts) against its expectation under
    simple randomization, and both totals (sum over all levels of all factors; the expected
    total is a sum of expectations, valid whatever the correlation between factors).

    `counts` is {factor: {level: {arm: n}}} or a frame with columns factor, level, arm, n.
    """
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
            expected, how = expected_range(n, len(arms))
            imbalance = max(row_counts) - min(row_counts)
            rows.append(BalanceRow(factor, level, row_counts, n, imbalance, expected, how))
    return Balance(
        arms=tuple(str(a) for a in arms),
        rows=tuple(rows),
        total_imbalance=sum(r.imbalance for r in rows),
        expected_total=float(sum(r.expected_simple for r in rows)),
    )


# --- Forest plot ---------------------------------------------------------------------------


def forest_rows(
    results: Iterable[ContinuousResult | BinaryResult], *, adjusted: bool = True
) -> list[ForestRow]:
    """One row per result: the adjusted difference / odds ratio (or, with adjusted=False, the
    unadjusted difference / risk difference). Not estimable rows keep None."""
    rows = []
    for result in results:
        if isinstance(result, ContinuousResult):
            est = result.adjusted if adjusted else result.unadjusted
            scale: Literal["difference", "odds ratio"] = "difference"
        else:
            est = result.odds_ratio if adjusted else result.risk_difference
            scale = "odds ratio" if adjusted else "difference"
        rows.append(
            ForestRow(result.label, result.visit, est.estimate, est.lower, est.upper, scale)
        )
    return rows
