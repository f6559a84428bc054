"""The shape docs/DESIGN.md gives the outcomes apps: a module past ~400 lines becomes a package
of smaller ones, and each nested app's writes are in its `services` (for results: every write
of an ExportJob)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_LINES = 400
WRITES = {"update", "create", "bulk_create", "get_or_create", "update_or_create", "delete"}


def outcomes_modules() -> list[Path]:
    return [
        path
        for path in sorted((ROOT / "outcomes").rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]


def export_job_writes(source: str) -> list[int]:
    """Lines of `ExportJob.objects….<write>(…)` calls in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in WRITES:
            continue
        chain = node.func.value
        while isinstance(chain, ast.Call | ast.Attribute):
            chain = chain.func if isinstance(chain, ast.Call) else chain.value
        if isinstance(chain, ast.Name) and chain.id == "ExportJob":
            found.append(node.lineno)
    return found


def test_no_outcomes_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): length
        for path in outcomes_modules()
        if (length := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"make these packages of smaller modules: {long}"


def test_every_write_of_an_export_job_is_in_the_results_services():
    services = ROOT / "outcomes" / "results" / "services.py"
    elsewhere = {
        str(path.relative_to(ROOT)): lines
        for path in outcomes_modules()
        if path != services and (lines := export_job_writes(path.read_text(encoding="utf-8")))
    }
    assert not elsewhere, f"ExportJob written outside outcomes.results.services: {elsewhere}"
    assert export_job_writes(services.read_text(encoding="utf-8"))


def test_the_check_finds_export_job_writes_however_the_query_is_chained():
    source = "\n".join(
        [
            "ExportJob.objects.create(trial=t)",
            "ExportJob.objects.filter(pk=1, status=s).update(step='x')",
            "ExportJob.objects.select_for_update().filter(pk=1).delete()",
            "ExportJob.objects.filter(pk=1).first()",
            "Other.objects.filter(pk=1).update(step='x')",
            "job.save()",
        ]
    )
    assert export_job_writes(source) == [1, 2, 3]


@pytest.mark.parametrize("app", ["instruments", "sms", "results"])
def test_each_nested_app_has_its_models_one_services_and_one_selectors(app):
    # A module or a package of the name: a newcomer finds an app's writes and reads there.
    for part in ("models", "services", "selectors"):
        base = ROOT / "outcomes" / app / part
        assert base.with_suffix(".py").is_file() or (base / "__init__.py").is_file(), part
