"""The adjusted models of several outcomes, fitted with the work they share done once.
Pure: no Django.

Each outcome's adjusted model regresses it on an Intercept, the arm (0/1), the minimization
factors (treatment-coded) and the outcome's own covariates (its baseline value), over the
rows that have the outcome, those covariates and every factor: an available-case analysis,
so the rows differ by the outcome's missingness and the designs by its covariates. What the
models truly share is therefore:

1. The arm and the factors' level codes, for all rows: coded once per call (`Design`).
   Coded per model they were 0.22 s of the models' 0.55 s at 10,000 participants.
2. The QR factorization of the shared columns [Intercept, arm, factor dummies] over a set of
   rows. Outcomes recorded at one visit are entered together and normally have the same
   rows; their covariates and values are factorized with the shared columns in one
   Householder QR, `[shared | C1 y1 | C2 y2 | ...]`. Householder QR works column by column,
   so the rows of R on the shared columns are each outcome's, and the rest of R holds each
   outcome's remaining block, whose own small QR completes the R of `[shared | Ck yk]` (the
   inner products of those columns are all R keeps). One O(n·p²) factorization per row set
   instead of one pseudo-inverse per outcome (Golub & Van Loan, Matrix Computations, 4th
   ed. 2013, §5.2–5.3: least squares by the QR of the augmented matrix [X | y], whose last
   diagonal element is the residual norm).
3. The rank check: the design's singular values are those of its p × p triangular factor, so
   numpy's matrix_rank rule (tolerance σ_max · max(n, p) · ε) is applied to R, once per
   model. Before, each model ran matrix_rank on the n × p design and then the fit's
   pseudo-inverse, two SVDs, and the logistic model a third.

Estimates are those of statsmodels' formula API (tests/outcomes/test_itt.py fits each
model independently). The logistic models are fitted by statsmodels (Newton), told the rank
is full since it was checked here.

All of it runs with the BLAS limited to one thread, by threadpoolctl around the fits.
OpenBLAS runs each call on a thread per core, whose threads then spin waiting for work, so
on a shared two-core machine they took the cores from this process and the database.
Measured in process, the dashboard's ITT part (these fits), medians of 5, two runs each,
load average 7.3–9.2 (docs/PERFORMANCE.md, sixth round):
    10,000 participants:  two BLAS threads 1.06 / 1.06 s, threadpoolctl 0.41 / 0.41 s,
                          OPENBLAS_NUM_THREADS=1 for the whole process 0.32 / 0.48 s;
    100,000 participants: two threads 4.98 / 5.48 s, threadpoolctl 2.29 / 1.16 s,
                          the environment variable 1.64 / 2.65 s.
threadpoolctl and the environment variable measure the same within the machine's noise;
threadpoolctl was chosen as it needs no set-up in each process's start (web, worker,
management commands, tests) and leaves the BLAS of the rest of the process alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, stats
from statsmodels.discrete.discrete_model import Logit  # (statsmodels.api: +38 MB, 0.4 s)
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    HessianInversionWarning,
    PerfectSeparationError,
    PerfectSeparationWarning,
)
from threadpoolctl import threadpool_limits

from outcomes.results.itt._common import _not_estimable, _num
from outcomes.results.itt.results import CONFIDENCE, MAX_LOG_ODDS, Estimate

NO_ARM = "An arm has no participants with the outcome and all covariates."
COLLINEAR = "Covariates are collinear with each other or with arm."
TOO_FEW = "Too few participants for the number of covariates."
EXACT = "The model fits exactly: no CI or p."
ARM_COLUMN = 1  # the design's columns: Intercept, arm, factor dummies, covariates


def one_blas_thread():
    """A context in which BLAS calls use one thread (see the module's docstring)."""
    return threadpool_limits(limits=1, user_api="blas")


class Design:
    """What every adjusted model of one analysis shares: the arm as 0/1 and each factor's
    level codes (-1 where missing), for all rows."""

    def __init__(self, data: pd.DataFrame, treat: np.ndarray, factors: Sequence[str]) -> None:
        self.treat = np.asarray(treat, dtype=float)
        self.codes: list[np.ndarray] = []
        self.levels: list[int] = []
        self.complete = np.ones(len(data), dtype=bool)  # every factor has a value
        for name in factors:
            # Levels as patsy's C() codes strings: each value's text, sorted. Factorized as
            # stored (missing: -1) and only the distinct values turned into text: testing
            # and converting 100,000 strings one by one took 0.2 s per call.
            codes, uniques = pd.factorize(data[name])
            text = np.array([str(value) for value in uniques], dtype=object)
            order, levels = pd.factorize(text, sort=True)
            codes = np.append(order, -1)[codes]  # -1 (missing) reads the -1 at the end
            self.codes.append(codes)
            self.levels.append(len(levels))
            self.complete &= codes >= 0

    def columns(self, rows: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
        """The shared columns over `rows` and their names: Intercept, the arm, then one 0/1
        column per factor level observed in these rows except the first, the reference
        (treatment coding of the observed levels in sorted order, as patsy's C())."""
        columns = [np.ones(len(rows)), self.treat[rows]]
        names = ["Intercept", "treat"]
        for i, (codes, levels) in enumerate(zip(self.codes, self.levels, strict=True)):
            at = codes[rows]
            observed = np.flatnonzero(np.bincount(at, minlength=levels))
            for k, level in enumerate(observed[1:], start=1):
                columns.append((at == level).astype(float))
                names.append(f"f{i}_{k}")
        return columns, names


@dataclass
class Model:
    """One outcome's adjusted model: its values and covariates (all rows), the rows it uses,
    and its method's text. `estimate` is set by ols_fit or logit_fit."""

    y: np.ndarray
    covariates: list[np.ndarray]
    rows: np.ndarray
    method: str
    estimate: Estimate | None = None


def model_rows(design: Design, y: np.ndarray, covariates: list[np.ndarray]) -> np.ndarray:
    """The rows an outcome's model uses: the outcome, its covariates and every factor."""
    used = ~np.isnan(y) & design.complete
    for x in covariates:
        used &= ~np.isnan(x)
    return used


def ols_fit(design: Design, models: Sequence[Model]) -> None:
    """OLS of each model's outcome on the design and its covariates: the arm's coefficient
    with its t interval and p. Sets each model's `estimate`."""
    with one_blas_thread():
        for group in _by_rows(models):
            for model, fitted in zip(group, _factorize(design, group), strict=True):
                model.estimate = _ols_estimate(model, *fitted)


def logit_fit(design: Design, models: Sequence[Model]) -> None:
    """Logistic regression of each model's 0/1 outcome on the design and its covariates:
    the arm's odds ratio with its Wald interval and p; separation and non-convergence give
    None with a reason. Sets each model's `estimate`."""
    with one_blas_thread():
        for group in _by_rows(models):
            for model, fitted in zip(group, _factorize(design, group), strict=True):
                model.estimate = _logit_estimate(design, model, *fitted)


def _by_rows(models: Sequence[Model]) -> list[list[Model]]:
    """The models grouped by the rows they use, in order of first appearance."""
    groups: dict[bytes, list[Model]] = {}
    for model in models:
        groups.setdefault(model.rows.tobytes(), []).append(model)
    return list(groups.values())


def _factorize(design: Design, group: list[Model]) -> list[tuple]:
    """For each model of `group` (same rows): (n, why not estimable or "", R of the
    augmented design [shared | covariates | outcome], the shared columns' names). One QR
    of [shared | C1 y1 | C2 y2 | ...] for the group (module docstring, point 2)."""
    rows = np.flatnonzero(group[0].rows)
    n = len(rows)
    treat = design.treat[rows]
    if n == 0 or treat.min() == treat.max():
        return [(n, NO_ARM, None, None)] * len(group)
    shared, names = design.columns(rows)
    p1 = len(shared)
    blocks = [[x[rows] for x in model.covariates] + [model.y[rows]] for model in group]
    matrix = np.empty((n, p1 + sum(map(len, blocks))), order="F")  # LAPACK's layout: no copy
    for j, column in enumerate(shared + [c for block in blocks for c in block]):
        matrix[:, j] = column
    # "raw": R without forming Q, and only its first min(n, columns) rows.
    r = linalg.qr(matrix, mode="raw", overwrite_a=True, check_finite=False)[1]
    out, start = [], p1
    for block in blocks:
        width = len(block)  # covariates and the outcome
        if n < p1 + width - 1:  # fewer rows than the design's columns: rank < p
            out.append((n, COLLINEAR, None, names))
            start += width
            continue
        own = linalg.qr(r[p1:, start : start + width], mode="raw", check_finite=False)[1]
        augmented = np.zeros((p1 + width, p1 + width))
        augmented[:p1, :p1] = r[:p1, :p1]
        augmented[:p1, p1:] = r[:p1, start : start + width]
        augmented[p1 : p1 + own.shape[0], p1:] = own
        out.append((n, "", augmented, names))
        start += width
    return out


def _rank_reason(n: int, r: np.ndarray) -> str:
    """Why the design with triangular factor `r` (p × p) cannot be fitted, or ""."""
    p = r.shape[0]
    singular = linalg.svdvals(r, check_finite=False)
    rank = int((singular > singular.max() * max(n, p) * np.finfo(float).eps).sum())
    if rank < p:
        return COLLINEAR
    if n - rank < 1:
        return TOO_FEW
    return ""


def _ols_estimate(model: Model, n: int, reason: str, augmented, names) -> Estimate:
    method = model.method
    if reason:
        return _not_estimable(n, method, reason)
    p = augmented.shape[0] - 1
    r = augmented[:p, :p]
    reason = _rank_reason(n, r)
    if reason:
        return _not_estimable(n, method, reason)
    y = model.y[model.rows]
    if y.min() == y.max():
        return _not_estimable(n, method, "No variation in the outcome: no CI or p.", 0.0)
    beta = linalg.solve_triangular(r, augmented[:p, p], check_finite=False)
    estimate = float(beta[ARM_COLUMN])
    ssr = float(augmented[p, p] ** 2)
    if ssr <= 1e-20 * max(float((y**2).sum()), 1.0):
        # Residuals are rounding error: the SE (and so the CI and p) is meaningless.
        return _not_estimable(n, method, EXACT, estimate)
    df = n - p
    # Var(beta) = s² (R'R)⁻¹; the arm's diagonal element is the squared norm of its row of R⁻¹.
    r_inverse = linalg.solve_triangular(r, np.eye(p), check_finite=False)
    se = math.sqrt(ssr / df * float((r_inverse[ARM_COLUMN] ** 2).sum()))
    if se == 0:
        return _not_estimable(n, method, EXACT, estimate)
    q = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))
    lower, upper = _num(estimate - q * se), _num(estimate + q * se)
    p_value = _num(2 * stats.t.sf(abs(estimate) / se, df))
    if lower is None or upper is None or p_value is None:
        return _not_estimable(n, method, EXACT, estimate)
    return Estimate(estimate, lower, upper, p_value, n, method)


