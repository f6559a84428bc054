"""Small self-contained SVG plots, pure (no Django, no matplotlib): strings in, strings out.

    forest_svg       estimates with 95% CIs, a reference line at 0 (differences) or 1 (odds
                     ratios, log scale)
    line_svg         one line per series, e.g. weekly SMS means per arm (None breaks a line)
    recruitment_svg  cumulative recruitment per site and overall, with a target line

Each SVG has role="img", a <title> and a <desc> that states the numbers in words, so a screen
reader gets the data and not only the picture. Marks carry a class ("estimate", "ci",
"point", "site", ...) that a stylesheet or a test can select. Colours: the first four of
Okabe & Ito's colour-blind-safe palette, then Tol's indigo and wine and a dark gold in place
of Okabe & Ito's orange, sky blue and yellow, which are too light on white: every mark has
at least 3:1 against the white background (WCAG 2.2 SC 1.4.11).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol
from xml.sax.saxutils import escape

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#332288", "#882255", "#8C6D00")
INK = "#222222"
GRID = "#CCCCCC"
FONT = "font-family='system-ui, sans-serif' font-size='12'"


class ForestPoint(Protocol):
    label: str
    visit: str
    estimate: float | None
    lower: float | None
    upper: float | None
    scale: str


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def _svg(width: int, height: int, title: str, desc: str, body: list[str], key: str) -> str:
    ident = _slug(key)
    return "\n".join(
        [
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' role='img' "
            f"aria-labelledby='{ident}-title {ident}-desc' {FONT}>",
            f"<title id='{ident}-title'>{escape(title)}</title>",
            f"<desc id='{ident}-desc'>{escape(desc)}</desc>",
            *body,
            "</svg>",
        ]
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' fill='{INK}'{extra}>"
        f"{escape(text)}</text>"
    )


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering lo..hi (steps of 1, 2 or 5 times a power of ten)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _scale(lo: float, hi: float, start: float, end: float):
    span = (hi - lo) or 1.0
    return lambda v: start + (v - lo) / span * (end - start)


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    body = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        yy = y + 16 * i
        body.append(
            f"<line class='legend' x1='{x:.1f}' y1='{yy:.1f}' x2='{x + 18:.1f}' y2='{yy:.1f}' "
            f"stroke='{colour}' stroke-width='2'/>"
        )
        body.append(_text(x + 24, yy + 4, name))
    return body


# --- Forest plot ---------------------------------------------------------------------------


def forest_svg(
    rows: Sequence[ForestPoint], *, title: str = "Treatment effects", width: int = 640
) -> str:
    """A forest plot of rows sharing one scale ("difference" or "odds ratio"; plot the two
    kinds separately, their axes differ). Rows without an estimate say "not estimable"."""
    scales = {row.scale for row in rows}
    if len(scales) > 1:
        raise ValueError("Plot differences and odds ratios separately.")
    ratio = scales == {"odds ratio"}
    reference = 1.0 if ratio else 0.0
    shown = [r for r in rows if r.estimate is not None]
    values = [reference]
    for r in shown:
        values += [
            v for v in (r.estimate, r.lower, r.upper) if v is not None and (v > 0 or not ratio)
        ]
    transform = math.log if ratio else float
    lo, hi = transform(min(values)), transform(max(values))
    pad = (hi - lo) * 0.05 or 0.5
    lo, hi = lo - pad, hi + pad
    row_height, top, label_width = 24, 36, 220
    height = top + row_height * max(len(rows), 1) + 40
    plot_left, plot_right = label_width + 10, width - 20
    x = _scale(lo, hi, plot_left, plot_right)
    bottom = top + row_height * len(rows)
    body = [_text(10, 20, title, extra=" font-weight='bold'")]
    # Ticks: on the log scale at 1-2-5 multiples, labelled as odds ratios.
    if ratio:
        ticks = [
            m * 10**e
            for e in range(math.floor(lo / math.log(10)) - 1, math.ceil(hi / math.log(10)) + 1)
            for m in (1, 2, 5)
            if lo <= math.log(m * 10**e) <= hi
        ]
        positions = [(t, x(math.log(t))) for t in ticks]
    else:
        positions = [(t, x(t)) for t in nice_ticks(lo, hi) if lo <= t <= hi]
    body.append(
        f"<line class='axis' x1='{plot_left}' y1='{bottom:.1f}' x2='{plot_right}' "
        f"y2='{bottom:.1f}' stroke='{INK}'/>"
    )
    for value, px in positions:
        body.append(
            f"<line class='tick' x1='{px:.1f}' y1='{bottom:.1f}' x2='{px:.1f}' "
            f"y2='{bottom + 4:.1f}' stroke='{INK}'/>"
        )
        body.append(_text(px, bottom + 16, _fmt(value), "middle"))
    ref_x = x(transform(reference))
    body.append(
        f"<line class='reference' x1='{ref_x:.1f}' y1='{top - 6}' x2='{ref_x:.1f}' "
        f"y2='{bottom:.1f}' stroke='{INK}' stroke-dasharray='4 3'/>"
    )
    axis_label = "odds ratio (log scale)" if ratio else "difference"
    body.append(_text(ref_x, height - 6, axis_label, "middle"))
    descriptions = []
    for i, row in enumerate(rows):
        y = top + row_height * i + row_height / 2
        name = f"{row.label}, {row.visit}" if row.visit else row.label
        body.append(_text(10, y + 4, name))
        if row.estimate is None:
            body.append(_text(plot_left, y + 4, "not estimable", extra=" font-style='italic'"))
            descriptions.append(f"{name}: not estimable")
            continue
        if row.lower is not None and row.upper is not None:
            x1, x2 = x(transform(row.lower)), x(transform(row.upper))
            body.append(
                f"<line class='ci' x1='{x1:.1f}' y1='{y:.1f}' x2='{x2:.1f}' y2='{y:.1f}' "
                f"stroke='{PALETTE[0]}' stroke-width='2'/>"
            )
            interval = f" (95% CI {_fmt(row.lower)} to {_fmt(row.upper)})"
        else:
            interval = " (no CI)"
        body.append(
            f"<rect class='estimate' x='{x(transform(row.estimate)) - 4:.1f}' y='{y - 4:.1f}' "
            f"width='8' height='8' fill='{PALETTE[0]}'/>"
        )
        descriptions.append(f"{name}: {_fmt(row.estimate)}{interval}")
    desc = f"{'Odds ratios' if ratio else 'Differences'} with 95% confidence intervals. "
    return _svg(width, height, title, desc + "; ".join(descriptions), body, title)


# --- Line plot -----------------------------------------------------------------------------


def line_svg(
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    *,
    title: str,
    x_label: str = "Week",
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    width: int = 640,
    height: int = 320,
) -> str:
    """One line per series of (x, y) points; a None y breaks the line there."""
    points = [(x, y) for pts in series.values() for x, y in pts if y is not None]
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for _, y in points] or [0.0, 1.0]
    y_lo, y_hi = y_range or (min(ys), max(ys))
    left, right, top, bottom = 50, width - 130, 30, height - 40
    sx = _scale(min(xs), max(xs), left, right)
    sy = _scale(y_lo, y_hi, bottom, top)
    body = [_text(10, 18, title, extra=" font-weight='bold'")]
    body.append(
        f"<path class='axis' d='M{left},{top} V{bottom} H{right}' fill='none' stroke='{INK}'/>"
    )
    for tick in nice_ticks(y_lo, y_hi):
        if y_lo <= tick <= y_hi:
            body.append(_text(left - 6, sy(tick) + 4, _fmt(tick), "end"))
    for tick in nice_ticks(min(xs), max(xs), 8):
        if min(xs) <= tick <= max(xs):
            body.append(_text(sx(tick), bottom + 16, _fmt(tick), "middle"))
    body.append(_text((left + right) / 2, height - 6, x_label, "middle"))
    if y_label:
        middle = (top + bottom) / 2
        rotate = f" transform='rotate(-90 12 {middle:.1f})'"
        body.append(_text(12, middle, y_label, "middle", rotate))
    descriptions = []
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for x, y in sorted(pts, key=lambda p: p[0]):
            if y is None:
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{sx(x):.1f},{sy(y):.1f}")
            body.append(
                f"<circle class='point' cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='{colour}'/>"
            )
        for seg in segments:
            if len(seg) > 1:
                body.append(
                    f"<polyline class='series' points='{' '.join(seg)}' fill='none' "
                    f"stroke='{colour}' stroke-width='2'/>"
                )
        values = ", ".join(f"{_fmt(x)}: {'no data' if y is None else _fmt(y)}" for x, y in pts)
        descriptions.append(f"{name} — {values}")
    body += _legend(list(series), right + 16, top + 8)
    desc = f"{x_label} against {y_label or 'value'}. " + "; ".join(descriptions)
    return _svg(width, height, title, desc, body, title)


# --- Recruitment ---------------------------------------------------------------------------


def recruitment_svg(
    dates_by_site: Mapping[str, Sequence[dt.date]],
    *,
    target: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    title: str = "Recruitment",
    width: int = 640,
    height: int = 320,
) -> str:
    """Cumulative participants per site and in all, against time; with a target, a dashed
    line from (start, 0) to (end, target)."""
    all_dates = sorted(d for dates in dates_by_site.values() for d in dates)
    first = start or (all_dates[0] if all_dates else dt.date.min)
    last = end or (all_dates[-1] if all_dates else first)
    if all_dates:
        first, last = min(first, all_dates[0]), max(last, all_dates[-1])
    if first == dt.date.min:
        first = last = dt.date(2000, 1, 1)
    y_hi = max(len(all_dates), target or 0, 1)
    left, right, top, bottom = 50, width - 130, 30, height - 40
    sx = _scale(first.toordinal(), last.toordinal(), left, right)
    sy = _scale(0, y_hi, bottom, top)
    body = [_text(10, 18, title, extra=" font-weight='bold'")]
    body.append(
        f"<path class='axis' d='M{left},{top} V{bottom} H{right}' fill='none' stroke='{INK}'/>"
    )
    for tick in nice_ticks(0, y_hi):
        if tick <= y_hi:
            body.append(_text(left - 6, sy(tick) + 4, _fmt(tick), "end"))
    for day in (first, last):
        body.append(_text(sx(day.toordinal()), bottom + 16, day.isoformat(), "middle"))

    def steps(dates: list[dt.date], css: str, colour: str, widthpx: int) -> str:
        # One step per day with randomizations, up to the day's cumulative count: a path
        # of at most a few hundred steps however many participants (100,000 steps made a
        # 2 MB path and took seconds to build).
        per_day = Counter(dates)
        parts = [f"M{sx(first.toordinal()):.1f},{sy(0):.1f}"]
        count = 0
        for day in sorted(per_day):
            count += per_day[day]
            parts.append(f"H{sx(day.toordinal()):.1f} V{sy(count):.1f}")
        parts.append(f"H{sx(last.toordinal()):.1f}")
        d = " ".join(parts)
        return (
            f"<path class='{css}' d='{d}' fill='none' stroke='{colour}' stroke-width='{widthpx}'/>"
        )

    names = list(dates_by_site)
    for i, name in enumerate(names):
        body.append(steps(sorted(dates_by_site[name]), "site", PALETTE[i % len(PALETTE)], 2))
    body.append(steps(all_dates, "total", INK, 3))
    legend = _legend(names, right + 16, top + 8)
    total_y = top + 8 + 16 * len(names)
    legend.append(
        f"<line class='legend' x1='{right + 16:.1f}' y1='{total_y}' x2='{right + 34:.1f}' "
        f"y2='{total_y}' stroke='{INK}' stroke-width='3'/>"
    )
    legend.append(_text(right + 40, total_y + 4, "All sites"))
    desc = [f"{name}: {len(dates_by_site[name])}" for name in names]
    desc.append(f"all sites: {len(all_dates)} from {first.isoformat()} to {last.isoformat()}")
    if target is not None:
        body.append(
            f"<line class='target' x1='{sx(first.toordinal()):.1f}' y1='{sy(0):.1f}' "
            f"x2='{sx(last.toordinal()):.1f}' y2='{sy(target):.1f}' stroke='{INK}' "
            "stroke-dasharray='6 4'/>"
        )
        legend.append(_text(right + 16, total_y + 20, f"Target: {target}"))
        desc.append(f"target {target} by {last.isoformat()}")
    body += legend
    return _svg(width, height, title, "Cumulative recruitment. " + "; ".join(desc), body, title)
