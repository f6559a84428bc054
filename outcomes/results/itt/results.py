"""Constants and the frozen result types every analysis returns.
Pure: no Django."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scipy import stats

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
class Outcome:
    """One outcome to analyse: its column, the covariates its adjusted model adds (the
    outcome's baseline value), and what to call it."""

    outcome: str
    covariates: tuple[str, ...] = ()
    label: str = ""
    visit: str = ""


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
    # max - min (|a - b| for two arms); with unequal ratios the range of the deviations
    # from the ratio's split, a float.
    imbalance: int | float
    expected_simple: float  # expected max - min under simple randomization
    expected_method: str  # "exact" or "simulated"


@dataclass(frozen=True)
class Balance:
    arms: tuple[str, ...]
    rows: tuple[BalanceRow, ...]
    total_imbalance: int | float
    expected_total: float
    ratios: tuple[int, ...] = ()  # per arm; empty or all equal: equal allocation

    @property
    def ratio(self) -> str:
        """ "2:1" when the arms' allocation ratios differ, else ""."""
        return ":".join(map(str, self.ratios)) if len(set(self.ratios)) > 1 else ""


@dataclass(frozen=True)
class ForestRow:
    label: str
    visit: str
    estimate: float | None
    lower: float | None
    upper: float | None
    scale: Literal["difference", "odds ratio"]
