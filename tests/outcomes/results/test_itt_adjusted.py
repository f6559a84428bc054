"""Several outcomes' adjusted models fitted together (outcomes.results.itt.adjusted): the same
estimates as statsmodels' formula API fitting each model alone, one factorization per set
of rows, no SVD of a design, and the BLAS on one thread while fitting."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.linalg._linalg as numpy_linalg
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.discrete.discrete_model import Logit
from threadpoolctl import threadpool_info, threadpool_limits

from outcomes.results import itt
from outcomes.results.itt import adjusted

ARMS = ("A", "B")


def visits_frame(n: int = 240, seed: int = 3) -> pd.DataFrame:
    """Two visits; at each, pain and disability recorded together with their own baselines
    (also recorded together: the same rows missing); a third outcome with missing values
    of its own; 'improved'."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "arm": rng.choice(ARMS, n),
            "site": rng.choice(["north", "south", "east"], n),
            "sex": rng.choice(["female", "male", None], n, p=[0.48, 0.48, 0.04]),
            "pain_0": rng.normal(6, 2, n).round(1),
            "rmdq_0": rng.integers(4, 20, n).astype(float),
            "vas_0": rng.normal(55, 18, n).round(0),
        }
    )
    effect = np.where(frame["arm"] == "B", -1.0, 0.0)
    for visit, gone in (("w10", 0.08), ("w52", 0.2)):
        absent = rng.random(n) < gone
        frame[f"pain_{visit}"] = 0.6 * frame["pain_0"] + effect + rng.normal(0, 1.5, n)
        frame[f"rmdq_{visit}"] = 0.5 * frame["rmdq_0"] + 2 * effect + rng.normal(0, 3, n)
        frame[f"vas_{visit}"] = 0.4 * frame["vas_0"] - 5 * effect + rng.normal(20, 12, n)
        frame.loc[absent, [f"pain_{visit}", f"rmdq_{visit}"]] = np.nan
        frame.loc[rng.random(n) < 0.15, f"vas_{visit}"] = np.nan
        chance = 0.35 + 0.25 * (frame["arm"] == "B")
        frame[f"improved_{visit}"] = (rng.random(n) < chance).astype(float)
        frame.loc[absent, f"improved_{visit}"] = np.nan
    frame.loc[rng.choice(n, 5, replace=False), ["pain_0", "rmdq_0"]] = np.nan
    return frame


def same(alone, together) -> bool:
    """The result of a model fitted alone and among others: equal but for rounding (the
    shared factorization takes more Householder steps, ~1e-16 relative)."""
    if alone == together:
        return True
    fields = ("estimate", "lower", "upper", "p")
    for name in ("adjusted", "odds_ratio"):
        if hasattr(alone, name):
            one, other = getattr(alone, name), getattr(together, name)
            assert [getattr(one, f) for f in fields] == pytest.approx(
                [getattr(other, f) for f in fields], rel=1e-12
            )
            return alone == replace(together, **{name: one})
    return False


SPECS = [
    itt.Outcome(f"{name}_{visit}", (f"{name}_0",), label=name, visit=visit)
    for visit in ("w10", "w52")
    for name in ("pain", "rmdq", "vas")
]
FACTORS = ["site", "sex"]


def test_outcomes_fitted_together_match_formula_fits_of_each_model_alone():
    frame = visits_frame()
    results = itt.continuous_outcomes(frame, SPECS, arms=ARMS, factors=FACTORS)
    assert [r.outcome for r in results] == [s.outcome for s in SPECS]
    for spec, result in zip(SPECS, results, strict=True):
        (covariate,) = spec.covariates
        complete = frame.dropna(subset=[spec.outcome, covariate, *FACTORS]).copy()
        complete["b"] = (complete["arm"] == "B").astype(float)
        fit = smf.ols(f"{spec.outcome} ~ b + {covariate} + C(site) + C(sex)", complete).fit()
        low, high = fit.conf_int(0.05).loc["b"]
        adjusted_ = result.adjusted
        assert adjusted_.reason == "" and adjusted_.n == len(complete)
        assert adjusted_.estimate == pytest.approx(fit.params["b"])
        assert (adjusted_.lower, adjusted_.upper) == pytest.approx((low, high))
        assert adjusted_.p == pytest.approx(fit.pvalues["b"])
        with_outcome = frame[spec.outcome].notna()
        assert (
            result.n_missing_covariate == (with_outcome & ~frame.index.isin(complete.index)).sum()
        )
        alone = itt.continuous_outcome(
            frame, outcome=spec.outcome, arms=ARMS, covariates=spec.covariates, factors=FACTORS,
            label=spec.label, visit=spec.visit,
        )  # fmt: skip
        assert same(alone, result)


