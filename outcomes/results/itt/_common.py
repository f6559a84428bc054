"""Helpers shared by the analyses: numbers, arms, pooled differences, model descriptions.
Pure: no Django."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from outcomes.results.itt.results import CONFIDENCE, OLS_METHOD, Estimate

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


def _describe(covariates: Sequence[str], factors: Sequence[str]) -> str:
    parts = list(covariates) + [f"C({f})" for f in factors]
    return ", ".join(parts) if parts else "no covariates"
