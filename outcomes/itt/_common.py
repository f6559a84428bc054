"""Helpers shared by the analyses: numbers, arms, pooled differences, model frames.
Pure: no Django."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import OLS  # (statsmodels.api: +38 MB, 0.4 s)

from outcomes.itt.results import CONFIDENCE, OLS_METHOD, Estimate

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
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype(float)  # already numbers: no round trip through objects
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
) -> tuple[pd.DataFrame, list[str], int]:
    """Rows with the outcome and every covariate, safe column names, the model's terms
    (columns of those rows: `y ~ terms`), and the number of rows with the outcome but a
    covariate missing."""
    frame = pd.DataFrame({"y": y, "treat": treat})
    for i, name in enumerate(covariates):
        frame[f"x{i}"] = _numeric(data[name])
    for i, name in enumerate(factors):
        frame[f"f{i}"] = data[name].astype(object)
    with_outcome = frame[frame["y"].notna()]
    used = with_outcome.dropna()
    terms = ["treat"] + [f"x{i}" for i in range(len(covariates))]
    for i in range(len(factors)):
        # Treatment coding done here, as patsy's C() would for these strings: the observed
        # levels in sorted order, the first the reference, one 0/1 column per other level.
        # patsy reaches the same matrix by testing every cell for NA in Python — most of the
        # dashboard's time at 100,000 participants.
        codes, _ = pd.factorize(used[f"f{i}"].astype(str).to_numpy(object), sort=True)
        dummies = {
            f"f{i}_{k}": pd.Series((codes == k).astype(float), index=used.index)
            for k in range(1, codes.max() + 1 if len(codes) else 1)
        }
        used = used.drop(columns=f"f{i}").assign(**dummies)
        terms += list(dummies)
    return used, terms, len(with_outcome) - len(used)


def _design(used: pd.DataFrame, terms: Sequence[str]) -> pd.DataFrame:
    """The design matrix of `y ~ terms`, as patsy builds it from the formula (an Intercept
    column, then each term as float; the terms are numeric columns, the factors already
    coded by _model_frame) but without parsing a formula and checking every cell for NA
    again per model: patsy took a quarter of the models' time at 100,000 participants.
    tests/outcomes/test_itt.py compares the estimates with statsmodels' formula API."""
    columns = {"Intercept": np.ones(len(used))}
    columns.update((term, used[term].to_numpy(dtype=float)) for term in terms)
    return pd.DataFrame(columns, index=used.index)


def _describe(covariates: Sequence[str], factors: Sequence[str]) -> str:
    parts = list(covariates) + [f"C({f})" for f in factors]
    return ", ".join(parts) if parts else "no covariates"


def _identifiable(used: pd.DataFrame, exog: pd.DataFrame) -> str:
    """Why the arm coefficient cannot be estimated from the design matrix `exog`, or ''."""
    if used["treat"].nunique() < 2:
        return "An arm has no participants with the outcome and all covariates."
    rank = np.linalg.matrix_rank(exog.to_numpy())
    if rank < exog.shape[1]:
        return "Covariates are collinear with each other or with arm."
    if len(used) - rank < 1:
        return "Too few participants for the number of covariates."
    return ""


def _ols_adjusted(used: pd.DataFrame, terms: Sequence[str], method: str) -> Estimate:
    n = len(used)
    exog = _design(used, terms)
    reason = _identifiable(used, exog)
    if reason:
        return _not_estimable(n, method, reason)
    if used["y"].nunique() == 1:
        return _not_estimable(n, method, "No variation in the outcome: no CI or p.", 0.0)
    fit = OLS(used["y"].astype(float), exog).fit()
    estimate = float(fit.params["treat"])
    if fit.ssr <= 1e-20 * max(float((used["y"] ** 2).sum()), 1.0):
        # Residuals are rounding error: the SE (and so the CI and p) is meaningless.
        return _not_estimable(n, method, "The model fits exactly: no CI or p.", estimate)
    lower, upper = (_num(v) for v in fit.conf_int(1 - CONFIDENCE).loc["treat"])
    p = _num(fit.pvalues["treat"])
    if lower is None or upper is None or p is None or fit.bse["treat"] == 0:
        return _not_estimable(n, method, "The model fits exactly: no CI or p.", estimate)
    return Estimate(estimate, lower, upper, p, n, method)
