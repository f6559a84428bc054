"""SVG plots (outcomes.results.plots): well-formed, accessible, and one mark per number."""

from __future__ import annotations

import ast
import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outcomes.results import plots
from outcomes.results.itt import ForestRow

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}desc").get("id") == desc_id
    return root


def marks(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == css]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{SVG}text")]


def test_the_plots_never_import_django():
    tree = ast.parse(Path(plots.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] in ("django", "matplotlib")]


# --- Forest --------------------------------------------------------------------------------

DIFFERENCES = [
    ForestRow("Pain <0–10>", "12 weeks", -1.2, -2.0, -0.4, "difference"),
    ForestRow("Roland–Morris & co", "12 weeks", 0.5, -1.5, 2.5, "difference"),
    ForestRow("EQ VAS", "12 weeks", None, None, None, "difference"),
]


def test_a_forest_plot_has_one_estimate_and_interval_per_estimable_row():
    root = parse(plots.forest_svg(DIFFERENCES, title="Differences at 12 weeks"))
    assert len(marks(root, "rect", "estimate")) == 2
    assert len(marks(root, "line", "ci")) == 2
    assert len(marks(root, "line", "reference")) == 1
    assert "not estimable" in texts(root)
    assert "Pain <0–10>, 12 weeks" in texts(root)  # escaped in the source, intact when parsed
    desc = root.find(f"{SVG}desc").text
    assert "-1.2 (95% CI -2 to -0.4)" in desc and "EQ VAS, 12 weeks: not estimable" in desc


def test_the_reference_line_sits_at_zero_for_differences():
    rows = [ForestRow("Zero", "", 0.0, -1.0, 1.0, "difference")]
    root = parse(plots.forest_svg(rows))
    (reference,) = marks(root, "line", "reference")
    (estimate,) = marks(root, "rect", "estimate")
    centre = float(estimate.get("x")) + float(estimate.get("width")) / 2
    assert float(reference.get("x1")) == pytest.approx(centre, abs=0.11)


def test_odds_ratios_are_drawn_on_a_log_scale_around_one():
    rows = [
        ForestRow("Improved", "12 weeks", 2.0, 1.0, 4.0, "odds ratio"),
        ForestRow("Improved", "52 weeks", 0.5, 0.25, 1.0, "odds ratio"),
    ]
    root = parse(plots.forest_svg(rows))
    (reference,) = marks(root, "line", "reference")
    ci = marks(root, "line", "ci")
    one = float(reference.get("x1"))
    # On a log scale 1..4 and 0.25..1 are mirror images about 1.
    assert float(ci[0].get("x1")) == pytest.approx(one, abs=0.11)
    assert float(ci[1].get("x2")) == pytest.approx(one, abs=0.11)
    assert float(ci[0].get("x2")) - one == pytest.approx(one - float(ci[1].get("x1")), abs=0.2)
    assert "odds ratio (log scale)" in texts(root)


def test_differences_and_odds_ratios_are_not_mixed_on_one_axis():
    rows = [DIFFERENCES[0], ForestRow("Improved", "", 2.0, 1.0, 4.0, "odds ratio")]
    with pytest.raises(ValueError):
        plots.forest_svg(rows)


def test_an_empty_or_all_missing_forest_plot_still_parses():
    parse(plots.forest_svg([]))
    root = parse(plots.forest_svg([DIFFERENCES[2]]))
    assert marks(root, "rect", "estimate") == []


# --- Line plot -----------------------------------------------------------------------------


def test_a_line_plot_marks_every_answered_week_and_breaks_at_gaps():
    series = {
        "A": [(1, 2.0), (2, 2.5), (3, None), (4, 3.0), (5, 3.5)],
        "B": [(1, 1.0), (2, 1.5), (3, 1.0), (4, 1.2), (5, 0.9)],
    }
    root = parse(plots.line_svg(series, title="Days with pain", y_label="Days"))
    assert len(marks(root, "circle", "point")) == 9
    assert len(marks(root, "polyline", "series")) == 3  # A in two pieces, B in one
    assert len(marks(root, "line", "legend")) == 2
    assert "3: no data" in root.find(f"{SVG}desc").text


def test_a_line_plot_with_no_data_still_parses():
    root = parse(plots.line_svg({"A": [(1, None)]}, title="Nothing yet"))
    assert marks(root, "circle", "point") == []


# --- Recruitment ---------------------------------------------------------------------------


def test_recruitment_has_a_step_line_per_site_a_total_and_a_target():
    day = dt.date(2026, 1, 5)
    sites = {
        "Odense": [day, day + dt.timedelta(days=3), day + dt.timedelta(days=40)],
        "Aarhus": [day + dt.timedelta(days=10)],
    }
    svg = plots.recruitment_svg(sites, target=20, start=day, end=dt.date(2026, 12, 31))
    root = parse(svg)
    assert len(marks(root, "path", "site")) == 2
    assert len(marks(root, "path", "total")) == 1
    assert len(marks(root, "line", "target")) == 1
    (total,) = marks(root, "path", "total")
    assert total.get("d").count(" V") == 4  # one step up per day with randomizations
    assert "2026-12-31" in texts(root) and "Target: 20" in texts(root)


def test_recruitment_steps_once_per_day_up_to_the_days_cumulative_count():
    day = dt.date(2026, 1, 5)
    many = [day] * 500 + [day + dt.timedelta(days=1)] * 300
    root = parse(plots.recruitment_svg({"Odense": many}, target=800))
    (total,) = marks(root, "path", "total")
    heights = re.findall(r"V([-\d.]+)", total.get("d"))
    assert len(heights) == 2
    top = float(heights[-1])
    (target,) = marks(root, "line", "target")
    assert top == pytest.approx(float(target.get("y2")), abs=0.1)  # 800 reached, on target


def test_recruitment_without_target_or_participants_still_parses():
    root = parse(plots.recruitment_svg({"Odense": []}))
    assert marks(root, "line", "target") == []
    assert len(marks(root, "path", "site")) == 1


@given(
    lo=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(1e-3, 1e6, allow_nan=False),
)
def test_nice_ticks_cover_the_range_in_even_steps(lo, width):
    hi = lo + width
    ticks = plots.nice_ticks(lo, hi)
    assert ticks[0] <= lo + 1e-9 * max(1, abs(lo)) and 2 <= len(ticks) <= 12
    steps = {round(b - a, 6) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) <= 2  # equal up to rounding


def _relative_luminance(colour: str) -> float:
    """WCAG 2.2's relative luminance of an sRGB colour "#rrggbb"."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_series_colour_and_the_ink_stand_out_from_the_white_plot_background():
    """Lines, points and marks identify the data: graphical objects need 3:1 against the
    background (WCAG 2.2 SC 1.4.11); the text 4.5:1 (SC 1.4.3)."""
    low = {c: round(_contrast(c, "#FFFFFF"), 2) for c in plots.PALETTE}
    assert {c: r for c, r in low.items() if r < 3} == {}, low
    assert _contrast(plots.INK, "#FFFFFF") >= 4.5
    assert len(set(plots.PALETTE)) == len(plots.PALETTE) >= 7
