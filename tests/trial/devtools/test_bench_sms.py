"""`make bench` runs the weekly SMS benchmark at 1,000 and 10,000; here it runs tiny, so it
keeps working. The webhook part starts gunicorn, so it runs only with BENCH_SMS_WEBHOOK=1."""

import os
from io import StringIO

import pytest
from django.core.management import call_command

from outcomes.sms.models import OutboundMessage


# Committed transactions: the sends run on commit, as in the real job.
@pytest.mark.django_db(transaction=True)
def test_the_weekly_sms_benchmark_sends_every_question_and_reports_memory():
    out = StringIO()
    call_command("bench_sms", sizes=[20, 60], stdout=out, stderr=StringIO())
    text = out.getvalue()
    line = next(row for row in text.splitlines() if row.startswith("| questions sent"))
    assert [cell.strip() for cell in line.strip("|").split("|")[1:3]] == ["20", "60"]
    assert "| peak memory ratio, 60 / 20 |" in text
    assert "weekly job memory:" in text
    # Timed and memory runs (the job-only run sends nothing): every question sent once.
    assert OutboundMessage.objects.filter(status="sent").count() == 2 * (20 + 60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    os.environ.get("BENCH_SMS_WEBHOOK") != "1", reason="starts gunicorn; BENCH_SMS_WEBHOOK=1"
)
def test_the_webhook_benchmark_posts_signed_replies_to_a_real_server(tmp_path):
    out = StringIO()
    call_command(
        "bench_sms", sizes=[5, 30], webhook=True, seconds=2, clients=2,
        write=str(tmp_path / "perf.md"), stdout=out, stderr=StringIO(),
    )  # fmt: skip
    text = out.getvalue()
    assert "| ratio, replies / baseline |" in text
    assert "webhook:" in text
    assert "### Weekly SMS" in (tmp_path / "perf.md").read_text()