def _logit_estimate(design: Design, model: Model, n: int, reason: str, augmented, names):
    method = model.method
    if reason:
        return _not_estimable(n, method, reason)
    p = augmented.shape[0] - 1
    reason = _rank_reason(n, augmented[:p, :p])
    if reason:
        return _not_estimable(n, method, reason)
    rows = np.flatnonzero(model.rows)
    y, treat = model.y[rows], design.treat[rows]
    for arm in (0.0, 1.0):
        events = y[treat == arm]
        if events.sum() in (0, len(events)):
            return _not_estimable(n, method, "Separation: an arm has no events or only events.")
    shared, _ = design.columns(rows)
    exog = np.column_stack(shared + [x[rows] for x in model.covariates])
    names = names + [f"x{i}" for i in range(len(model.covariates))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # The rank was checked above (one SVD of R, not another of the design).
            fit = Logit(y, exog, check_rank=False).fit(method="newton", maxiter=100, disp=0)
        except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as error:
            return _not_estimable(n, method, f"The model could not be fitted: {error}")
    kinds = {type(w.message) for w in caught}
    if PerfectSeparationWarning in kinds:
        return _not_estimable(n, method, "Separation: a covariate predicts the outcome exactly.")
    if ConvergenceWarning in kinds or not fit.mle_retvals.get("converged", False):
        return _not_estimable(n, method, "The logistic regression did not converge.")
    params = pd.Series(fit.params, index=names)
    if HessianInversionWarning in kinds or quasi_separated(params):
        return _not_estimable(n, method, "Quasi-separation: a group has no events or only events.")
    beta = float(fit.params[ARM_COLUMN])
    low, high = fit.conf_int(1 - CONFIDENCE)[ARM_COLUMN]
    values = [
        _num(np.exp(beta)), _num(np.exp(low)), _num(np.exp(high)),
        _num(fit.pvalues[ARM_COLUMN]),
    ]  # fmt: skip
    if any(v is None for v in values):
        return _not_estimable(n, method, "The odds ratio or its CI is not finite.")
    return Estimate(values[0], values[1], values[2], values[3], n, method)


def quasi_separated(params: pd.Series) -> bool:
    """A group coefficient (arm, or a factor level's dummy: `f<i>_<k>`, Design.columns'
    names) so large that its group has no events or only events."""
    groups = [name for name in params.index if name == "treat" or name.startswith("f")]
    return bool((params[groups].abs() > MAX_LOG_ODDS).any())
