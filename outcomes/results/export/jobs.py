"""One export job's build, as its Celery task runs it (outcomes.results.tasks.export_run).

The job's changes of state (claimed, failed, done) are outcomes.results.services'; what is
left here is the work between them: building the bundle and discarding a file nobody will
fetch."""

from __future__ import annotations

import logging
from pathlib import Path

from outcomes.results import export, services
from outcomes.results.models import ExportJob

logger = logging.getLogger(__name__)


def export_run(job_id: int) -> str:
    """Build one export ZIP; the job ends "done" or "failed" with the error. Idempotent: a
    job already past "queued" (a redelivered or re-sent task) is left alone."""
    if not services.export_claim(job_id=job_id):
        return "skipped"
    job = ExportJob.objects.select_related("trial").get(pk=job_id)
    try:
        export.export_build(job)
    except Exception as exc:
        logger.exception("Export %s failed", job_id)
        services.export_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    if not services.export_finish(job=job):  # swept as stalled meanwhile
        Path(job.file_path).unlink(missing_ok=True)
        return "stalled"
    return "done"
