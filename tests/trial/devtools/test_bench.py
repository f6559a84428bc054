"""`make bench` runs the allocation benchmark at 10,000; here it runs tiny, so it keeps working."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_allocation_benchmark_runs_and_reports_a_ratio_and_constant_queries():
    out = StringIO()
    call_command("bench_allocation", n=60, window=10, stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "ratio (goal ≤ 1.5×)" in text
    line = next(row for row in text.splitlines() if row.startswith("| queries per allocation"))
    early, late = line.split("|")[2].strip().split(" / ")
    assert early == late, "an allocation's query count must not grow with trial size"


@pytest.mark.django_db
def test_worklist_benchmark_runs_with_a_constant_query_count():
    out = StringIO()
    call_command("bench_worklist", sizes=[30, 300], requests=2, stdout=out, stderr=StringIO())
    text = out.getvalue()
    line = next(row for row in text.splitlines() if row.startswith("| queries per request"))
    small, large = (cell.strip() for cell in line.strip("|").split("|")[1:3])
    assert small == large, "the worklist's query count must not grow with trial size"
    assert "worklist p95 at 300" in text