def test_binary_outcomes_fitted_together_match_formula_logistic_fits():
    frame = visits_frame()
    specs = [itt.Outcome(f"improved_{visit}", ("pain_0",)) for visit in ("w10", "w52")]
    results = itt.binary_outcomes(frame, specs, arms=ARMS, factors=FACTORS)
    for spec, result in zip(specs, results, strict=True):
        complete = frame.dropna(subset=[spec.outcome, "pain_0", *FACTORS]).copy()
        complete["b"] = (complete["arm"] == "B").astype(float)
        fit = smf.logit(f"{spec.outcome} ~ b + pain_0 + C(site) + C(sex)", complete).fit(disp=0)
        odds_ratio = result.odds_ratio
        assert odds_ratio.reason == "" and odds_ratio.n == len(complete)
        assert odds_ratio.estimate == pytest.approx(np.exp(fit.params["b"]), rel=1e-6)
        low, high = np.exp(fit.conf_int(0.05).loc["b"])
        assert (odds_ratio.lower, odds_ratio.upper) == pytest.approx((low, high), rel=1e-6)
        assert odds_ratio.p == pytest.approx(fit.pvalues["b"], rel=1e-6)
        alone = itt.binary_outcome(
            frame, outcome=spec.outcome, arms=ARMS, covariates=("pain_0",), factors=FACTORS
        )
        assert same(alone, result)


def test_a_collinear_covariate_spoils_only_its_own_model_among_those_sharing_rows():
    frame = visits_frame()
    frame["copy_0"] = 2 * frame["pain_0"] + 1  # a baseline that is a copy of another
    specs = [
        itt.Outcome("pain_w10", ("pain_0",)),
        itt.Outcome("rmdq_w10", ("pain_0", "copy_0")),
        itt.Outcome("vas_w10", ("vas_0",)),
    ]
    pain, rmdq, vas = itt.continuous_outcomes(frame, specs, arms=ARMS, factors=FACTORS)
    assert rmdq.adjusted.estimate is None and "collinear" in rmdq.adjusted.reason
    assert pain.adjusted.reason == "" and vas.adjusted.reason == ""
    alone = itt.continuous_outcome(
        frame, outcome="pain_w10", arms=ARMS, covariates=["pain_0"], factors=FACTORS
    )
    assert same(alone, pain)


def test_a_level_missing_from_a_models_rows_is_left_out_of_that_model_only():
    frame = visits_frame()
    frame.loc[frame["site"] == "east", "pain_w52"] = np.nan  # no east at 52 weeks
    specs = [itt.Outcome("pain_w10", ("pain_0",)), itt.Outcome("pain_w52", ("pain_0",))]
    results = itt.continuous_outcomes(frame, specs, arms=ARMS, factors=FACTORS)
    for spec, result in zip(specs, results, strict=True):
        complete = frame.dropna(subset=[spec.outcome, "pain_0", *FACTORS]).copy()
        complete["b"] = (complete["arm"] == "B").astype(float)
        fit = smf.ols(f"{spec.outcome} ~ b + pain_0 + C(site) + C(sex)", complete).fit()
        assert result.adjusted.estimate == pytest.approx(fit.params["b"])
        assert result.adjusted.p == pytest.approx(fit.pvalues["b"])


