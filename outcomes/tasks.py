"""Celery tasks of the outcomes app: sending queued SMS."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.utils import timezone

from outcomes import services, sms
from outcomes.models import OutboundMessage

# Retries wait random delays of at most 30 s, 1, 2, 4, 8 and 16 min: up to about half an
# hour in all, enough to ride out a gateway incident without reminding anyone late. Each delay
# stays well under the Redis broker's visibility timeout (1 hour), beyond which a task
# waiting for its retry would be handed to a second worker.
SMS_MAX_RETRIES = 6
SMS_BACKOFF_FACTOR = 30
SMS_BACKOFF_MAX = 30 * 60


@shared_task(bind=True, max_retries=SMS_MAX_RETRIES)
def sms_send(self, message_id: int) -> str:
    """Send one queued SMS; "sent", "skipped" (not queued any more) or "failed"."""
    try:
        return services.sms_send_now(message_id=message_id)
    except sms.TransientSmsError as exc:
        if self.request.retries >= self.max_retries:
            services.sms_give_up(message_id=message_id, error=f"Gave up after retries: {exc}")
            return "failed"
        countdown = get_exponential_backoff_interval(
            factor=SMS_BACKOFF_FACTOR,
            retries=self.request.retries,
            maximum=SMS_BACKOFF_MAX,
            full_jitter=True,
        )
        raise self.retry(exc=exc, countdown=countdown) from exc


# A message never tried this long after it was stored has lost its task: the broker was
# unreachable when the transaction committed, or the task was dropped. Long enough that a
# task merely waiting in a busy queue is rarely sent twice (and if it is, sms_send_now's
# row lock makes the second a no-op).
STALE_AFTER = dt.timedelta(minutes=10)
STALE_BATCH = 500


@shared_task
def sms_send_stale() -> int:
    """Queue a send for messages still waiting for their first try (every 15 minutes)."""
    cutoff = timezone.now() - STALE_AFTER
    stale = OutboundMessage.objects.filter(
        status=OutboundMessage.Status.QUEUED, attempts=0, created_at__lt=cutoff
    ).order_by("created_at")
    message_ids = list(stale.values_list("pk", flat=True)[:STALE_BATCH])
    for message_id in message_ids:
        sms_send.delay(message_id)
    return len(message_ids)
