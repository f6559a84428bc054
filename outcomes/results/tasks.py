"""Celery tasks of the statistician's export bundles.

Each task keeps the name it had before outcomes became nested apps ("outcomes.tasks.…"):
tasks queued by the previous release, and the beat schedule (settings.CELERY_BEAT_SCHEDULE),
find them under that name."""

from __future__ import annotations

from celery import shared_task

from outcomes.results import services
from outcomes.results.export import jobs


@shared_task(name="outcomes.tasks.export_run")
def export_run(job_id: int) -> str:
    """Build one export ZIP (outcomes.results.export.jobs.export_run)."""
    return jobs.export_run(job_id)


@shared_task(name="outcomes.tasks.export_sweep")
def export_sweep() -> dict[str, int]:
    """Fail stalled exports and re-send unclaimed ones (every 10 minutes)."""
    return services.export_sweep()


@shared_task(name="outcomes.tasks.export_cleanup")
def export_cleanup() -> int:
    """Delete the files of exports past their keep time (hourly); the job rows stay."""
    return services.export_cleanup()
