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
    continuous_outcomes, binary_outcomes
                         the same for several outcomes (itt.Outcome), sharing the adjusted
                         models' work: design coded once, one QR per set of rows
    weekly_sms           weekly means per arm (plot) and a participant-level comparison
                         (weekly_sms_summarised: the same from database summaries)
    table1               baseline characteristics by arm and overall
    minimization_balance imbalance per factor level against simple randomization
    forest_rows          estimates ready for plots.forest_svg
Building blocks, public for reuse and tests: risk_difference, wilson_interval,
expected_range, weekly_series.

Modules: results (constants and result types), effects (continuous and binary outcomes),
adjusted (their adjusted models, fitted together; BLAS on one thread), sms, table1, balance,
forest; _common holds what they share. Everything public is importable from
the package: ``from outcomes import itt; itt.continuous_outcome(...)``.

Numeric columns are read with pandas.to_numeric (Decimal, bool and numeric strings are fine;
other text counts as missing).
"""

from __future__ import annotations

from outcomes.results.itt.balance import (
    expected_deviation_range,
    expected_range,
    minimization_balance,
)
from outcomes.results.itt.effects import (
    binary_outcome,
    binary_outcomes,
    continuous_outcome,
    continuous_outcomes,
    risk_difference,
    wilson_interval,
)
from outcomes.results.itt.forest import (
    forest_rows,
)
from outcomes.results.itt.results import (
    ADJUSTED_OLS_METHOD,
    CONFIDENCE,
    EXACT_RANGE_MAX_N,
    LOGIT_METHOD,
    MAX_LOG_ODDS,
    NEWCOMBE_METHOD,
    OLS_METHOD,
    SIMULATION_DRAWS,
    SIMULATION_SEED,
    SMS_METHOD,
    WALD_METHOD,
    ArmProportion,
    ArmSummary,
    Balance,
    BalanceRow,
    BinaryResult,
    Cell,
    ContinuousResult,
    Estimate,
    ForestRow,
    Outcome,
    SmsComparison,
    SmsResult,
    Table1,
    Table1Row,
    Variable,
    WeeklyMean,
    Z,
)
from outcomes.results.itt.sms import (
    weekly_series,
    weekly_sms,
    weekly_sms_summarised,
)
from outcomes.results.itt.table1 import (
    table1,
)

__all__ = [
    "ADJUSTED_OLS_METHOD",
    "ArmProportion",
    "ArmSummary",
    "Balance",
    "BalanceRow",
    "BinaryResult",
    "CONFIDENCE",
    "Cell",
    "ContinuousResult",
    "EXACT_RANGE_MAX_N",
    "Estimate",
    "ForestRow",
    "LOGIT_METHOD",
    "MAX_LOG_ODDS",
    "NEWCOMBE_METHOD",
    "OLS_METHOD",
    "SIMULATION_DRAWS",
    "SIMULATION_SEED",
    "SMS_METHOD",
    "SmsComparison",
    "SmsResult",
    "Table1",
    "Table1Row",
    "Variable",
    "WALD_METHOD",
    "WeeklyMean",
    "Z",
    "Outcome",
    "binary_outcome",
    "binary_outcomes",
    "continuous_outcome",
    "continuous_outcomes",
    "expected_deviation_range",
    "expected_range",
    "forest_rows",
    "minimization_balance",
    "risk_difference",
    "table1",
    "weekly_series",
    "weekly_sms",
    "weekly_sms_summarised",
    "wilson_interval",
]
