"""Intention-to-treat statistics (outcomes.results.itt): every number recomputed here independently."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from outcomes.results import itt

ARMS = ("A", "B")
Z = stats.norm.ppf(0.975)


def test_the_statistics_never_import_django():
    modules = sorted(Path(itt.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for module in modules
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] == "django"]


def trial_frame(n: int = 160, seed: int = 7) -> pd.DataFrame:
    """Synthetic trial: baseline pain, two minimization factors, pain and 'improved' at
    follow-up with some missing values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "arm": rng.choice(ARMS, n),
            "site": rng.choice(["north", "south", "east"], n),
            "sex": rng.choice(["female", "male"], n),
            "pain_0": rng.normal(6, 2, n).round(1),
        }
    )
    effect = np.where(frame["arm"] == "B", -1.0, 0.0)
    frame["pain_12"] = (0.6 * frame["pain_0"] + effect + rng.normal(0, 1.5, n)).round(1)
    chance = 0.35 + 0.25 * (frame["arm"] == "B") + 0.05 * (frame["site"] == "east")
    frame["improved"] = (rng.random(n) < chance).astype(float)
    frame.loc[rng.random(n) < 0.12, "pain_12"] = np.nan
    frame.loc[rng.random(n) < 0.10, "improved"] = np.nan
    frame.loc[rng.choice(n, 4, replace=False), "pain_0"] = np.nan
    return frame


def continuous(frame, **kwargs):
    options = {"outcome": "pain_12", "arms": ARMS, "covariates": ["pain_0"]}
    options["factors"] = ["site", "sex"]
    return itt.continuous_outcome(frame, **{**options, **kwargs})


# --- Continuous ------------------------------------------------------------------------------


def test_one_two_three_against_four_five_six_differ_by_three_with_sd_one():
    frame = pd.DataFrame({"arm": list("AAABBB"), "y": [1, 2, 3, 4, 5, 6]})
    result = itt.continuous_outcome(frame, outcome="y", arms=ARMS, labels=("Usual", "New"))
    reference, comparison = result.arms
    assert (reference.label, reference.mean, reference.sd) == ("Usual", 2.0, 1.0)
    assert (comparison.mean, comparison.sd, comparison.n_analysed) == (5.0, 1.0, 3)
    # Pooled SD 1, SE sqrt(1/3 + 1/3), t with 4 df.
    se = math.sqrt(2 / 3)
    q = stats.t.ppf(0.975, 4)
    difference = result.unadjusted
    assert difference.estimate == pytest.approx(3.0)
    assert difference.lower == pytest.approx(3 - q * se)
    assert difference.upper == pytest.approx(3 + q * se)
    assert difference.p == pytest.approx(2 * stats.t.sf(3 / se, 4))
    assert difference.n == 6 and difference.reason == ""


def test_unadjusted_difference_matches_the_pooled_variance_t_test():
    frame = trial_frame()
    result = continuous(frame)
    a = frame.loc[frame["arm"] == "A", "pain_12"].dropna()
    b = frame.loc[frame["arm"] == "B", "pain_12"].dropna()
    test = stats.ttest_ind(b, a, equal_var=True)
    ci = test.confidence_interval(0.95)
    assert result.unadjusted.estimate == pytest.approx(b.mean() - a.mean())
    assert result.unadjusted.p == pytest.approx(test.pvalue)
    assert (result.unadjusted.lower, result.unadjusted.upper) == pytest.approx((ci.low, ci.high))
    assert result.arms[0].sd == pytest.approx(a.std(ddof=1))
    assert result.arms[1].mean == pytest.approx(b.mean())


def test_everyone_randomized_counts_and_missing_outcomes_are_left_out():
    frame = trial_frame()
    result = continuous(frame)
    for summary in result.arms:
        in_arm = frame[frame["arm"] == summary.arm]
        assert summary.n_randomized == len(in_arm)
        assert summary.n_analysed == in_arm["pain_12"].notna().sum()
        assert summary.n_analysed < summary.n_randomized


