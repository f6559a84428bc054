"""statfiles.open_table, the one interface the export writes its Stata and SPSS files through."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from outcomes.results import statfiles
from outcomes.results.statfiles import Column, DtaWriter, SavWriter, open_table

COLUMNS = [
    Column("pid", "Participant", "number"),
    Column("arm", "Arm", "number", 0, {1: "A", 2: "B"}),
    Column("seen", "Seen on", "date"),
    Column("note", "Note", "string", 4),
]


def chunks():
    yield [
        np.array([1.0, 2.0]),
        np.array([1.0, np.nan]),
        np.array(["2026-01-05", "NaT"], dtype="datetime64[D]"),
        np.array(["ok", "truncated"], dtype=object),
    ]
    yield [
        np.array([3.0]),
        np.array([2.0]),
        np.array(["2026-02-01"], dtype="datetime64[D]"),
        np.array([None], dtype=object),
    ]


def test_open_table_writes_the_files_each_writer_writes_alone(tmp_path):
    with open_table(tmp_path, "visits", COLUMNS) as files:
        for arrays in chunks():
            files.write_columns(arrays)
    alone = tmp_path / "alone"
    alone.mkdir()
    with DtaWriter(alone / "v.dta", COLUMNS) as dta, SavWriter(alone / "v.sav", COLUMNS) as sav:
        for arrays in chunks():
            dta.write_columns(arrays)
            sav.write_columns(arrays)
    assert files.paths == (tmp_path / "visits.dta", tmp_path / "visits.sav")
    assert files.paths[0].read_bytes() == (alone / "v.dta").read_bytes()
    assert files.paths[1].read_bytes() == (alone / "v.sav").read_bytes()
    for path in files.paths:
        frame, _ = pyreadstat.read_dta(path) if path.suffix == ".dta" else pyreadstat.read_sav(path)
        assert frame["pid"].tolist() == [1.0, 2.0, 3.0]
        assert frame["note"].tolist() == ["ok", "trun", ""]
        assert frame["seen"].iloc[0] in (dt.date(2026, 1, 5), pd.Timestamp(2026, 1, 5))


def test_open_table_counts_the_rows_and_the_strings_it_cut(tmp_path):
    with open_table(tmp_path, "visits", COLUMNS) as files:
        for arrays in chunks():
            files.write_columns(arrays)
    assert files.result.rows == 3
    assert files.result.truncated == {"pid": 0, "arm": 0, "seen": 0, "note": 1}


def test_open_table_leaves_no_half_written_file_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError), open_table(tmp_path, "visits", COLUMNS) as files:
        files.write_columns(next(chunks()))
        raise RuntimeError("the cursor failed")
    assert list(tmp_path.iterdir()) == []


def test_a_refused_value_writes_neither_file(tmp_path):
    bad = [np.array([np.inf]), np.array([1.0]), np.array(["NaT"], "datetime64[D]"),
           np.array(["x"], dtype=object)]  # fmt: skip
    with pytest.raises(ValueError), open_table(tmp_path, "visits", COLUMNS) as files:
        files.write_columns(bad)
    assert list(tmp_path.iterdir()) == []


def test_the_export_writes_stat_files_only_through_open_table():
    """The export names no writer class or function of the package: open_table is its one
    way in (besides Column, WriteResult and reserved, which describe what it writes)."""
    export = Path(statfiles.__file__).parent.parent / "export"
    allowed = {"open_table", "Column", "WriteResult", "reserved"}
    used = set()
    for module in sorted(export.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "statfiles"
            ):
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "outcomes.results.statfiles"
            ):
                used |= {alias.name for alias in node.names}
    assert "open_table" in used
    assert used <= allowed, used - allowed


def test_the_package_modules_import_each_other_without_a_cycle():
    """Imports inside functions count too: the chunk path (arrays.py, numpy) is imported
    only when a chunk is written, but it must not import the row path that imports it."""
    package = Path(statfiles.__file__).parent
    graph: dict[str, set[str]] = {}
    for module in sorted(package.glob("*.py")):
        edges = graph.setdefault(module.stem, set())
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                edges |= {node.module} if node.module else {a.name for a in node.names}
    assert graph["common"] >= {"arrays"} and graph["dta"] >= {"arrays"}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == []
