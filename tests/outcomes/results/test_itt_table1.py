"""Table 1 counted from column codes (outcomes.results.itt.table1) gives what counting each level in
each arm by comparison gives, whatever the levels, missing values and arms."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.results import itt

ARMS = ("A", "B", "C")


def counted_by_comparison(frame: pd.DataFrame, variable: itt.Variable) -> list[tuple]:
    """(level, [(count, non-missing, missing) per arm and overall]) as written out plainly."""
    columns = [frame[frame["arm"] == code] for code in ARMS] + [frame]
    levels = list(variable.levels)
    listed = {value for value, _ in levels}
    extra = sorted(set(frame[variable.name].dropna().unique()) - listed, key=str)
    levels += [(value, str(value)) for value in extra]
    rows = []
    for value, label in levels:
        cells = []
        for c in columns:
            present = c[variable.name].dropna()
            cells.append((int((present == value).sum()), len(present), len(c) - len(present)))
        rows.append((label, cells))
    if frame[variable.name].isna().any():
        rows.append(
            ("Missing", [(int(c[variable.name].isna().sum()), None, None) for c in columns])
        )
    return rows


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(ARMS), st.sampled_from(["f", "m", "x", "10", "9", None])),
        min_size=1,
        max_size=40,
    ),
    listed=st.lists(st.sampled_from(["f", "m", "q"]), unique=True, max_size=3),
    as_string_dtype=st.booleans(),
)
def test_categorical_rows_equal_counting_each_level_by_comparison(rows, listed, as_string_dtype):
    frame = pd.DataFrame(rows, columns=["arm", "sex"])
    if as_string_dtype:  # as the analysis frame holds text (pandas' str dtype; None kept missing)
        frame["sex"] = frame["sex"].astype("str")
        assert frame["sex"].isna().sum() == sum(sex is None for _, sex in rows)
    variable = itt.Variable("sex", "Sex", "categorical", tuple((v, v.upper()) for v in listed))
    table = itt.table1(frame, [variable], arms=ARMS)
    expected = counted_by_comparison(frame, variable)
    assert [row.level for row in table.rows] == [label for label, _ in expected]
    for row, (_, cells) in zip(table.rows, expected, strict=True):
        if row.level == "Missing":
            assert [cell.count for cell in row.cells] == [count for count, _, _ in cells]
            continue
        assert [(c.count, c.n, c.missing) for c in row.cells] == cells
        for cell in row.cells:
            if cell.n:
                assert cell.percent == pytest.approx(100 * cell.count / cell.n)
    assert table.n == (*((frame["arm"] == code).sum() for code in ARMS), len(frame))
