"""Export bundles hold a trial's data (the unblinded ones the arms too): on disk they are
readable by the service user alone — files 0600 in a directory 0700 — whatever the umask
of the worker that writes them, from the first byte to the download."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from outcomes.results.export.tables import Builder
from outcomes.results.models import ExportJob
from outcomes.results.tasks import export_run
from tests.outcomes.results.test_analysis_data import randomized
from tests.outcomes.results.test_export import run_export


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): mode(p) for p in [folder, *folder.rglob("*")]}


def test_an_unblinded_export_is_written_0600_in_a_0700_directory(
    modic, site1, clinician, manager, settings, tmp_path, umask, monkeypatch
):
    randomized(modic, site1, clinician)
    settings.EXPORT_DIR = tmp_path / "var" / "exports"
    seen_while_building: list[dict[str, int]] = []
    visits = Builder.visits

    def visits_noting_modes(self):  # midway: the partial ZIP and the builder's spool files
        seen_while_building.append(modes_under(settings.EXPORT_DIR))
        return visits(self)

    monkeypatch.setattr(Builder, "visits", visits_noting_modes)

    job = run_export(modic, manager, blinded=False)

    assert not job.blinded
    path = Path(job.file_path)
    assert path.parent == settings.EXPORT_DIR
    assert mode(path) == 0o600
    assert mode(settings.EXPORT_DIR) == 0o700
    # Midway: the partial ZIP is owner-only too, and the builder's spool and stat files are
    # in directories of their own that no one else may enter.
    [midway] = seen_while_building
    top = {name: m for name, m in midway.items() if "/" not in name and name != "."}
    assert [name for name in top if name.endswith(".partial")]
    directories = [n for n in midway if (settings.EXPORT_DIR / n).is_dir()]
    assert {n: midway[n] for n in directories} == dict.fromkeys(directories, 0o700)
    files = [n for n in top if n not in directories]
    assert {n: top[n] for n in files} == dict.fromkeys(files, 0o600)


def test_an_existing_export_directory_open_to_others_is_closed(
    modic, manager, settings, tmp_path, umask
):
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.EXPORT_DIR.mkdir()
    settings.EXPORT_DIR.chmod(0o755)

    job = run_export(modic, manager, blinded=True)

    assert mode(settings.EXPORT_DIR) == 0o700
    assert mode(Path(job.file_path)) == 0o600


def test_a_shared_directory_is_refused_as_the_export_directory(modic, manager, settings, tmp_path):
    """A sticky, world-writable directory such as /tmp is shared by design; closing it
    would break every other user of it, and files there are not the service's alone."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    settings.EXPORT_DIR = shared

    job = run_export_expecting_failure(modic, manager)

    assert "EXPORT_DIR" in job.error
    assert mode(shared) == 0o1777
    assert list(shared.iterdir()) == []


def run_export_expecting_failure(trial, user):
    job = ExportJob.objects.create(trial=trial, requested_by=user, blinded=True)
    assert export_run.delay(job.pk).get() == "failed"
    job.refresh_from_db()
    return job
