"""The CONSORT 2010 flow diagram, from the data: counting (pandas) and drawing (SVG). Pure:
no Django; the dashboard passes the frames (outcomes.results.analysis_data) and labels.

Counting rules, per arm and follow-up visit, for every randomized participant (ITT):
    analysed            the primary outcome has a score at that visit
    not yet due         no score and the visit window has not closed: left out of the visit's
                        box (reported beside it), since nothing is missing yet
    otherwise one reason, the first that applies: died, withdrew, lost to follow-up (the
    participant's status; it takes priority over the visit's own record), missed the visit,
    outcome not done, not recorded (window closed with nothing entered).
Excluded before randomization: not meeting the criteria (screened ineligible), declined,
other (eligible but not yet consented, consented but not randomized, withdrew before
randomization).
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from dataclasses import dataclass
from xml.sax.saxutils import escape

import cairocffi
import cairosvg
import numpy as np
import pandas as pd

NOT_YET_DUE = "Not yet due"
REASONS = (
    "Died",
    "Withdrew",
    "Lost to follow-up",
    "Missed the visit",
    "Outcome not done",
    "Not recorded",
)
STATUS_REASON = {"deceased": "Died", "withdrawn": "Withdrew", "lost": "Lost to follow-up"}


@dataclass(frozen=True)
class ConsortVisit:
    code: str
    label: str
    analysed: int
    not_analysed: dict[str, int]  # reason -> n (only reasons with n > 0), in REASONS order
    not_yet_due: int

    @property
    def missing(self) -> int:
        return sum(self.not_analysed.values())


@dataclass(frozen=True)
class ConsortArm:
    code: str
    label: str
    allocated: int
    visits: list[ConsortVisit]


@dataclass(frozen=True)
class Consort:
    assessed: int
    excluded: dict[str, int]  # reason -> n
    randomized: int
    arms: list[ConsortArm]

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())


def count(
    *,
    screening: dict[str, int],
    enrolled_not_randomized: dict[str, int],
    participants: pd.DataFrame,
    visits: pd.DataFrame,
    primary: pd.DataFrame,
    visit_labels: list[tuple[str, str]],
    arm_labels: list[tuple[str, str]],
    today: dt.date,
) -> Consort:
    """screening: {outcome: n} of the screening log (ineligible, declined, eligible,
    enrolled); enrolled_not_randomized: {status: n} of consented participants never
    randomized; participants: participant_id, arm, status (randomized only); visits:
    participant_id, visit, window_end, outcome; primary: participant_id, visit, score,
    not_done (the primary instrument's entries); visit_labels: the follow-up visits in
    order; arm_labels: (arm code, label shown) in order."""
    excluded = {
        "Not meeting the criteria": screening.get("ineligible", 0),
        "Declined to participate": screening.get("declined", 0),
        "Other reasons": screening.get("eligible", 0) + sum(enrolled_not_randomized.values()),
    }
    assessed = sum(screening.values())
    people = participants.set_index("participant_id") if len(participants) else participants
    # Column-wise over every randomized participant and visit (a Python loop per
    # participant took seconds at 100,000): the reason is the first condition that holds.
    arms = []
    reasons_by_visit = {
        code: _visit_reasons(people, code, visits, primary, today) for code, _ in visit_labels
    }
    for arm_code, arm_label in arm_labels:
        in_arm = (people["arm"] == arm_code).to_numpy() if len(people) else np.array([], bool)
        arm_visits = []
        for visit_code, visit_label in visit_labels:
            outcome = reasons_by_visit[visit_code][in_arm]
            tally = Counter(outcome.tolist())
            arm_visits.append(
                ConsortVisit(
                    visit_code,
                    visit_label,
                    tally.get(ANALYSED, 0),
                    {reason: tally[reason] for reason in REASONS if tally.get(reason)},
                    tally.get(NOT_YET_DUE, 0),
                )
            )
        arms.append(ConsortArm(arm_code, arm_label, int(in_arm.sum()), arm_visits))
    return Consort(assessed, excluded, len(people), arms)


ANALYSED = "Analysed"


def _visit_reasons(
    people: pd.DataFrame, visit_code: str, visits: pd.DataFrame, primary: pd.DataFrame, today
) -> np.ndarray:
    """Per participant (people's order): ANALYSED, NOT_YET_DUE or the reason not analysed
    at this visit, by the rules in the module's docstring."""
    n = len(people)
    if not n:
        return np.array([], dtype=object)
    ids = people.index
    entries = primary[primary["visit"] == visit_code]
    scored = ids.isin(entries.loc[entries["score"].notna(), "participant_id"])
    not_done = ids.isin(
        entries.loc[
            entries["score"].isna() & entries["not_done"].fillna("").astype(bool), "participant_id"
        ]
    )
    planned = visits[visits["visit"] == visit_code].drop_duplicates("participant_id", keep="last")
    planned = planned.set_index("participant_id").reindex(ids)
    has_visit = planned["outcome"].notna().to_numpy()
    outcome = planned["outcome"].to_numpy()
    open_ = has_visit & (outcome == "open")
    # Dates compared as datetime64 (a missing end is NaT, never before today): a Python
    # comparison per participant took 0.2 s per visit at 100,000.
    ends = pd.to_datetime(planned["window_end"], errors="coerce").to_numpy("datetime64[D]")
    closed = has_visit & (ends < np.datetime64(today, "D"))
    status = people["status"].map(STATUS_REASON).to_numpy()
    has_status = pd.notna(status)
    return np.select(
        [
            scored,
            open_ & ~closed,
            has_status,
            outcome == "missed",
            not_done,
        ],
        [ANALYSED, NOT_YET_DUE, status, "Missed the visit", "Outcome not done"],
        default="Not recorded",
    ).astype(object)


# --- Drawing ----------------------------------------------------------------------------------
# One layout (boxes of text lines and arrows, in points, y downwards) drawn as SVG for the
# page; the PDF download is that same SVG converted by CairoSVG, so the two cannot differ.

BOX_W = 300
LINE_H = 17
PAD = 8
GAP = 26


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    height: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Arrow:
    x1: float
    y1: float
    x2: float
    y2: float


def _height(lines: list[str]) -> float:
    return PAD * 2 + LINE_H * len(lines)


def layout(consort: Consort) -> tuple[float, float, list]:
    """(width, height, items): the diagram's boxes and arrows."""
    columns = max(len(consort.arms), 1)
    width = columns * (BOX_W + GAP) + GAP
    centre = width / 2
    items: list = []

    def box(x: float, y: float, lines: list[str]) -> float:
        height = _height(lines)
        items.append(_Box(x, y, height, tuple(lines)))
        return height

    y = GAP
    h = box(centre - BOX_W / 2, y, [f"Assessed for eligibility (n = {consort.assessed})"])
    spine_top = y + h
    y += h + GAP
    excluded_lines = [f"Excluded (n = {consort.excluded_total})"] + [
        f"• {reason} (n = {n})" for reason, n in consort.excluded.items()
    ]
    side_x = min(centre + BOX_W / 2 + GAP / 2, width - BOX_W - GAP / 2)
    h = box(side_x, y, excluded_lines)
    items.append(_Arrow(centre, y + h / 2, side_x, y + h / 2))
    y += h + GAP
    items.append(_Arrow(centre, spine_top, centre, y))
    h = box(centre - BOX_W / 2, y, [f"Randomized (n = {consort.randomized})"])
    spine_bottom = y + h
    y += h + GAP

    stage_y = y
    for i, arm in enumerate(consort.arms):
        x = GAP + i * (BOX_W + GAP)
        items.append(_Arrow(centre, spine_bottom, x + BOX_W / 2, stage_y))
        ay = stage_y + box(x, stage_y, [f"Allocated to {arm.label} (n = {arm.allocated})"])
        for visit in arm.visits:
            lines = [f"{visit.label}: analysed (n = {visit.analysed})"]
            if visit.missing:
                lines.append(f"Not analysed (n = {visit.missing}):")
                lines += [f"• {reason} (n = {n})" for reason, n in visit.not_analysed.items()]
            if visit.not_yet_due:
                lines.append(f"Not yet due (n = {visit.not_yet_due})")
            items.append(_Arrow(x + BOX_W / 2, ay, x + BOX_W / 2, ay + GAP))
            ay += GAP + box(x, ay + GAP, lines)
        y = max(y, ay)
    return width, y + GAP, items


def svg(consort: Consort, *, title: str = "CONSORT flow diagram") -> str:
    """The diagram as a self-contained SVG document (no external fonts or styles)."""
    width, height, items = layout(consort)
    out = []
    for item in items:
        if isinstance(item, _Box):
            out.append(
                f'<rect x="{item.x:.0f}" y="{item.y:.0f}" width="{BOX_W}" '
                f'height="{item.height:.0f}" rx="4" fill="#fff" stroke="#333"/>'
            )
            for i, line in enumerate(item.lines):
                weight = ' font-weight="bold"' if i == 0 else ""
                out.append(
                    f'<text x="{item.x + PAD:.0f}" y="{item.y + PAD + LINE_H * (i + 0.8):.0f}"'
                    f"{weight}>{escape(line)}</text>"
                )
        else:
            out.append(
                f'<line x1="{item.x1:.0f}" y1="{item.y1:.0f}" x2="{item.x2:.0f}" '
                f'y2="{item.y2:.0f}" stroke="#333" marker-end="url(#arrow)"/>'
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" font-family="sans-serif" '
        f'font-size="13"><title>{escape(title)}</title>'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#333"/></marker></defs>' + "".join(out) + "</svg>"
    )


def pdf(consort: Consort, *, title: str = "CONSORT flow diagram") -> bytes:
    """The diagram as a one-page vector PDF: `svg` converted by CairoSVG, its fonts embedded.

    At 72 dpi one SVG unit is one PDF point, so the page is the diagram's size. The title is
    set in the PDF's metadata, where viewers show it (the SVG's <title> is not carried over).
    """
    tree = cairosvg.parser.Tree(bytestring=svg(consort, title=title).encode())
    out = io.BytesIO()
    surface = cairosvg.surface.PDFSurface(tree, out, 72)
    surface.cairo.set_metadata(cairocffi.PDF_METADATA_TITLE, title)
    surface.finish()
    return out.getvalue()