def test_models_over_the_same_rows_share_one_factorization(monkeypatch):
    """Pain and disability at a visit are missing together: one QR of the n-row design per
    visit for them; the VAS (missing on its own) has its own; two visits."""
    frame = visits_frame()
    factorized = []
    real_qr = adjusted.linalg.qr

    def qr(matrix, *args, **kwargs):
        if matrix.shape[0] > 50:  # a design's rows, not a small triangular block
            factorized.append(matrix.shape)
        return real_qr(matrix, *args, **kwargs)

    monkeypatch.setattr(adjusted.linalg, "qr", qr)
    results = itt.continuous_outcomes(frame, SPECS, arms=ARMS, factors=FACTORS)
    assert all(r.adjusted.reason == "" for r in results)
    assert len(factorized) == 4  # (pain, rmdq) and vas, at each of two visits
    # Intercept, arm, two site and one sex dummy; then covariate and outcome of each model.
    assert sorted(columns for _, columns in factorized) == [7, 7, 9, 9]


def test_the_models_compute_no_svd_or_pseudo_inverse_of_a_design(monkeypatch):
    """The rank is checked once, on the small triangular factor: not by matrix_rank on the
    design and again by the fit's pseudo-inverse (two SVDs of n rows per model)."""
    frame = visits_frame()
    shapes = []
    real_svd = numpy_linalg.svd

    def svd(a, *args, **kwargs):
        shapes.append(np.shape(a))
        return real_svd(a, *args, **kwargs)

    monkeypatch.setattr(numpy_linalg, "svd", svd)  # matrix_rank and pinv call it here
    monkeypatch.setattr(np.linalg, "svd", svd)
    for spec in SPECS:
        itt.continuous_outcome(
            frame, outcome=spec.outcome, arms=ARMS, covariates=spec.covariates, factors=FACTORS
        )
    itt.binary_outcome(frame, outcome="improved_w10", arms=ARMS, factors=FACTORS)
    assert [shape for shape in shapes if shape[0] >= 50] == []


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_the_models_are_fitted_with_one_blas_thread(monkeypatch):
    frame = visits_frame()
    seen = []
    real_qr, real_fit = adjusted.linalg.qr, Logit.fit

    def qr(*args, **kwargs):
        seen.append(("qr", _blas_threads()))
        return real_qr(*args, **kwargs)

    def fit(self, *args, **kwargs):
        seen.append(("logit", _blas_threads()))
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(adjusted.linalg, "qr", qr)
    monkeypatch.setattr(Logit, "fit", fit)
    with threadpool_limits(limits=2, user_api="blas"):  # as on a two-core machine
        itt.binary_outcome(frame, outcome="improved_w10", arms=ARMS, factors=FACTORS)
        itt.continuous_outcomes(frame, SPECS, arms=ARMS, factors=FACTORS)
        assert _blas_threads() == {2}  # restored after the fits
    assert {kind for kind, _ in seen} == {"qr", "logit"}
    assert all(threads == {1} for _, threads in seen), seen


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), shared_rows=st.booleans())
def test_fitting_together_changes_no_result_whatever_the_rows(seed, n, shared_rows):
    """Tiny arms, levels missing from some rows, constant or collinear columns: every
    outcome's result (estimable or not, and why) is the one it gets fitted alone."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "arm": rng.choice(ARMS, n),
            "site": rng.choice(["s1", "s2", "s3"][: int(rng.integers(1, 4))], n),
            "x": rng.normal(size=n).round(int(rng.integers(0, 3))),
            "z": rng.choice([0.0, 1.0], n),
        }
    )
    absent = rng.random(n) < 0.2
    for name in ("y1", "y2", "y3"):
        frame[name] = (frame["x"] * rng.choice([0, 1]) + rng.normal(size=n)).round(1)
        frame.loc[absent if shared_rows else rng.random(n) < 0.2, name] = np.nan
    specs = [
        itt.Outcome("y1", ("x",)),
        itt.Outcome("y2", ("z",)),
        itt.Outcome("y3", ("x", "z")),
        itt.Outcome("y1", ()),
    ]
    together = itt.continuous_outcomes(frame, specs, arms=ARMS, factors=["site"])
    for spec, result in zip(specs, together, strict=True):
        alone = itt.continuous_outcome(
            frame, outcome=spec.outcome, arms=ARMS, covariates=spec.covariates, factors=["site"]
        )
        assert alone.adjusted.reason == result.adjusted.reason
        if alone.adjusted.reason == "":
            assert same(alone, result)
