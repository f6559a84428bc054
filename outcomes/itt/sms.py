"""The weekly SMS outcomes: weekly means per arm and a participant-level comparison.
Pure: no Django."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from outcomes.itt._common import _check_arms, _labels, _mean_sd, _num, _numeric, _pooled_difference
from outcomes.itt.results import SMS_METHOD, ArmSummary, SmsComparison, SmsResult, WeeklyMean

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