def test_adjusted_difference_matches_ancova_fitted_directly():
    frame = trial_frame()
    result = continuous(frame)
    complete = frame.dropna(subset=["pain_12", "pain_0", "site", "sex"]).copy()
    complete["b"] = (complete["arm"] == "B").astype(float)
    fit = smf.ols("pain_12 ~ b + pain_0 + C(site) + C(sex)", data=complete).fit()
    low, high = fit.conf_int(0.05).loc["b"]
    assert result.adjusted.estimate == pytest.approx(fit.params["b"])
    assert (result.adjusted.lower, result.adjusted.upper) == pytest.approx((low, high))
    assert result.adjusted.p == pytest.approx(fit.pvalues["b"])
    assert result.adjusted.n == len(complete)
    with_outcome = frame["pain_12"].notna()
    assert result.n_missing_covariate == (with_outcome & frame["pain_0"].isna()).sum()
    assert "C(site)" in result.adjusted.method


def test_an_arm_with_nobody_analysed_gives_none_with_a_reason():
    frame = pd.DataFrame({"arm": list("AAABBB"), "y": [1, 2, 3, None, None, None]})
    result = itt.continuous_outcome(frame, outcome="y", arms=ARMS)
    assert result.arms[1] == itt.ArmSummary("B", "B", 3, 0, None, None)
    assert result.unadjusted.estimate is None and result.unadjusted.reason
    assert result.adjusted.estimate is None and result.adjusted.reason


def test_one_participant_per_arm_gives_a_difference_without_ci():
    frame = pd.DataFrame({"arm": ["A", "B", "B"], "y": [1.0, 4.0, None]})
    result = itt.continuous_outcome(frame, outcome="y", arms=ARMS)
    assert result.arms[0].sd is None
    assert result.unadjusted.estimate == 3.0
    assert result.unadjusted.lower is None and result.unadjusted.p is None
    assert "SD" in result.unadjusted.reason


def test_all_outcomes_missing_gives_nothing_estimable():
    frame = pd.DataFrame({"arm": list("ABAB"), "y": [np.nan] * 4, "x": [1, 2, 3, 4]})
    result = itt.continuous_outcome(frame, outcome="y", arms=ARMS, covariates=["x"])
    assert [s.n_analysed for s in result.arms] == [0, 0]
    assert [s.mean for s in result.arms] == [None, None]
    assert result.unadjusted.estimate is None and result.adjusted.estimate is None


def test_a_constant_outcome_has_zero_difference_but_no_ci_or_p():
    frame = pd.DataFrame({"arm": list("AABBAB"), "y": [5.0] * 6, "x": [1, 2, 3, 4, 5, 7]})
    result = itt.continuous_outcome(frame, outcome="y", arms=ARMS, covariates=["x"])
    assert result.unadjusted.estimate == 0.0
    assert result.unadjusted.lower is None and result.unadjusted.reason
    assert result.adjusted.lower is None and result.adjusted.p is None
    assert result.adjusted.reason


def test_a_factor_identical_to_arm_makes_the_adjusted_difference_not_estimable():
    frame = trial_frame()
    frame["copy"] = frame["arm"]
    result = continuous(frame, factors=["copy"])
    assert result.unadjusted.estimate is not None
    assert result.adjusted.estimate is None and "collinear" in result.adjusted.reason


def test_an_arm_code_outside_the_given_arms_is_a_caller_error():
    frame = pd.DataFrame({"arm": ["A", "B", "C"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError):
        itt.continuous_outcome(frame, outcome="y", arms=ARMS)


outcomes = st.lists(
    st.tuples(
        st.sampled_from(ARMS), st.floats(-50, 50, allow_nan=False).map(lambda v: round(v, 2))
    ),
    min_size=4,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(rows=outcomes, covariate_seed=st.integers(0, 1000))
def test_swapping_the_arms_negates_the_difference(rows, covariate_seed):
    frame = pd.DataFrame(rows, columns=["arm", "y"])
    frame["x"] = np.random.default_rng(covariate_seed).normal(size=len(frame))
    forward = itt.continuous_outcome(frame, outcome="y", arms=("A", "B"), covariates=["x"])
    backward = itt.continuous_outcome(frame, outcome="y", arms=("B", "A"), covariates=["x"])
    for f, b in [(forward.unadjusted, backward.unadjusted), (forward.adjusted, backward.adjusted)]:
        assert (f.estimate is None) == (b.estimate is None)
        if f.estimate is not None:
            assert b.estimate == pytest.approx(-f.estimate, abs=1e-7)
        if f.p is not None and b.p is not None:
            assert b.p == pytest.approx(f.p, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(rows=outcomes, shift=st.floats(-100, 100, allow_nan=False))
def test_adding_a_constant_to_every_outcome_leaves_the_difference_unchanged(rows, shift):
    frame = pd.DataFrame(rows, columns=["arm", "y"])
    shifted = frame.assign(y=frame["y"] + shift)
    before = itt.continuous_outcome(frame, outcome="y", arms=ARMS).unadjusted
    after = itt.continuous_outcome(shifted, outcome="y", arms=ARMS).unadjusted
    if before.estimate is None:
        assert after.estimate is None
    else:
        assert after.estimate == pytest.approx(before.estimate, abs=1e-6)


# --- Binary ----------------------------------------------------------------------------------


def binary_frame(events_a: int, n_a: int, events_b: int, n_b: int) -> pd.DataFrame:
    arm = ["A"] * n_a + ["B"] * n_b
    improved = [1] * events_a + [0] * (n_a - events_a) + [1] * events_b + [0] * (n_b - events_b)
    return pd.DataFrame({"arm": arm, "improved": improved})


def test_risk_difference_and_wald_interval_by_hand():
    frame = binary_frame(10, 40, 20, 40)
    frame.loc[len(frame)] = {"arm": "B", "improved": np.nan}
    result = itt.binary_outcome(frame, outcome="improved", arms=ARMS)
    reference, comparison = result.arms
    assert (reference.n_events, reference.n_analysed, reference.proportion) == (10, 40, 0.25)
    assert (comparison.n_randomized, comparison.n_analysed, comparison.proportion) == (41, 40, 0.5)
    se = math.sqrt(0.25 * 0.75 / 40 + 0.5 * 0.5 / 40)
    rd = result.risk_difference
    assert rd.estimate == pytest.approx(0.25)
    assert (rd.lower, rd.upper) == pytest.approx((0.25 - Z * se, 0.25 + Z * se))
    assert rd.p == pytest.approx(2 * stats.norm.sf(0.25 / se))
    assert rd.method.startswith("Wald")


def test_a_zero_percent_arm_falls_back_to_newcombes_interval():
    result = itt.binary_outcome(binary_frame(0, 20, 5, 20), outcome="improved", arms=ARMS)
    rd = result.risk_difference

    def wilson(x, n):
        p = x / n
        centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
        half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n)) / (1 + Z**2 / n)
        return centre - half, centre + half

    (l0, u0), (l1, u1) = wilson(0, 20), wilson(5, 20)
    assert rd.estimate == pytest.approx(0.25)
    assert rd.lower == pytest.approx(0.25 - math.sqrt((0.25 - l1) ** 2 + u0**2))
    assert rd.upper == pytest.approx(0.25 + math.sqrt((u1 - 0.25) ** 2 + (0 - l0) ** 2))
    assert rd.p is None and "Newcombe" in rd.method
    assert result.odds_ratio.estimate is None and "Separation" in result.odds_ratio.reason


@pytest.mark.parametrize("counts", [(0, 10, 0, 10), (10, 10, 10, 10), (0, 1, 1, 1)])
def test_all_or_nothing_proportions_never_raise(counts):
    result = itt.binary_outcome(binary_frame(*counts), outcome="improved", arms=ARMS)
    rd = result.risk_difference
    assert rd.estimate is not None and rd.lower <= rd.estimate <= rd.upper
    assert result.odds_ratio.estimate is None and result.odds_ratio.reason


def test_an_arm_with_nobody_analysed_has_no_risk_difference():
    frame = binary_frame(3, 10, 0, 0)
    frame.loc[len(frame)] = {"arm": "B", "improved": np.nan}
    result = itt.binary_outcome(frame, outcome="improved", arms=ARMS)
    assert result.arms[1].proportion is None
    assert result.risk_difference.estimate is None and result.risk_difference.reason


def test_adjusted_odds_ratio_matches_a_logistic_regression_fitted_directly():
    frame = trial_frame()
    result = itt.binary_outcome(
        frame, outcome="improved", arms=ARMS, covariates=["pain_0"], factors=["site", "sex"]
    )
    complete = frame.dropna(subset=["improved", "pain_0"]).copy()
    complete["b"] = (complete["arm"] == "B").astype(float)
    fit = smf.logit("improved ~ b + pain_0 + C(site) + C(sex)", data=complete).fit(disp=0)
    low, high = np.exp(fit.conf_int(0.05).loc["b"])
    odds_ratio = result.odds_ratio
    assert odds_ratio.estimate == pytest.approx(np.exp(fit.params["b"]), rel=1e-6)
    assert (odds_ratio.lower, odds_ratio.upper) == pytest.approx((low, high), rel=1e-6)
    assert odds_ratio.p == pytest.approx(fit.pvalues["b"], rel=1e-6)
    assert odds_ratio.n == len(complete) and odds_ratio.reason == ""
    assert result.n_missing_covariate == (frame["improved"].notna() & frame["pain_0"].isna()).sum()


def test_a_covariate_that_separates_the_outcome_gives_none_with_a_reason():
    frame = trial_frame().dropna(subset=["pain_0"])
    frame["improved"] = (frame["pain_0"] > 6).astype(float)
    result = itt.binary_outcome(frame, outcome="improved", arms=ARMS, covariates=["pain_0"])
    assert result.odds_ratio.estimate is None
    assert "eparation" in result.odds_ratio.reason or "converge" in result.odds_ratio.reason
    assert result.risk_difference.estimate is not None


def test_a_factor_level_with_only_events_gives_none_with_a_reason():
    frame = trial_frame()
    frame.loc[frame["site"] == "east", "improved"] = 1.0
    result = itt.binary_outcome(frame, outcome="improved", arms=ARMS, factors=["site"])
    assert result.odds_ratio.estimate is None and result.odds_ratio.reason


def test_a_binary_outcome_must_be_zero_or_one():
    frame = pd.DataFrame({"arm": list("ABAB"), "improved": [0, 1, 2, 1]})
    with pytest.raises(ValueError):
        itt.binary_outcome(frame, outcome="improved", arms=ARMS)


@settings(max_examples=100, deadline=None)
@given(
    a=st.integers(1, 30).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    b=st.integers(1, 30).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_risk_difference_interval_holds_the_estimate_and_negates_when_swapped(a, b):
    forward = itt.risk_difference(a[0], a[1], b[0], b[1])
    backward = itt.risk_difference(b[0], b[1], a[0], a[1])
    assert forward.lower <= forward.estimate <= forward.upper
    assert forward.lower >= -1.0 - 1e-9 and forward.upper <= 1.0 + 1e-9
    assert backward.estimate == pytest.approx(-forward.estimate)
    assert (backward.lower, backward.upper) == pytest.approx((-forward.upper, -forward.lower))


# --- Weekly SMS -----------------------------------------------------------------------------


def sms_frame() -> pd.DataFrame:
    rows = [
        # participant, arm, week, question, value
        (1, "A", 1, "days", 2),
        (1, "A", 2, "days", 4),
        (2, "A", 1, "days", 6),
        (2, "A", 2, "days", np.nan),
        (3, "B", 1, "days", 1),
        (3, "B", 2, "days", 1),
        (4, "B", 1, "days", 0),
        (4, "B", 2, "days", 3),
        (5, "B", 1, "days", np.nan),
        (1, "A", 1, "pain", 5),
        (3, "B", 1, "pain", 3),
    ]
    return pd.DataFrame(rows, columns=["participant", "arm", "week", "question", "value"])


def test_weekly_means_per_arm_by_hand():
    result = itt.weekly_sms(sms_frame(), arms=ARMS, labels=("X", "Y"), questions=["days"])
    means = {(m.week, m.arm): (m.n, m.mean) for m in result.weekly}
    assert means == {
        (1, "A"): (2, 4.0),
        (1, "B"): (2, 0.5),
        (2, "A"): (1, 4.0),
        (2, "B"): (2, 2.0),
    }
    assert itt.weekly_series(result, "days") == {
        "X": [(1.0, 4.0), (2.0, 4.0)],
        "Y": [(1.0, 0.5), (2.0, 2.0)],
    }


def test_the_sms_comparison_uses_one_mean_per_participant():
    result = itt.weekly_sms(sms_frame(), arms=ARMS)
    days = next(c for c in result.comparisons if c.question == "days")
    # Participant means: A = [3, 6]; B = [1, 1.5] (participant 5 never answered).
    test = stats.ttest_ind([1.0, 1.5], [3.0, 6.0], equal_var=True)
    ci = test.confidence_interval(0.95)
    assert days.difference.estimate == pytest.approx(1.25 - 4.5)
    assert days.difference.p == pytest.approx(test.pvalue)
    assert (days.difference.lower, days.difference.upper) == pytest.approx((ci.low, ci.high))
    assert [(s.n_randomized, s.n_analysed) for s in days.arms] == [(2, 2), (3, 2)]
    pain = next(c for c in result.comparisons if c.question == "pain")
    assert pain.difference.estimate == -2.0 and pain.difference.lower is None


def test_sms_randomized_counts_can_come_from_the_caller():
    result = itt.weekly_sms(sms_frame(), arms=ARMS, n_randomized={"A": 10, "B": 11})
    assert [s.n_randomized for s in result.comparisons[0].arms] == [10, 11]


def test_a_week_without_answers_in_an_arm_has_no_mean():
    frame = sms_frame()
    frame = frame[~((frame["arm"] == "A") & (frame["week"] == 2))]
    frame.loc[len(frame) + 100] = (9, "A", 3, "days", np.nan)
    result = itt.weekly_sms(frame, arms=ARMS, questions=["days"])
    week_three = [m for m in result.weekly if m.week == 3]
    assert [(m.arm, m.n, m.mean) for m in week_three] == [("A", 0, None), ("B", 0, None)]


# --- Table 1 -------------------------------------------------------------------------------


def test_table_one_by_hand():
    frame = pd.DataFrame(
        {
            "arm": ["A", "A", "A", "B", "B"],
            "age": [30.0, 40.0, 50.0, 20.0, np.nan],
            "sex": ["f", "m", "f", "f", None],
            "site": ["s1", "s1", "s2", "s3", "s1"],
        }
    )
    variables = [
        itt.Variable("age", "Age, years", "numeric", decimals=0),
        itt.Variable("sex", "Sex", "categorical", (("f", "Female"), ("m", "Male"))),
        itt.Variable("site", "Site", "categorical", (("s1", "Site 1"),)),
    ]
    table = itt.table1(frame, variables, arms=ARMS, labels=("Usual", "New"))
    assert table.columns == ("Usual", "New", "Overall") and table.n == (3, 2, 5)
    rows = {(r.label, r.level): [c.text for c in r.cells] for r in table.rows}
    assert rows[("Age, years", None)] == ["40 (10)", "20 (–), n=1", "35 (13), n=4"]
    assert rows[("Sex", "Female")] == ["2 (67%)", "1 (100%)", "3 (75%)"]
    assert rows[("Sex", "Male")] == ["1 (33%)", "0 (0%)", "1 (25%)"]
    assert rows[("Sex", "Missing")] == ["0", "1", "1"]
    assert [r.level for r in table.rows if r.variable == "site"] == ["Site 1", "s2", "s3"]
    age_overall = table.rows[0].cells[2]
    assert age_overall.sd == pytest.approx(np.std([30, 40, 50, 20], ddof=1))
    assert (age_overall.n, age_overall.missing) == (4, 1)


# --- Minimization balance --------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [(0, 0.0), (1, 1.0), (2, 1.0), (3, 1.5), (4, 1.5)])
def test_expected_imbalance_of_two_arms_by_hand(n, expected):
    assert itt.expected_range(n, 2) == (pytest.approx(expected), "exact")


@pytest.mark.parametrize(("k", "n"), [(3, 1), (3, 2), (3, 5), (3, 7), (4, 6), (5, 5)])
def test_expected_range_of_more_arms_matches_enumeration(k, n):
    total = 0
    for allocation in itertools.product(range(k), repeat=n):
        counts = [allocation.count(arm) for arm in range(k)]
        total += max(counts) - min(counts)
    assert itt.expected_range(n, k) == (pytest.approx(total / k**n), "exact")


def test_expected_range_beyond_the_exact_limit_is_simulated_reproducibly():
    n = itt.EXACT_RANGE_MAX_N
    exact, _ = itt.expected_range(n, 3)
    itt.expected_range.cache_clear()
    first = itt.expected_range(n + 1, 3)
    itt.expected_range.cache_clear()
    assert itt.expected_range(n + 1, 3) == first
    assert first[1] == "simulated" and first[0] == pytest.approx(exact, rel=0.03)


def test_balance_from_a_dict_and_from_a_frame_agree():
    counts = {"sex": {"f": {"A": 3, "B": 1}, "m": {"A": 2, "B": 2}}, "site": {"s1": {"A": 5}}}
    balance = itt.minimization_balance(counts, arms=ARMS)
    assert [(r.factor, r.level, r.counts, r.imbalance) for r in balance.rows] == [
        ("sex", "f", (3, 1), 2),
        ("sex", "m", (2, 2), 0),
        ("site", "s1", (5, 0), 5),
    ]
    assert balance.total_imbalance == 7
    expected_four = itt.expected_range(4, 2)[0]
    assert balance.expected_total == pytest.approx(2 * expected_four + itt.expected_range(5, 2)[0])
    frame = pd.DataFrame(
        [
            ("sex", "f", "A", 3),
            ("sex", "f", "B", 1),
            ("sex", "m", "A", 2),
            ("sex", "m", "B", 2),
            ("site", "s1", "A", 5),
        ],
        columns=["factor", "level", "arm", "n"],
    )
    assert itt.minimization_balance(frame, arms=ARMS) == balance


def test_three_arm_imbalance_is_max_minus_min():
    balance = itt.minimization_balance({"site": {"s1": {"A": 4, "B": 1, "C": 2}}}, arms="ABC")
    assert balance.rows[0].imbalance == 3 and balance.rows[0].n == 7


# --- Forest rows ---------------------------------------------------------------------------


def test_forest_rows_carry_adjusted_estimates_and_their_scale():
    frame = trial_frame()
    pain = continuous(frame, label="Pain", visit="12 weeks")
    improved = itt.binary_outcome(
        frame, outcome="improved", arms=ARMS, factors=["site"], label="Improved", visit="12 weeks"
    )
    rows = itt.forest_rows([pain, improved])
    assert rows[0] == itt.ForestRow(
        "Pain",
        "12 weeks",
        pain.adjusted.estimate,
        pain.adjusted.lower,
        pain.adjusted.upper,
        "difference",
    )
    assert rows[1].scale == "odds ratio" and rows[1].estimate == improved.odds_ratio.estimate
    unadjusted = itt.forest_rows([pain, improved], adjusted=False)
    assert unadjusted[1].estimate == improved.risk_difference.estimate
    assert {r.scale for r in unadjusted} == {"difference"}


def test_weekly_sms_from_database_summaries_equals_weekly_sms_from_answers():
    """The dashboard gives the database's GROUP BY summaries to weekly_sms_summarised; the
    result must be the one weekly_sms computes from the answers themselves."""
    rng = np.random.default_rng(11)
    rows = [
        (p, w, q, (float(rng.integers(0, 8)) if rng.random() < 0.8 else np.nan), ARMS[p % 2])
        for p in range(40)
        for w in range(1, 7)
        for q in ("pain", "sick")
    ]
    answers = pd.DataFrame(rows, columns=["participant", "week", "question", "value", "arm"])
    direct = itt.weekly_sms(answers, arms=ARMS, questions=["pain", "sick"])
    answered = answers.dropna(subset=["value"])
    cells = (
        answered.groupby(["question", "week", "arm"])["value"].agg(["count", "mean"]).reset_index()
    )
    means = answered.groupby(["question", "arm", "participant"])["value"].mean().reset_index()
    means = means.rename(columns={"value": "mean"})
    summarised = itt.weekly_sms_summarised(
        cells, means, arms=ARMS, questions=["pain", "sick"], n_randomized={"A": 20, "B": 20}
    )
    assert summarised == direct


def test_a_huge_coefficient_on_a_factor_level_counts_as_quasi_separation():
    """The arm's and every factor level's dummy are checked, not the covariates or the
    intercept (the dummies are named by itt.adjusted.Design: f<factor>_<level>)."""
    from outcomes.results.itt.adjusted import quasi_separated as _quasi_separated

    fine = pd.Series({"Intercept": -30.0, "treat": 0.4, "x0": 20.0, "f0_1": 1.2, "f1_2": -0.3})
    assert not _quasi_separated(fine)
    assert _quasi_separated(fine.replace({1.2: -22.0}))  # a factor level
    assert _quasi_separated(fine.replace({0.4: 16.0}))  # the arm
