"""The export's participants table decided purely (outcomes.results.participants_table): its
variables in the codebook's order and its columns. The bundle's bytes are checked in
test_export (content) and test_statfiles."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from outcomes.instruments.models import Instrument
from outcomes.results import participants_table as pt

LABELS = pt.Labels(
    sites={"01": "Odense"},
    arms={"A": "Arm A", "B": "Arm B"},
    statuses={"active": "Active"},
    visit_outcomes={"open": "Open"},
    not_done={"refused": "Refused"},
    global_7={"1": "Much better"},
    yes_no={"1": "Yes", "0": "No"},
)


def test_the_table_rules_never_import_django():
    tree = ast.parse(Path(pt.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] == "django"]


def test_the_instrument_kinds_named_are_instrument_kinds():
    assert {pt.GLOBAL_7, pt.EQ5D_3L} <= set(Instrument.Kind.values)


def test_the_variables_come_participant_factors_baseline_then_each_visits_instruments():
    columns = pt.columns(
        blinded=True,
        labels=LABELS,
        factors=[pt.Factor("sex", "Sex", {"f": "Female", "m": "Male"})],
        baselines=[pt.Baseline("pain", "Pain", "0-10", 0, 10)],
        visits=[("w10", "10 weeks"), ("y1", "1 year")],
        instruments=[
            pt.Instrument("rmdq", "RMDQ", "sum"),
            pt.Instrument("global", "Global", pt.GLOBAL_7),
            pt.Instrument("eq5d", "EQ-5D", pt.EQ5D_3L),
        ],
    )
    names = [c.name for c in columns]
    assert names[:10] == [
        "participant_id", "number", "site", "arm", "randomized_on", "status",
        "status_changed_on", "followup_allowed", "factor_sex", "bl_pain",
    ]  # fmt: skip
    per_visit = [
        "visit_w10_outcome", "visit_w10_date", "visit_w10_in_window",
        "rmdq_w10", "rmdq_w10_not_done",
        "global_w10", "global_improved_w10", "global_w10_not_done",
        "eq5d_w10", "eq5d_vas_w10", "eq5d_w10_not_done",
    ]  # fmt: skip
    assert names[10:] == per_visit + [n.replace("w10", "y1") for n in per_visit]
    arm = columns[3]
    assert (arm.label, arm.options["value_labels"]) == (
        "Randomized arm (blinded code)",
        LABELS.arms,
    )
    assert columns[9].options == {"unit": "0-10", "allowed": "0..10"}
    unblinded = pt.columns(
        blinded=False, labels=LABELS, factors=[], baselines=[], visits=[], instruments=[]
    )
    assert unblinded[3].label == "Randomized arm"


def test_assembling_takes_extra_then_the_frame_then_empty_and_keeps_undescribed_columns():
    frame = pd.DataFrame({"number": ["M-1", "M-2"], "bl_new": [3, 4]}, index=[7, 9])
    extra = {"status_changed_on": pd.Series({9: "2026-01-02", 11: "ignored"})}

    out, undescribed = pt.assemble(frame, ["number", "status_changed_on", "arm"], extra)

    assert list(out.columns) == ["number", "status_changed_on", "arm", "bl_new"]
    assert undescribed == ["bl_new"]
    assert out.loc[9, "status_changed_on"] == "2026-01-02"
    assert pd.isna(out.loc[7, "status_changed_on"])
    assert out["arm"].isna().all()


def test_visits_are_spread_one_column_per_visit_and_field():
    visits = pd.DataFrame(
        {
            "participant_id": [1, 1, 2],
            "visit": ["w10", "y1", "w10"],
            "outcome": ["completed", "open", "missed"],
            "attended_on": [pd.Timestamp("2026-03-01"), pd.NaT, pd.NaT],
            "in_window": [True, None, None],
        }
    )
    wide = pt.visit_columns(visits)
    assert set(wide) >= {"visit_w10_outcome", "visit_y1_outcome", "visit_w10_date"}
    assert wide["visit_w10_outcome"].to_dict() == {1: "completed", 2: "missed"}
    assert pt.visit_columns(visits.iloc[0:0]) == {}
