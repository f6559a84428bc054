"""Estimates ready for plots.forest_svg.
Pure: no Django."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from outcomes.results.itt.results import BinaryResult, ContinuousResult, ForestRow

# --- Forest plot ---------------------------------------------------------------------------


def forest_rows(
    results: Iterable[ContinuousResult | BinaryResult], *, adjusted: bool = True
) -> list[ForestRow]:
    """One row per result: the adjusted difference / odds ratio (or, with adjusted=False, the
    unadjusted difference / risk difference). Not estimable rows keep None."""
    rows = []
    for result in results:
        if isinstance(result, ContinuousResult):
            est = result.adjusted if adjusted else result.unadjusted
            scale: Literal["difference", "odds ratio"] = "difference"
        else:
            est = result.odds_ratio if adjusted else result.risk_difference
            scale = "odds ratio" if adjusted else "difference"
        rows.append(
            ForestRow(result.label, result.visit, est.estimate, est.lower, est.upper, scale)
        )
    return rows
