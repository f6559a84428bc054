"""The results dashboard's content: everything computed from the database in one place, cached.

`dashboard_results(trial, blinded=...)` reads the analysis frames
(outcomes.results.analysis_data, outcomes.results.selectors), runs the pure statistics
(outcomes.results.itt, outcomes.results.consort) and draws the plots (outcomes.results.plots),
labelling arms as the viewer may see them (neutral codes while blinded, trial.blinding).
The result is cached under a fingerprint of the data — the
newest row of every table the results read (index-only MAX lookups) and the allocation
count — so any entry, correction, status change, visit or SMS answer gives a fresh
computation on the next view, and an unchanged trial is served from the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db.models import Subquery
from django.utils import timezone

from outcomes.instruments.models import EQ5DValueSet, Instrument, OutcomeEntry
from outcomes.results import analysis_data, consort, itt, plots, selectors, window_counts
from outcomes.results.background import Beside
from outcomes.sms.models import SmsAnswer, SmsQuestion, SmsWeek
from participants.models import (
    FactorLevelCount,
    Participant,
    ScreeningRecord,
    StatusChange,
    Visit,
)
from trial import blinding
from trial.models import (
    Arm,
    BaselineVariable,
    FactorLevel,
    MinimizationFactor,
    Site,
    Trial,
    VisitDefinition,
)

CACHE_SECONDS = 24 * 3600
CONTINUOUS_KINDS = (Instrument.Kind.PAIN_NRS, Instrument.Kind.RMDQ, Instrument.Kind.EQ5D_3L)


@dataclass
class Results:
    computed_at: dt.datetime
    blinded: bool
    arm_labels: list[str]
    randomized: int
    target: int
    recruitment_svg: str
    consort: consort.Consort
    consort_svg: str
    table1: itt.Table1
    balance: itt.Balance
    completeness: list[dict]
    continuous: list[itt.ContinuousResult] = field(default_factory=list)
    binary: list[itt.BinaryResult] = field(default_factory=list)
    forest_differences_svg: str = ""
    forest_odds_svg: str = ""
    sms: itt.SmsResult | None = None
    sms_plots: list[str] = field(default_factory=list)
    sms_response_svg: str = ""
    sms_labels: dict[str, str] = field(default_factory=dict)
    # (question label, comparison) for the table.
    sms_rows: list[tuple[str, itt.SmsComparison]] = field(default_factory=list)
    # One row per row of the ITT tables, in their order.
    outside_window: list[window_counts.OutsideWindow] = field(default_factory=list)


# Configuration the results show or are computed with (labels, the target, visit windows,
# value sets, factor levels): an admin edit adds a history row to one of these.
CONFIGURATION = (
    Trial, Site, Arm, BaselineVariable, MinimizationFactor, FactorLevel, VisitDefinition,
    Instrument, EQ5DValueSet, SmsQuestion,
)  # fmt: skip


def fingerprint(trial: Trial) -> str:
    """Changes whenever data the results read change (every write adds a history row or a
    row with a higher id), when the configuration is edited, and at midnight (what is due
    or missed depends on the day). One query: each part is a subquery reading the last
    key of a primary-key index."""
    latest = {
        model: model.history.order_by("-history_id").values("history_id")[:1]
        for model in (*CONFIGURATION, OutcomeEntry, Visit, Participant, ScreeningRecord)
    }
    for model in (StatusChange, SmsAnswer, SmsWeek):
        latest[model] = model.objects.order_by("-pk").values("pk")[:1]
    row = (
        Trial.objects.filter(pk=trial.pk)
        .annotate(**{f"last_{i}": Subquery(q) for i, q in enumerate(latest.values())})
        .values_list("allocation_count", "unblinded_at", *(f"last_{i}" for i in range(len(latest))))
        .first()
    )
    parts = [timezone.localdate(timezone=trial.zone), *(row or ())]
    # Hashed: a cache key must be short and plain (memcached refuses spaces).
    return hashlib.sha1("-".join(str(p) for p in parts).encode()).hexdigest()


def dashboard_results(trial: Trial, *, blinded: bool, refresh: bool = False) -> Results:
    """The dashboard's results, from the cache unless the data changed or `refresh`."""
    key = f"dashboard:{trial.pk}:{'blinded' if blinded else 'open'}:{fingerprint(trial)}"
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    results = compute(trial, blinded=blinded)
    cache.set(key, results, CACHE_SECONDS)
    return results


