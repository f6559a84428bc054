"""The export's participants table (one row per randomized participant, wide), pure (no
Django): which variables it has, in the codebook's order, and its columns from the analysis
frames. outcomes.results.export.tables.Builder.participants reads the trial's configuration and the
frames, calls these, and writes the table.

1. The participant: id, number, site, arm (its neutral code in a blinded export), date of
   randomization, status and the date it last changed, whether follow-up may continue.
2. Each minimization factor's level, then each baseline variable.
3. For each visit: its outcome, date attended and whether in window; then for each
   instrument its score (a 7-point global assessment: the answer and "improved"), an
   EQ-5D-3L's VAS, and the reason not done.
4. Columns the analysis frame has but the configuration does not describe (a baseline value
   without its variable) are kept, after the others, as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

GLOBAL_7 = "global_7"  # outcomes.models.Instrument.Kind values (a test checks)
EQ5D_3L = "eq5d_3l"


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    type: str  # as outcomes.results.export.codebook.Variable.type
    options: Mapping = field(default_factory=dict)  # unit, allowed, value_labels, missing


@dataclass(frozen=True)
class Factor:
    code: str
    name: str
    levels: Mapping[str, str]  # {level code: label}, in order


@dataclass(frozen=True)
class Baseline:
    code: str
    label: str
    unit: str
    min_value: int
    max_value: int


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    kind: str


@dataclass(frozen=True)
class Labels:
    """The value labels of the table's categories."""

    sites: Mapping[str, str]
    arms: Mapping[str, str]
    statuses: Mapping[str, str]
    visit_outcomes: Mapping[str, str]
    not_done: Mapping[str, str]
    global_7: Mapping[str, str]
    yes_no: Mapping[str, str]


def columns(
    *,
    blinded: bool,
    labels: Labels,
    factors: Sequence[Factor],
    baselines: Sequence[Baseline],
    visits: Sequence[tuple[str, str]],
    instruments: Sequence[Instrument],
) -> list[Column]:
    """The table's variables in order (steps 1-3). `visits`: (code, label) in order."""
    arm = "Randomized arm" + (" (blinded code)" if blinded else "")
    result = [
        Column("participant_id", "Participant id (database key)", "integer"),
        Column("number", "Participant number", "string"),
        Column("site", "Site", "category", {"value_labels": labels.sites}),
        Column("arm", arm, "category", {"value_labels": labels.arms}),
        Column("randomized_on", "Randomization date", "date"),
        Column("status", "Participant status", "category", {"value_labels": labels.statuses}),
        Column("status_changed_on", "Date of the last status change (withdrawal, loss...)", "date"),
        Column(
            "followup_allowed",
            "Follow-up data may still be collected",
            "boolean",
            {"value_labels": labels.yes_no},
        ),
    ]
    result += [
        Column(
            f"factor_{f.code}",
            f"Minimization factor: {f.name}",
            "category",
            {"value_labels": dict(f.levels)},
        )
        for f in factors
    ]
    result += [
        Column(
            f"bl_{b.code}",
            f"Baseline: {b.label}",
            "number",
            {"unit": b.unit, "allowed": f"{b.min_value}..{b.max_value}"},
        )
        for b in baselines
    ]
    for code, label in visits:
        result += _visit_columns(code, label, labels, instruments)
    return result


def _visit_columns(
    code: str, label: str, labels: Labels, instruments: Sequence[Instrument]
) -> list[Column]:
    yes_no = {"value_labels": labels.yes_no}
    result = [
        Column(
            f"visit_{code}_outcome",
            f"{label}: visit outcome",
            "category",
            {"value_labels": labels.visit_outcomes},
        ),
        Column(f"visit_{code}_date", f"{label}: date attended", "date"),
        Column(f"visit_{code}_in_window", f"{label}: attended in window", "boolean", yes_no),
    ]
    for ins in instruments:
        base = f"{ins.code}_{code}"
        if ins.kind == GLOBAL_7:
            result += [
                Column(
                    base,
                    f"{ins.name}, {label}",
                    "category",
                    {"value_labels": labels.global_7},
                ),
                Column(
                    f"{ins.code}_improved_{code}",
                    f"{ins.name}, {label}: improved (much better or better)",
                    "boolean",
                    yes_no,
                ),
            ]
        else:
            result.append(Column(base, f"{ins.name}, {label}: score", "number"))
        if ins.kind == EQ5D_3L:
            result.append(
                Column(
                    f"{ins.code}_vas_{code}",
                    f"{ins.name}, {label}: VAS",
                    "integer",
                    {"allowed": "0..100"},
                )
            )
        result.append(
            Column(
                f"{base}_not_done",
                f"{ins.name}, {label}: reason not done",
                "category",
                {"value_labels": labels.not_done, "missing": "Empty = done or not recorded"},
            )
        )
    return result


# The visits frame's columns the table spreads wide, one column per visit.
VISIT_PIVOTS = {"outcome": "outcome", "date": "attended_on", "in_window": "in_window"}


def visit_columns(visits: pd.DataFrame) -> dict[str, pd.Series]:
    """{visit_<code>_<outcome|date|in_window>: values by participant id} from the visits
    frame (one row per participant and visit)."""
    result = {}
    for column, source in VISIT_PIVOTS.items():
        wide = (
            visits.pivot_table(
                index="participant_id", columns="visit", values=source, aggfunc="first"
            )
            if len(visits)
            else pd.DataFrame()
        )
        for code in wide.columns:
            result[f"visit_{code}_{column}"] = wide[code]
    return result


def assemble(
    frame: pd.DataFrame, names: Sequence[str], extra: Mapping[str, pd.Series]
) -> tuple[pd.DataFrame, list[str]]:
    """The table's columns, by participant (the analysis frame's index): each of `names`
    from `extra` (by participant id) or the frame, else empty; then the frame's columns
    `names` lacks (step 4). Returns the table and those undescribed columns' names."""
    out = pd.DataFrame(index=frame.index)
    for name in names:
        if name in extra:
            out[name] = extra[name].reindex(frame.index)
        elif name in frame.columns:
            out[name] = frame[name]
        else:
            out[name] = None
    undescribed = [name for name in frame.columns if name not in out.columns]
    for name in undescribed:
        out[name] = frame[name]
    return out, undescribed
