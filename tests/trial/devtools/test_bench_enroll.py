"""`make bench` measures concurrent enrollment with 8 clients for 20 s; here it runs tiny on
a real gunicorn, Redis and PostgreSQL, so it keeps working and its anomaly checks stay sharp.

PostgreSQL only: the benchmark is about row locks under concurrent load (SQLite has none).
"""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from participants import services
from participants.models import Allocation, FactorLevelCount, Participant
from tests import factories
from trial.devtools.bench_enroll import report

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def cell(text: str, label: str) -> str:
    """The value of the table row whose label starts with `label`."""
    row = next(line for line in text.splitlines() if line.startswith(f"| {label}"))
    return row.strip("|").split("|")[1].strip()


def test_tiny_enrollment_run_writes_the_table_with_no_anomalies(tmp_path):
    out = StringIO()
    perf = tmp_path / "PERFORMANCE.md"
    call_command(
        "bench_enroll", clients=2, seconds=2, participants=2000, server=["sync:2"],
        write=str(perf), stdout=out, stderr=StringIO(),
    )  # fmt: skip
    text = out.getvalue()
    assert cell(text, "anomalies") == "0"
    assert cell(text, "HTTP 5xx") == "0"
    assert int(cell(text, "randomizations in the window").replace(",", "")) > 0
    assert float(cell(text, "baseline: bare SQL loop per second")) > 0
    assert re.fullmatch(r"\d+\.\d\d×", cell(text, "ratio, ours / bare"))
    statements, locked = re.fullmatch(
        r"(\d+), (\d+) of them holding the trial lock", cell(text, "statements per randomize")
    ).groups()
    assert 0 < int(locked) < int(statements)
    written = perf.read_text()
    assert "### Concurrent enrollment" in written
    assert "| randomizations per second (goal ≥ 250) |" in written
    # Every successful POST is an allocation, and the in-process one too.
    assert Allocation.objects.count() == Participant.objects.filter(status="active").count()


def test_fault_run_keeps_enrolling_while_redis_is_down_and_sends_every_sms_once(tmp_path):
    out = StringIO()
    call_command(
        "bench_enroll", clients=2, seconds=6, participants=5000, server=["sync:2"],
        fault=True, outage=2, sms_participants=40, stdout=out, stderr=StringIO(),
    )  # fmt: skip
    text = out.getvalue()
    assert "fault run: OK" in text, text
    assert int(cell(text, "randomizations during the outage").replace(",", "")) > 0
    assert cell(text, "gateway sends per message (min–max)") == "1–1"
    sent, still_queued = cell(text, "sent / still queued").split(" / ")
    assert int(sent.replace(",", "")) > 0
    assert still_queued == "0"


def test_the_anomaly_check_catches_a_count_that_differs_from_the_recount(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=participant, by=clinician)
    assert report.anomalies(modic, answered=1) == []
    row = FactorLevelCount.objects.filter(trial=modic, count=1).first()
    FactorLevelCount.objects.filter(pk=row.pk).update(count=2)
    assert report.anomalies(modic, answered=1) == [
        "FactorLevelCount differs from the recount of allocations"
    ]


def test_the_anomaly_check_catches_a_success_without_an_allocation(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=participant, by=clinician)
    assert report.anomalies(modic, answered=2) == ["2 randomizations answered, 1 stored"]


def test_the_anomaly_check_catches_a_gap_in_a_sites_numbers(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=participant, by=clinician)
    Participant.objects.filter(pk=participant.pk).update(number=f"{modic.code}-01-0002")
    assert report.anomalies(modic, answered=1) == [
        "site 01: numbers not unique and gap-free"
    ]


def test_fewer_participants_than_clients_is_refused():
    with pytest.raises(CommandError, match="--participants"):
        call_command("bench_enroll", clients=4, participants=2, stdout=StringIO())