def compute(trial: Trial, *, blinded: bool) -> Results:
    today = timezone.localdate(timezone=trial.zone)
    # Computed once for every blinded (or every unblinded) reader: columns in the order
    # trial.blinding.arm_view gives.
    arms = blinding.arm_view(trial, blinded=blinded).arms
    labels = [arm.label for arm in arms]
    codes = [arm.code for arm in arms]
    label_of = dict(zip(codes, labels, strict=True))

    # Reads that need nothing else run beside the analysis frame, on a connection of their
    # own (outcomes.results.background.Beside; in turn inside a transaction): the server's work
    # overlaps this process's. One thread for the three: a connection each was slower on
    # two cores (3.08 against 2.95 s in process at 100,000) and took three connections.
    reads = Beside(_independent_reads, trial, today, label_of)
    try:
        data = analysis_data.analysis_frame(trial)
    finally:
        reads.wait()  # no thread outlives this call, whatever happened
    visits, completeness, sms_summaries = reads.result()
    randomized = len(data)
    consort_counts = selectors.consort_counts(trial, list(label_of.items()), today, data, visits)

    results = Results(
        computed_at=timezone.now(),
        blinded=blinded,
        arm_labels=labels,
        randomized=randomized,
        target=trial.target_sample_size,
        recruitment_svg=_recruitment(trial, data),
        consort=consort_counts,
        consort_svg=consort.svg(consort_counts),
        table1=_table1(trial, data, codes, labels),
        balance=_balance(trial, codes, [arm.ratio for arm in arms]),
        completeness=completeness,
    )
    if randomized and len(codes) == 2:
        _itt(trial, data, codes, labels, results)
        results.outside_window = window_counts.outside_window(
            trial, data, visits, [*results.continuous, *results.binary]
        )
        _sms(trial, data, codes, labels, results, sms_summaries)
    return results


# --- Parts ------------------------------------------------------------------------------------


def _independent_reads(trial: Trial, today: dt.date, label_of: dict[str, str]):
    return (
        selectors.consort_visits(trial),
        _completeness(trial, today, label_of),
        analysis_data.sms_summaries(trial),
    )


def _baseline_visit(trial: Trial) -> str | None:
    return (
        VisitDefinition.objects.filter(trial=trial, at_randomization=True)
        .values_list("code", flat=True)
        .first()
    )


def _factor_columns(trial: Trial) -> list[str]:
    return [
        f"factor_{code}"
        for code in MinimizationFactor.objects.filter(trial=trial)
        .order_by("order", "pk")
        .values_list("code", flat=True)
    ]


def _recruitment(trial: Trial, data) -> str:
    # Sites in order of their first randomization (the plot's colours and legend follow
    # it); grouped by pandas, not one Python step per participant (0.24 s at 100,000).
    by_site: dict[str, list[dt.date]] = {}
    if len(data):
        for site, days in data.groupby("site", sort=False)["randomized_on"]:
            by_site[f"Site {site}"] = days.tolist()
    return plots.recruitment_svg(
        by_site, target=trial.target_sample_size, title="Randomized over time, per site"
    )


def _table1(trial: Trial, data, codes: list[str], labels: list[str]) -> itt.Table1:
    variables = [
        itt.Variable(f"bl_{v.code}", f"{v.label}{f' ({v.unit})' if v.unit else ''}", "numeric")
        for v in BaselineVariable.objects.filter(trial=trial)
        .select_related("source_instrument")
        .order_by("order", "pk")
        if not hasattr(v, "source_instrument")
    ]
    for factor in MinimizationFactor.objects.filter(trial=trial).prefetch_related("levels"):
        variables.append(
            itt.Variable(
                f"factor_{factor.code}",
                factor.name,
                "categorical",
                tuple((level.code, level.label) for level in factor.levels.all()),
            )
        )
    baseline = _baseline_visit(trial)
    if baseline:
        for instrument in Instrument.objects.filter(
            trial=trial, visits__code=baseline, kind__in=CONTINUOUS_KINDS
        ).order_by("order", "pk"):
            decimals = 3 if instrument.kind == Instrument.Kind.EQ5D_3L else 1
            label = instrument.name + (" index" if decimals == 3 else "")
            variables.append(
                itt.Variable(f"{instrument.code}_{baseline}", label, "numeric", decimals=decimals)
            )
            if instrument.kind == Instrument.Kind.EQ5D_3L:
                variables.append(
                    itt.Variable(f"{instrument.code}_vas_{baseline}", "EQ VAS (0–100)", "numeric")
                )
    present = [v for v in variables if len(data) and v.name in data.columns]
    frame = data if len(data) else _empty_frame()
    return itt.table1(frame, present, arms=codes, labels=labels)


def _empty_frame():
    import pandas as pd

    return pd.DataFrame({"arm": pd.Series(dtype=object)})


def _balance(trial: Trial, codes: list[str], ratios: list[int]) -> itt.Balance:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for factor, level, arm, n in (
        FactorLevelCount.objects.filter(trial=trial)
        .order_by("level__factor__order", "level__order")
        .values_list("level__factor__name", "level__label", "arm__code", "count")
    ):
        per_arm = counts.setdefault(factor, {}).setdefault(level, {})
        per_arm[arm] = per_arm.get(arm, 0) + n  # an arm's slots (unequal ratios) add up
    return itt.minimization_balance(counts, arms=codes, ratios=ratios)


