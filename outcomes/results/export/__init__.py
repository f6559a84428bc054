"""The statistician's export bundle: one ZIP with the trial's data as CSV, Stata (.dta) and
SPSS (.sav), a codebook (CSV and JSON) and an R script that reads the CSVs with labels.

Members, each table as .csv, .dta and .sav:
    participants   wide, one row per randomized participant
    visits         long, one row per participant and planned visit
    sms            long, one row per participant, SMS week and question
    screening      the screening log
    allocations    every allocation's inputs, counts, scores, probabilities, draw
and codebook.csv, codebook.json (every variable of every table) and read_data.R.

Modules: tables (what is read and how it is labelled; blinding; identifiers left out),
members (one table → three files in bounded memory), codebook (names, codes, the R
script), shift (optional per-participant date shift), jobs (one job's build, between the
changes of state that outcomes.results.services makes: request, claim, progress, fail,
finish, stalled jobs), files (the bundle 0600 in a 0700 EXPORT_DIR). The job runs as a
Celery task (outcomes.results.tasks.export_run).

Memory: every table is streamed: read in chunks and written row by row; the Stata and SPSS
files are written by outcomes.results.statfiles from a spool on disk. Only the participants and
visits tables are DataFrames (one row per participant or visit, analysis_data's frames).
"""

from __future__ import annotations

import secrets
import zipfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from outcomes.results import services
from outcomes.results.export import files
from outcomes.results.export.codebook import safe_name
from outcomes.results.export.shift import Shifter
from outcomes.results.export.tables import Builder
from outcomes.results.models import ExportJob

__all__ = ["Shifter", "export_build", "safe_name"]


def export_build(job: ExportJob) -> Path:
    """Write the job's ZIP into settings.EXPORT_DIR, updating progress; returns its path."""
    directory = files.private_directory(Path(settings.EXPORT_DIR))
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    name = f"{job.trial.code}-export-{job.pk}-{stamp}.zip"
    final = directory / f"{job.pk}-{secrets.token_hex(8)}.zip"
    partial = final.with_suffix(".partial")

    def progress(percent: int, step: str) -> None:
        # Also the job's heartbeat (outcomes.results.services.export_sweep says why).
        services.export_progress(job_id=job.pk, percent=percent, step=step)

    try:
        # Level 1: the tables are repetitive text and fixed-width records, which the fastest
        # DEFLATE level already shrinks several-fold; level 6 (the default) spent a quarter
        # of the export's time compressing for a few percent more (profiled at 10,000).
        with (
            files.create_private(partial) as raw,
            zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        ):
            builder = Builder(job, zf, progress)
            try:
                # First, so that on PostgreSQL the server writes the SMS table (the longest
                # step) while this process builds the others (Builder.sms_start).
                builder.sms_start()
                progress(5, "Participants (wide)")
                builder.participants()
                progress(20, "Visits")
                builder.visits()
                progress(27, "Screening log")
                builder.screening()
                progress(30, "Allocation log")
                builder.allocations()
                progress(40, "Weekly SMS")
                builder.sms(first=40, last=96)
                progress(97, "Codebook and R script")
                builder.codebook_members()
            finally:
                builder.close()
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    job.file_name = name
    job.file_path = str(final)
    job.size = final.stat().st_size
    return final
