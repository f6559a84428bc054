"""The weekly SMS outcomes: weekly means per arm and a participant-level comparison.
Pure: no Django."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from outcomes.results.itt._common import (
    _check_arms,
    _labels,
    _mean_sd,
    _num,
    _numeric,
    _pooled_difference,
)
from outcomes.results.itt.results import (
    SMS_METHOD,
    ArmSummary,
    SmsComparison,
    SmsResult,
    WeeklyMean,
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
    answered = frame.dropna(subset=[value])
    # One pass of groupby, not a boolean mask per question, week and arm (that was
    # O(weeks × arms × answers): minutes for 100,000 participants' 62 weeks).
    cells = (
        answered.groupby([question, week, arm], observed=True)[value]
        .agg(["count", "mean"])
        .reset_index()
        .rename(columns={question: "question", week: "week", arm: "arm"})
    )
    means = (
        answered.groupby([question, arm, participant], observed=True)[value]
        .mean()
        .reset_index()
        .rename(
            columns={question: "question", arm: "arm", participant: "participant", value: "mean"}
        )
    )
    weeks = frame.groupby(question)[week].unique().to_dict()
    if n_randomized is None:
        n_randomized = answers.groupby(arm)[participant].nunique().to_dict()
    return weekly_sms_summarised(
        cells, means, arms=arms, labels=names, questions=questions,
        n_randomized=n_randomized, weeks=weeks,
    )  # fmt: skip


def weekly_sms_summarised(
    cells: pd.DataFrame,
    means: pd.DataFrame,
    *,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    questions: Sequence[str],
    n_randomized: Mapping[str, int],
    weeks: Mapping[str, Sequence[int]] | None = None,
) -> SmsResult:
    """weekly_sms from answers already summarised (e.g. by the database, so millions of
    answers never reach Python): `cells` has one row per question, week and arm with the
    answers' `count` and `mean`; `means` one row per question, arm and participant with the
    participant's `mean` over answered weeks. `weeks` per question: the weeks to report
    (default: those in `cells`)."""
    names = _labels(arms, labels)
    lookup = {
        (str(q), int(w), str(a)): (int(n), m)
        for q, w, a, n, m in cells[["question", "week", "arm", "count", "mean"]].itertuples(
            index=False, name=None
        )
    }
    by_arm: dict[tuple[str, str], np.ndarray] = {
        (str(q), str(a)): group["mean"].to_numpy(dtype=float)
        for (q, a), group in means.groupby(["question", "arm"], observed=True)
    }
    weekly: list[WeeklyMean] = []
    comparisons: list[SmsComparison] = []
    for code in questions:
        if weeks is not None:
            listed = weeks.get(code, ())
        else:
            listed = cells.loc[cells["question"] == code, "week"]
        for w in sorted({int(x) for x in listed if not pd.isna(x)}):
            for arm_code, name in zip(arms, names, strict=True):
                count, mean = lookup.get((str(code), w, str(arm_code)), (0, None))
                mean = _num(float(mean)) if count else None
                weekly.append(WeeklyMean(str(code), w, str(arm_code), name, count, mean))
        summaries, groups = [], []
        for arm_code, name in zip(arms, names, strict=True):
            values = by_arm.get((str(code), str(arm_code)), np.array([], dtype=float))
            groups.append(values)
            mean, sd = _mean_sd(values)
            summaries.append(
                ArmSummary(
                    str(arm_code), name, int(n_randomized.get(arm_code, 0)), len(values), mean, sd
                )
            )
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
