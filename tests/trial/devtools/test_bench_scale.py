"""`make bench` runs the scale benchmark at 1,000, 10,000 and 100,000 participants on
PostgreSQL; here it runs tiny, so it keeps working (and its export children see the data:
committed transactions)."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from participants.models import Allocation
from trial.models import Trial

FIGURES = (
    "| allocation, median server time |",
    "| allocation ratio, 100 / 50 |",
    "| participant page, p95 |",
    "| worklist page, queries per request |",
    "| dashboard cold (cache cleared), median |",
    "| baseline: raw SQL aggregate of its headline numbers |",
    "| dashboard warm (cached page), median |",
    "| export bundle, peak RSS (child; its start) |",
    "| baseline: pandas to_csv of the same tables, wall time |",
)


@pytest.mark.django_db(transaction=True)
def test_the_scale_benchmark_measures_every_figure_and_appends_its_table(tmp_path):
    target = tmp_path / "PERFORMANCE.md"
    target.write_text("# Performance\n")
    out = StringIO()
    call_command(
        "bench_scale", sizes=[50, 100], weeks=4, requests=3, allocations=3, cold_runs=1,
        write=str(target), stdout=out, stderr=StringIO(),
    )  # fmt: skip
    text = out.getvalue()
    for figure in FIGURES:
        assert figure in text, figure
    assert "failed" not in text  # an export child that fails is reported, not raised
    written = target.read_text()
    assert written.startswith("# Performance\n") and "### Scale benchmark (" in written
    assert "CPUs" in written and text in written
    # The benchmark randomized its ready participants through the real service.
    for trial in Trial.objects.filter(code__startswith="SC"):
        n = trial.target_sample_size - 3 - 3  # build size: target minus the ready ones
        assert Allocation.objects.filter(trial=trial).count() == trial.allocation_count
        assert trial.allocation_count == n + 3 + 3
    # Issue 15, item 19: the dashboard's cold / SQL ratio with one decimal and a verdict,
    # and the machine's load average beside the figures.
    ratio = _cells(text, "| ratio, dashboard cold / SQL")
    assert all(re.fullmatch(r"\d+\.\d×", cell) for cell in ratio[:2]), ratio
    assert ratio[2].startswith("≤ 2×") and ratio[3] in ("yes", "**no**")
    load = _cells(text, "| load average (1 min) at the dashboard samples |")
    assert all(re.fullmatch(r"\d+\.\d(–\d+\.\d)?", cell) for cell in load[:2]), load
    assert re.search(r"Load average \(1, 5, 15 min\) at the start of the measurements [\d.]+ /", text)
    worklist = next(line for line in text.splitlines() if line.startswith("| worklist page, q"))
    small, large = (cell.strip() for cell in worklist.strip("|").split("|")[1:3])
    assert small == large, "the worklist's query count must not grow with trial size"


def _cells(text: str, start: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")[1:]]
