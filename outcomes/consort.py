"""The CONSORT 2010 flow diagram, from the data: counting (pandas) and drawing (SVG). Pure:
no Django; the dashboard passes the frames (outcomes.analysis_data) and labels.

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
from dataclasses import dataclass
from xml.sax.saxutils import escape

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
    scores = {}
    not_done = {}
    for row in primary.itertuples(index=False):
        if pd.notna(row.score):
            scores[(row.participant_id, row.visit)] = row.score
        elif row.not_done:
            not_done[(row.participant_id, row.visit)] = row.not_done
    visit_rows = {(r.participant_id, r.visit): r for r in visits.itertuples(index=False)}
    arms = []
    for arm_code, arm_label in arm_labels:
        members = list(people.index[people["arm"] == arm_code]) if len(people) else []
        arm_visits = []
        for visit_code, visit_label in visit_labels:
            analysed = waiting = 0
            reasons = dict.fromkeys(REASONS, 0)
            for pid in members:
                if (pid, visit_code) in scores:
                    analysed += 1
                    continue
                visit = visit_rows.get((pid, visit_code))
                status = people.at[pid, "status"]
                closed = visit is not None and visit.window_end < today
                if visit is not None and not closed and visit.outcome == "open":
                    waiting += 1
                elif status in STATUS_REASON:
                    reasons[STATUS_REASON[status]] += 1
                elif visit is not None and visit.outcome == "missed":
                    reasons["Missed the visit"] += 1
                elif (pid, visit_code) in not_done:
                    reasons["Outcome not done"] += 1
                else:
                    reasons["Not recorded"] += 1
            arm_visits.append(
                ConsortVisit(
                    visit_code,
                    visit_label,
                    analysed,
                    {reason: n for reason, n in reasons.items() if n},
                    waiting,
                )
            )
        arms.append(ConsortArm(arm_code, arm_label, len(members), arm_visits))
    return Consort(assessed, excluded, len(people), arms)


# --- Drawing ----------------------------------------------------------------------------------

BOX_W = 300
LINE_H = 17
PAD = 8
GAP = 26


def _box(x: float, y: float, lines: list[str], *, bold_first: bool = True) -> tuple[str, float]:
    height = PAD * 2 + LINE_H * len(lines)
    parts = [
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{height:.0f}" rx="4" '
        'fill="#fff" stroke="#333"/>'
    ]
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and i == 0 else ""
        parts.append(
            f'<text x="{x + PAD:.0f}" y="{y + PAD + LINE_H * (i + 0.8):.0f}"{weight}>'
            f"{escape(line)}</text>"
        )
    return "".join(parts), height


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#333" '
        'marker-end="url(#arrow)"/>'
    )


def svg(consort: Consort, *, title: str = "CONSORT flow diagram") -> str:
    """The diagram as a self-contained SVG document (no external fonts or styles)."""
    columns = max(len(consort.arms), 1)
    width = columns * (BOX_W + GAP) + GAP
    centre = width / 2
    out = []
    y = GAP

    top, h = _box(centre - BOX_W / 2, y, [f"Assessed for eligibility (n = {consort.assessed})"])
    out.append(top)
    spine_top = y + h
    y += h + GAP
    excluded_lines = [f"Excluded (n = {consort.excluded_total})"] + [
        f"• {reason} (n = {n})" for reason, n in consort.excluded.items()
    ]
    side_x = min(centre + BOX_W / 2 + GAP / 2, width - BOX_W - GAP / 2)
    side, h = _box(side_x, y, excluded_lines)
    out.append(side)
    out.append(_arrow(centre, y + h / 2, side_x, y + h / 2))
    y += h + GAP
    box, h = _box(centre - BOX_W / 2, y, [f"Randomized (n = {consort.randomized})"])
    out.append(_arrow(centre, spine_top, centre, y))
    out.append(box)
    spine_bottom = y + h
    y += h + GAP

    stage_y = y
    for i, arm in enumerate(consort.arms):
        x = GAP + i * (BOX_W + GAP)
        ay = stage_y
        out.append(_arrow(centre, spine_bottom, x + BOX_W / 2, ay))
        box, h = _box(x, ay, [f"Allocated to {arm.label} (n = {arm.allocated})"])
        out.append(box)
        ay += h
        for visit in arm.visits:
            lines = [f"{visit.label}: analysed (n = {visit.analysed})"]
            if visit.missing:
                lines.append(f"Not analysed (n = {visit.missing}):")
                lines += [f"• {reason} (n = {n})" for reason, n in visit.not_analysed.items()]
            if visit.not_yet_due:
                lines.append(f"Not yet due (n = {visit.not_yet_due})")
            out.append(_arrow(x + BOX_W / 2, ay, x + BOX_W / 2, ay + GAP))
            box, h = _box(x, ay + GAP, lines)
            out.append(box)
            ay += GAP + h
        y = max(y, ay)
    height = y + GAP
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" font-family="sans-serif" '
        f'font-size="13"><title>{escape(title)}</title>'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#333"/></marker></defs>' + "".join(out) + "</svg>"
    )
