"""The participants table of the export, whole, against its expected content: the CSV and the
codebook's rows for it, blinded and not (the demo data of test_export, with fixed arm codes;
participant ids and today's dates are replaced by stable placeholders, since both vary with
the database and the day). Expected output was taken from the export before its
participants table was split into a decision (outcomes.results.participants_table) and Builder."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from participants.models import Allocation, Participant
from tests.outcomes.results import test_export
from tests.outcomes.results.test_export import members, run_export
from trial.models import Arm

_celery_eager, sms_file = test_export._celery_eager, test_export.sms_file
_export_dir, data = test_export._export_dir, test_export.data
EXPECTED = Path(__file__).parent / "expected"


def normalized(content: bytes, trial, *, blinded: bool) -> str:
    """The CSV with participant ids as P1, P2, ... (in id order), each participant's
    randomization date as <randomized_on> and their arm, when it is their allocation's (its
    code, or its neutral letter when blinded), as <arm>: the allocation follows a draw
    seeded by the participant's id, which differs between databases."""
    people = list(Participant.objects.filter(trial=trial).order_by("pk"))
    ids = {str(p.pk): f"P{n}" for n, p in enumerate(people, 1)}
    dates = {str(p.randomized_on) for p in people if p.randomized_on}
    arm_of = {
        str(a.participant_id): a.arm.blind_code if blinded else a.arm.code
        for a in Allocation.objects.filter(trial=trial).select_related("arm")
    }
    header, *rows = list(csv.reader(io.StringIO(content.decode())))
    arm = header.index("arm")
    lines = [",".join(header)]
    for row in rows:
        pid = row[0]
        cells = ["<randomized_on>" if cell in dates else cell for cell in row]
        cells[0] = ids.get(pid, pid)
        if row[arm] == arm_of.get(pid):
            cells[arm] = "<arm>"
        lines.append(",".join(cells))
    return "\n".join(lines)


def codebook_rows(content: bytes) -> str:
    rows = list(csv.reader(io.StringIO(content.decode())))
    return "\n".join("|".join(row) for row in rows if row[0] in ("table", "participants"))


@pytest.mark.parametrize("blinded", [True, False])
def test_the_participants_table_and_its_codebook_are_as_expected(
    blinded, modic, data, statistician, manager
):
    first, second = Arm.objects.filter(trial=modic).order_by("order", "pk")
    Arm.objects.filter(trial=modic).update(blind_code="")
    Arm.objects.filter(pk=first.pk).update(blind_code="B")
    Arm.objects.filter(pk=second.pk).update(blind_code="A")
    job = run_export(modic, statistician if blinded else manager, blinded=blinded)
    files = members(job)
    shown = normalized(files["participants.csv"], modic, blinded=blinded) + "\n----\n"
    shown += codebook_rows(files["codebook.csv"])
    name = "participants_table_blinded.txt" if blinded else "participants_table_names.txt"
    assert shown == (EXPECTED / name).read_text(encoding="utf-8")
