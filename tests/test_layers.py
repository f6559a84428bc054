"""The import-linter contracts in pyproject.toml (the one-way layers and the pure rules)
hold for the code as it is, and would catch an upward import or Django in a pure rule."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_layers_and_the_pure_rules_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_or_django_in_a_pure_rule_breaks_the_contracts(tmp_path):
    """A copy of the product code with a participants module importing the results and
    the SMS rules importing Django: both contracts fail."""
    for package in ("trial", "participants", "outcomes"):
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "participants" / "upward.py").write_text(
        "from outcomes.results import dashboard  # noqa: F401\n"
    )
    with (tmp_path / "outcomes" / "sms" / "sms_rules.py").open("a") as rules:
        rules.write(textwrap.dedent("\nimport django.utils  # noqa: E402,F401\n"))

    result = _lint(tmp_path)

    assert result.returncode != 0
    assert "participants.upward -> outcomes.results.dashboard" in result.stdout
    assert "outcomes.sms.sms_rules is not allowed to import django" in result.stdout


def test_no_import_cycles_between_product_modules():
    """No two product modules import each other, directly or through others, at module
    level or inside a function (grimp, the graph import-linter builds on, sees both)."""
    import grimp

    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph("trial", "participants", "outcomes", cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.find_shortest_chain(importer=imported, imported=module):
                cycles.add(tuple(sorted((module, imported))))
    assert cycles == set()
