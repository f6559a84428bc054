"""Table 1: baseline characteristics by arm and overall.
Pure: no Django."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from outcomes.itt._common import _check_arms, _labels, _mean_sd, _numeric
from outcomes.itt.results import Cell, Table1, Table1Row, Variable

# --- Table 1 -------------------------------------------------------------------------------


def _numeric_cell(values: pd.Series, decimals: int) -> Cell:
    present = values.dropna().to_numpy()
    missing = len(values) - len(present)
    mean, sd = _mean_sd(present)
    if mean is None:
        text = "–"
    else:
        text = f"{mean:.{decimals}f} ({'–' if sd is None else f'{sd:.{decimals}f}'})"
        if missing:
            text += f", n={len(present)}"
    return Cell(text, len(present), missing, mean=mean, sd=sd)


def table1(
    data: pd.DataFrame,
    variables: Sequence[Variable],
    *,
    arms: Sequence[str],
    labels: Sequence[str] | None = None,
    arm: str = "arm",
    overall: str = "Overall",
) -> Table1:
    """Baseline characteristics by arm (any number of arms) and overall: numeric as
    mean (SD), with n when values are missing; categorical as n (%) of those with a value,
    percentages rounded to whole numbers, and a "Missing" row when any are missing. No
    p-values: baseline differences after randomization are chance by construction (CONSORT
    2010, item 15)."""
    _check_arms(data, arm, arms, two=False)
    names = _labels(arms, labels)
    columns = [data[data[arm] == code] for code in arms] + [data]
    rows: list[Table1Row] = []
    for var in variables:
        if var.kind == "numeric":
            cells = tuple(_numeric_cell(_numeric(c[var.name]), var.decimals) for c in columns)
            rows.append(Table1Row(var.name, var.label, None, cells))
            continue
        levels = list(var.levels)
        listed = {value for value, _ in levels}
        extra = sorted(set(data[var.name].dropna().unique()) - listed, key=str)
        levels += [(value, str(value)) for value in extra]
        for value, level_label in levels:
            cells = []
            for c in columns:
                present = c[var.name].dropna()
                count = int((present == value).sum())
                percent = 100 * count / len(present) if len(present) else None
                text = f"{count} ({percent:.0f}%)" if percent is not None else "0"
                missing = len(c) - len(present)
                cells.append(Cell(text, len(present), missing, count=count, percent=percent))
            rows.append(Table1Row(var.name, var.label, level_label, tuple(cells)))
        if data[var.name].isna().any():
            cells = []
            for c in columns:
                missing = int(c[var.name].isna().sum())
                cells.append(Cell(str(missing), len(c) - missing, missing, count=missing))
            rows.append(Table1Row(var.name, var.label, "Missing", tuple(cells)))
    return Table1(
        columns=(*names, overall),
        n=tuple(len(c) for c in columns),
        rows=tuple(rows),
    )
