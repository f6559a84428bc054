"""Every write of the results app: the life of an ExportJob, one service per change of state.

    export_request    queued for a user (one pending export per person and trial)
    export_claim      queued → running, by the worker that builds it
    export_progress   progress and heartbeat of a running build
    export_fail       running → failed, with the error
    export_finish     running → done, with its file and keep time
    export_sweep      stalled jobs failed, unclaimed ones handed to the broker again
    export_cleanup    files of expired exports deleted (the rows stay: the audit)

Building the bundle is not a state change: outcomes.results.export.jobs.export_run claims the
job here, builds it (outcomes.results.export.export_build) and ends it here.

A job whose worker died mid-build would otherwise stay "running" for ever, blocking its
requester (one pending export per person) and keeping the page polling. The build beats a
heartbeat at every progress step; `export_sweep` (beat, every 10 minutes) marks a running
job silent for EXPORT_STALE_MINUTES failed and deletes its partial file, and hands a job
still queued after that long to the broker again (its task may have been lost in a broker
outage; a duplicate task is a no-op, because a worker must claim the queued job first).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from outcomes.results.models import ExportJob
from trial import blinding
from trial.models import Trial

STALLED = "The export stopped without finishing (its worker was interrupted); start a new one."


def stale_after() -> dt.timedelta:
    return dt.timedelta(minutes=settings.EXPORT_STALE_MINUTES)


def _stalled(now: dt.datetime) -> Q:
    """Jobs that should have moved by now: running without a heartbeat, or never claimed."""
    cutoff = now - stale_after()
    running = Q(status=ExportJob.Status.RUNNING) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    return running | Q(status=ExportJob.Status.QUEUED, created_at__lt=cutoff)


# The Celery task that builds one export (outcomes.results.tasks.export_run), connected by
# ResultsConfig.ready: the tasks call this module, so this module does not import them.
_run_task = None


def connect_run_task(task) -> None:
    """Make `task` (its `.delay(job_id)`) the one that builds queued exports."""
    global _run_task
    _run_task = task


def _enqueue(job_id: int) -> None:
    """Hand the job to the broker after the commit. robust: with the broker down the request
    still succeeds; the job stays queued and export_sweep hands it over again later."""
    export_run = _run_task
    transaction.on_commit(lambda: export_run.delay(job_id), robust=True)


@transaction.atomic
def export_request(
    *, trial: Trial, user: AbstractBaseUser, shift_dates: bool
) -> tuple[ExportJob, bool]:
    """Queue an export for `user` (blinded unless they may see arm names); returns (job,
    created). One pending export per person and trial: a double click or an impatient
    second click returns the job already under way instead of building the bundle twice
    (a stalled one does not count)."""
    blinded = blinding.is_blinded(user, trial)
    pending = (
        ExportJob.objects.select_for_update()
        .filter(
            trial=trial,
            requested_by=user,
            status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING],
        )
        .exclude(_stalled(timezone.now()))
        .first()
    )
    if pending is not None:
        return pending, False
    job = ExportJob.objects.create(
        trial=trial, requested_by=user, blinded=blinded, shift_dates=shift_dates
    )
    if not blinded:
        blinding.record_unblinded_view(
            user=user, trial=trial, what=f"Data export {job.pk}", exported=True
        )
    _enqueue(job.pk)
    return job, True


def export_claim(*, job_id: int) -> bool:
    """Claim a queued job for this worker (queued → running); False when it is past
    "queued" (a redelivered or re-sent task), which the caller then leaves alone. A
    conditional UPDATE, so that of two workers given the same job only one builds it."""
    return bool(
        ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
            status=ExportJob.Status.RUNNING, step="Starting", heartbeat_at=timezone.now()
        )
    )


def export_progress(*, job_id: int, percent: int, step: str) -> None:
    """Record a running build's progress. Also its heartbeat: a running job silent for too
    long is marked stalled (export_sweep)."""
    ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(
        progress=percent, step=step, heartbeat_at=timezone.now()
    )


def export_fail(*, job_id: int, error: str) -> None:
    """End a running build as failed, with (the first 2,000 characters of) its error."""
    ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(
        status=ExportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def export_finish(*, job: ExportJob) -> bool:
    """End a running build as done, with the file export_build wrote (job.file_name,
    file_path, size), kept EXPORT_KEEP_HOURS. False when the job was swept as stalled
    meanwhile: its requester was told to start again, and the caller discards the file."""
    now = timezone.now()
    finished = ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
        status=ExportJob.Status.DONE, progress=100, step="Ready", file_name=job.file_name,
        file_path=job.file_path, size=job.size, finished_at=now, heartbeat_at=now,
        expires_at=now + dt.timedelta(hours=settings.EXPORT_KEEP_HOURS),
    )  # fmt: skip
    return bool(finished)


def export_sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """Fail running jobs that stopped beating, re-send jobs never claimed; counts of each."""
    now = now or timezone.now()
    stalled = ExportJob.objects.filter(_stalled(now))
    failed = 0
    for pk in stalled.filter(status=ExportJob.Status.RUNNING).values_list("pk", flat=True):
        failed += ExportJob.objects.filter(
            _stalled(now), pk=pk, status=ExportJob.Status.RUNNING
        ).update(status=ExportJob.Status.FAILED, error=STALLED, finished_at=now)
        for partial in Path(settings.EXPORT_DIR).glob(f"{pk}-*.partial"):
            partial.unlink(missing_ok=True)
    requeued = 0
    for pk in stalled.filter(status=ExportJob.Status.QUEUED).values_list("pk", flat=True):
        _enqueue(pk)
        requeued += 1
    return {"failed": failed, "requeued": requeued}


def export_cleanup(now: dt.datetime | None = None) -> int:
    """Delete the files of exports past their keep time; the job rows stay (the audit)."""
    deleted = 0
    expired = ExportJob.objects.filter(expires_at__lt=now or timezone.now()).exclude(file_path="")
    for pk, path in expired.values_list("pk", "file_path"):
        Path(path).unlink(missing_ok=True)
        ExportJob.objects.filter(pk=pk).update(file_path="")
        deleted += 1
    return deleted
