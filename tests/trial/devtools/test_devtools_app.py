"""trial.devtools (demo data, benchmarks) is a development-only app: installed with DEBUG, with
TRIALDESK_DEVTOOLS and in the tests, never by production settings; product code never imports it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[3]
PRODUCT_PACKAGES = ("trial", "participants", "outcomes")
DEVTOOLS = ROOT / "trial" / "devtools"
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-like-secret-for-the-devtools-test-" + "y" * 20,
    "ALLOWED_HOSTS": "trial.example.org",
    "DATABASE_URL": "sqlite:////tmp/devtools-check.sqlite3",
}
INSTALLED = (
    "import django; django.setup(); from django.apps import apps; "
    "print(apps.is_installed('trial.devtools'))"
)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    # Only the variables under test: the test process's own DEBUG or TRIALDESK_DEVTOOLS (if a
    # developer exported one) must not decide the answer.
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "TRIALDESK_DEVTOOLS"}}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "trial.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_do_not_install_the_devtools_app():
    installed = _run(["-c", INSTALLED], PRODUCTION)
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.strip() == "False"
    # Nor offer its commands: seed_demo would create users with published passwords.
    for command in ("seed_demo", "bench_allocation", "bench_scale"):
        result = _run(["manage.py", command, "--help"], PRODUCTION)
        assert result.returncode != 0, command
        assert f"Unknown command: '{command}'" in result.stderr


@pytest.mark.parametrize(
    "env", [{"DEBUG": "1"}, {**PRODUCTION, "TRIALDESK_DEVTOOLS": "1"}], ids=["debug", "flag"]
)
def test_debug_or_the_flag_installs_the_devtools_app(env):
    installed = _run(["-c", INSTALLED], env)
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.strip() == "True"


def test_the_tests_run_with_the_devtools_app_installed():
    assert apps.is_installed("trial.devtools")
    assert apps.get_app_config("devtools").name == "trial.devtools"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_product_code_never_imports_the_devtools_app():
    offenders = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(DEVTOOLS):
                continue
            if any(
                name == "trial.devtools" or name.startswith("trial.devtools.")
                for name in _imported_modules(path)
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_product_packages_hold_no_demo_or_benchmark_modules():
    """The demo and the benchmarks live in trial/devtools only (issue 16 item 3)."""
    stray = [
        str(path.relative_to(ROOT))
        for package in PRODUCT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.is_relative_to(DEVTOOLS)
        and (path.stem.startswith(("bench", "demo")) or path.stem == "seed_demo")
    ]
    assert stray == []
