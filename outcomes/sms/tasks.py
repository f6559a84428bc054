"""Celery tasks of the SMS: sending queued SMS, the weekly tracking jobs and the visit
reminders.

Each task keeps the name it had before it moved here ("outcomes.tasks.…", and the visit
reminders' "participants.tasks.…"): tasks queued by the previous release, and the beat
schedule (settings.CELERY_BEAT_SCHEDULE), find them under that name."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.utils import timezone

from outcomes.sms import gateways as sms
from outcomes.sms import services
from outcomes.sms.models import OutboundMessage, SmsSchedule
from outcomes.sms.tracking import sms_reminders_send, sms_weekly_send
from outcomes.sms.visit_reminders import (
    trials_with_reminders,
    visit_reminder_send,
    visits_to_remind,
)
from participants.services import trial_today

logger = logging.getLogger(__name__)

# Retries wait random delays of at most 30 s, 1, 2, 4, 8 and 16 min: up to about half an
# hour in all, enough to ride out a gateway incident without reminding anyone late. Each delay
# stays well under the Redis broker's visibility timeout (1 hour), beyond which a task
# waiting for its retry would be handed to a second worker.
SMS_MAX_RETRIES = 6
SMS_BACKOFF_FACTOR = 30
SMS_BACKOFF_MAX = 30 * 60


# The attempts are counted on the message itself, not by Celery: a message picked up again by
# the stale sweeper (its retry task lost in a broker outage) continues the same count.
@shared_task(name="outcomes.tasks.sms_send", bind=True, max_retries=None)
def sms_send(self, message_id: int) -> str:
    """Send one queued SMS: "sent", "skipped" (not queued any more), "cancelled" (the
    participant must get nothing now) or "failed"."""
    try:
        return services.sms_send_now(message_id=message_id)
    except sms.TransientSmsError as exc:
        countdown = get_exponential_backoff_interval(
            factor=SMS_BACKOFF_FACTOR,
            retries=self.request.retries,
            maximum=SMS_BACKOFF_MAX,
            full_jitter=True,
        )
        attempts = services.sms_retry_at(
            message_id=message_id, at=timezone.now() + dt.timedelta(seconds=countdown)
        )
        if attempts > SMS_MAX_RETRIES:
            services.sms_give_up(message_id=message_id, error=f"Gave up after retries: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=countdown) from exc


# A queued message this long past its next try has lost its task: the broker was
# unreachable when the transaction committed, or the task was dropped. Long enough that a
# task merely waiting in a busy queue is rarely sent twice (and if it is, sms_send_now's
# row lock makes the second a no-op).
STALE_AFTER = dt.timedelta(minutes=10)
STALE_BATCH = 1000
# After a long outage a weekly round's messages may all be stale: up to this many are
# queued again per run (every 15 minutes), in batches, so no run holds them all in memory.
STALE_MAX_PER_RUN = 50_000


@shared_task(name="outcomes.tasks.sms_send_stale")
def sms_send_stale(trial_id: int | None = None) -> int:
    """Queue a send for queued messages whose next try is long overdue (every 15 minutes):
    their task was never delivered (broker down at queueing time) or its retry was lost.
    With `trial_id`, that trial's only (the benchmarks share a database with other trials'
    leftovers)."""
    now = timezone.now()
    cutoff = now - STALE_AFTER
    stale = OutboundMessage.objects.filter(
        status=OutboundMessage.Status.QUEUED, next_attempt_at__lt=cutoff
    )
    if trial_id is not None:
        stale = stale.filter(trial_id=trial_id)
    queued = 0
    while queued < STALE_MAX_PER_RUN:
        message_ids = list(
            stale.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:STALE_BATCH]
        )
        if not message_ids:
            break
        # Pushed forward first, so the next batch (and a concurrent sweeper) moves on.
        OutboundMessage.objects.filter(pk__in=message_ids, status="queued").update(
            next_attempt_at=now
        )
        for message_id in message_ids:
            sms_send.delay(message_id)
        queued += len(message_ids)
    return queued


# --- Weekly SMS tracking ----------------------------------------------------------------------
# Both run every 15 minutes (settings.CELERY_BEAT_SCHEDULE) and are idempotent: the weekly job
# opens the current week for whoever is due and does not have it yet, so it sends at most a
# quarter of an hour after each trial's local send time, catches up after an outage, and a
# re-run (or a worker killed half-way) sends nobody a second question for the same week.


def _each_trial(job) -> dict[str, int]:
    """Run `job(trial)` for every trial with weekly SMS; one trial's failure is logged and
    does not keep the others from their messages (the next run retries it)."""
    result: dict[str, int] = {}
    failed = []
    for schedule in SmsSchedule.objects.filter(enabled=True).select_related("trial"):
        try:
            result[schedule.trial.code] = job(schedule.trial)
        except Exception:
            logger.exception("Weekly SMS job failed for trial %s", schedule.trial.code)
            failed.append(schedule.trial.code)
    if failed:
        raise RuntimeError(f"Weekly SMS job failed for {', '.join(failed)}; others done")
    return result


@shared_task(name="outcomes.tasks.sms_weekly")
def sms_weekly() -> dict[str, int]:
    """Open the current week's SMS round in every trial with weekly SMS; {trial: opened}."""
    return _each_trial(lambda trial: sms_weekly_send(trial=trial).opened)


@shared_task(name="outcomes.tasks.sms_reminders")
def sms_reminders() -> dict[str, int]:
    """Send the one reminder of each week unanswered after its trial's delay."""
    return _each_trial(lambda trial: sms_reminders_send(trial=trial))


@shared_task(name="participants.tasks.send_visit_reminders")
def send_visit_reminders(day: str | None = None) -> dict[str, dict]:
    """Queue an SMS reminder for each visit due one (outcomes.sms.visit_reminders), on `day`
    (an ISO date; default: today in each trial's time zone); returns per trial code
    {"day": ..., "queued": n}."""
    given = dt.date.fromisoformat(day) if day else None
    summary = {}
    for trial in trials_with_reminders():
        trial_day = given or trial_today(trial)
        candidates = visits_to_remind(trial, day=trial_day)
        queued = sum(
            visit_reminder_send(visit_id=visit_id, day=trial_day) is not None
            for visit_id in list(candidates.values_list("pk", flat=True))
        )
        summary[trial.code] = {"day": trial_day.isoformat(), "queued": queued}
    return summary