def _completeness(trial: Trial, today: dt.date, label_of: dict[str, str]) -> list[dict]:
    # Rows in the order of the labels shown (code order when blinded): sorting by the real
    # arm code would tell which code is which arm.
    position = {code: i for i, code in enumerate(label_of)}
    rows = []
    for row in selectors.followup_completeness(trial, today):
        row = dict(row)
        row["arm_label"] = label_of.get(row["arm"], row["arm"])
        rows.append(row)
    rows.sort(
        key=lambda r: (r["definition__order"], r["definition__code"], position.get(r["arm"], -1))
    )
    return rows


def _itt(trial: Trial, data, codes, labels, results: Results) -> None:
    baseline = _baseline_visit(trial)
    factors = [c for c in _factor_columns(trial) if c in data.columns]
    visits = selectors.followup_definitions(trial)
    instruments = list(Instrument.objects.filter(trial=trial).prefetch_related("visits"))
    continuous, binary = [], []
    for instrument in instruments:
        due = {v.code for v in instrument.visits.all()}
        for visit_code, visit_label in visits:
            if visit_code not in due:
                continue
            if instrument.kind in CONTINUOUS_KINDS:
                specs = [(f"{instrument.code}_{visit_code}", f"{instrument.code}_{baseline}")]
                names = [instrument.name]
                if instrument.kind == Instrument.Kind.EQ5D_3L:
                    names = [f"{instrument.name} index", "EQ VAS (0–100)"]
                    specs.append(
                        (f"{instrument.code}_vas_{visit_code}", f"{instrument.code}_vas_{baseline}")
                    )
                for (outcome, base), name in zip(specs, names, strict=True):
                    if outcome in data.columns:
                        covariates = (base,) if base in data.columns else ()
                        continuous.append(itt.Outcome(outcome, covariates, name, visit_label))
            elif instrument.kind == Instrument.Kind.GLOBAL_7:
                outcome = f"{instrument.code}_improved_{visit_code}"
                if outcome in data.columns:
                    label = f"{instrument.name}: improved"
                    binary.append(itt.Outcome(outcome, (), label, visit_label))
    # All outcomes in one call of each kind: the arm and the factors are coded once, and
    # models over the same participants share one factorization (outcomes.results.itt.adjusted).
    results.continuous = itt.continuous_outcomes(
        data, continuous, arms=codes, labels=labels, factors=factors
    )
    if binary:
        # True/False/None (or NaN) as 1.0/0.0/NaN, on the columns the models use (a copy of
        # the whole frame and a Python call per value cost 0.1 s).
        improved = {}
        for spec in binary:
            answers = data[spec.outcome].to_numpy(dtype=object)
            improved[spec.outcome] = np.where(pd.isna(answers), np.nan, answers == True)  # noqa: E712
        frame = data[["arm", *factors]].assign(**improved)
        results.binary = itt.binary_outcomes(
            frame, binary, arms=codes, labels=labels, factors=factors
        )
    differences = [
        row
        for row in itt.forest_rows(results.continuous, adjusted=True)
        if row.scale == "difference"
    ]
    odds = itt.forest_rows(results.binary, adjusted=True)
    reference, comparison = labels
    if differences:
        results.forest_differences_svg = plots.forest_svg(
            differences,
            title=f"Adjusted differences in means, {comparison} − {reference} (95% CI)",
        )
    if odds:
        results.forest_odds_svg = plots.forest_svg(
            odds,
            title=f"Adjusted odds ratios of improvement, {comparison} vs {reference} (95% CI)",
        )


def _sms(trial: Trial, data, codes, labels, results: Results, summaries) -> None:
    questions = list(SmsQuestion.objects.filter(trial=trial).order_by("order", "pk"))
    results.sms_labels = {q.code: q.label for q in questions}
    if not questions:
        return
    cells, means = summaries
    if not len(cells):
        return
    results.sms = itt.weekly_sms_summarised(
        cells,
        means,
        arms=codes,
        labels=labels,
        questions=[q.code for q in questions],
        n_randomized=data["arm"].value_counts().to_dict(),
    )
    results.sms_rows = [(results.sms_labels[c.question], c) for c in results.sms.comparisons]
    for question in questions:
        results.sms_plots.append(
            plots.line_svg(
                itt.weekly_series(results.sms, question.code),
                title=f"{question.label}: mean per week and arm",
                y_label="days",
                y_range=(question.min_value, question.max_value),
            )
        )
    # One series per label, in the labels' order (colours and legend follow it).
    rates: dict[str, list[tuple[float, float | None]]] = {label: [] for label in labels}
    label_of = dict(zip(codes, labels, strict=True))
    for row in selectors.sms_response_rates(trial):
        rate = 100.0 * row["answered"] / row["sent"] if row["sent"] else None
        rates.setdefault(label_of.get(row["arm"], row["arm"]), []).append((row["week"], rate))
    results.sms_response_svg = plots.line_svg(
        rates, title="SMS response rate per week and arm", y_label="% answered", y_range=(0, 100)
    )
