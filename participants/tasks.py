"""The daily coordinator digests (Celery; scheduled in settings.CELERY_BEAT_SCHEDULE):

    send_coordinator_digests  07:00  one e-mail per coordinator and trial: visits due/overdue

The visit reminders (09:00, an SMS per visit) are the SMS app's task of the same family,
participants.tasks.send_visit_reminders, defined in outcomes.sms.tasks.

The task takes the day as an ISO date (default: today in each trial's time zone), so a run
can be repeated or caught up for a given day (manage.py run_daily_jobs --day). It is
idempotent: a digest is logged in DigestLog (unique per user, trial and day), so a rerun, a
retry or a second worker sends nothing twice.

The writes are services (participants/services/reminders.py); the tasks only parse ids and
dates and handle retries.
"""

from __future__ import annotations

import datetime as dt
import smtplib

from celery import shared_task

from participants import selectors_digest
from participants.services import trial_today
from participants.services.reminders import (  # noqa: F401 - re-exported for callers
    DIGEST_ROW_LIMIT,
    coordinator_digest_send,
)


def _day_or_none(day: str | None) -> dt.date | None:
    return dt.date.fromisoformat(day) if day else None


# --- Coordinator digests --------------------------------------------------------------------


@shared_task
def send_coordinator_digests(day: str | None = None) -> dict[str, dict]:
    """Queue one digest per coordinator of each trial in follow-up; returns what was queued
    per trial code: {"MOD": {"day": "2025-03-10", "queued": 2}}."""
    given = _day_or_none(day)  # parsed first, so a bad date fails before anything is queued
    summary = {}
    for trial in selectors_digest.trials_in_followup():
        trial_day = (given or trial_today(trial)).isoformat()
        user_ids = list(selectors_digest.digest_recipients(trial).values_list("pk", flat=True))
        for user_id in user_ids:
            send_coordinator_digest.delay(user_id, trial.pk, trial_day)
        summary[trial.code] = {"day": trial_day, "queued": len(user_ids)}
    return summary


# SMTP outages last minutes, not seconds: back off from 30 s (random delays of at most 30,
# 60, 120, 240 and 480 s), so five retries span up to a quarter of an hour. TimeoutError
# covers a server that accepts the connection and then hangs (EMAIL_TIMEOUT).
@shared_task(
    bind=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    max_retries=5,
)
def send_coordinator_digest(self, user_id: int, trial_id: int, day: str) -> str:
    """E-mail one coordinator the visits due and overdue at their sites on `day`."""
    return coordinator_digest_send(
        user_id=user_id, trial_id=trial_id, day=dt.date.fromisoformat(day)
    )
