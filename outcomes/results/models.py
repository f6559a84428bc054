"""The statistician's export bundles."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

# --- Exports for the statistician ---------------------------------------------------------------


class ExportJob(models.Model):
    """One export bundle (a ZIP of CSV, Stata, SPSS, codebook and an R script) built by a
    Celery task (outcomes.results.tasks.export_run; its changes of state are
    outcomes.results.services') and kept for download until `expires_at`
    (settings.EXPORT_KEEP_HOURS); then the file is deleted."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    blinded = models.BooleanField(help_text="Arms as neutral codes (A, B, ...) only.")
    shift_dates = models.BooleanField(
        default=False, help_text="Dates shifted by a random offset per participant."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set at each progress step: a running job silent for settings.EXPORT_STALE_MINUTES is
    # marked failed by outcomes.results.services.export_sweep (its worker died).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it had when this model belonged to the flat outcomes
        # app: the move to a nested app changed no table (outcomes migration 0011).
        db_table = "outcomes_exportjob"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(name="export_progress_range", condition=Q(progress__lte=100)),
        ]
        indexes = [models.Index(fields=["trial", "-created_at"], name="export_trial_recent")]

    def __str__(self) -> str:
        return f"Export {self.pk} of {self.trial_id} ({self.status})"
