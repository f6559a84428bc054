"""Run the daily follow-up jobs once: coordinator digests, then visit reminders.

    python manage.py run_daily_jobs                 # today, in each trial's time zone
    python manage.py run_daily_jobs --day 2025-03-10

For development and for cron where no Celery beat runs. Without CELERY_BROKER_URL the
e-mails and SMS are sent here and now (Celery eager mode); with a broker they are queued
and a worker (make worker) sends them. Running it twice for a day sends nothing twice.

It lives with the SMS app, the higher of the two layers whose jobs it runs (participants'
digests, the SMS visit reminders).
"""

from __future__ import annotations

import datetime as dt

from celery.exceptions import Retry
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from outcomes.sms.tasks import send_visit_reminders
from participants.tasks import send_coordinator_digests
from trial.celery import app


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--day: {value!r} is not a date (YYYY-MM-DD).") from exc


class Command(BaseCommand):
    help = "Send the day's coordinator digests and visit reminders once (cron, development)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--day",
            type=iso_date,
            help="the day to run for, YYYY-MM-DD (default: today in each trial's time zone)",
        )

    def handle(self, *args, day: dt.date | None, **options):
        day_iso = day.isoformat() if day else None
        # Called directly, the fan-out tasks run here; the per-user and per-message tasks
        # they start go to the broker, or run in this process when Celery is eager.
        try:
            digests = send_coordinator_digests(day_iso)
            reminders = send_visit_reminders(day_iso)
        except Retry as exc:
            # Eager mode cannot wait and retry; what was sent is recorded, so a rerun later
            # sends only the rest.
            raise CommandError(
                f"Sending failed ({exc.exc!r}); run the command again later to send the rest."
            ) from exc

        if not digests:
            self.stdout.write("Coordinator digests: no trial is recruiting or in follow-up.")
        for code, done in digests.items():
            self.stdout.write(
                f"Coordinator digests for {code} ({done['day']}): {done['queued']} coordinator(s)."
            )
        if not reminders:
            self.stdout.write("Visit reminders: no trial in follow-up sends them.")
        for code, done in reminders.items():
            self.stdout.write(
                f"Visit reminders for {code} ({done['day']}): {done['queued']} SMS queued."
            )
        if app.conf.task_always_eager:
            self.stdout.write(
                "Sent in this process (no CELERY_BROKER_URL): e-mail via "
                f"{settings.EMAIL_BACKEND}, SMS via {settings.SMS_BACKEND}. "
                "Digests already sent that day are skipped."
            )
        else:
            self.stdout.write("Queued on the broker: a running worker (make worker) sends them.")
