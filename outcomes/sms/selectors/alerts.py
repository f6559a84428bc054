"""The worklist's SMS alerts (silent and opted-out participants) and the digest's
opt-outs; two queries and one, whatever the number of participants."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Window

from outcomes.sms import sms_queries, sms_recipients
from participants.models import Participant
from trial.models import Trial

ALERT_LIMIT = 20


# --- Alerts (worklist) ------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsAlerts:
    silent: list[Participant]  # two or more finished weeks in a row without an answer
    silent_count: int
    opted_out: list[Participant]  # most recent opt-out first
    opted_out_count: int

    @property
    def any(self) -> bool:
        return bool(self.silent_count or self.opted_out_count)

    @property
    def silent_after_weeks(self) -> int:
        return sms_recipients.SILENT_AFTER_WEEKS


def sms_alerts(trial: Trial, sites, *, limit: int = ALERT_LIMIT) -> SmsAlerts:
    """Active participants of the sites who have gone silent (outcomes.sms.sms_recipients: followed
    and silent, read through the partial index participant_sms_silent) and who opted out of
    the SMS: the
    first `limit` of each with the total, two queries (the total is a window count over
    the same rows, so no second query per list). Only active participants: for those no
    longer followed an opt-out or a silence needs nothing from the coordinator."""
    base = Participant.objects.filter(
        trial=trial, site__in=sites, status=Participant.Status.ACTIVE
    ).select_related("site")
    silent = list(
        base.filter(sms_queries.followed_q() & sms_queries.silent_q())
        .annotate(total=Window(Count("pk")))
        .order_by("-sms_missed_weeks", "number", "pk")[:limit]
    )
    opted_out = list(
        base.filter(sms_opted_out_at__isnull=False)
        .annotate(total=Window(Count("pk")))
        .order_by("-sms_opted_out_at", "-pk")[:limit]
    )
    return SmsAlerts(
        silent=silent,
        silent_count=silent[0].total if silent else 0,
        opted_out=opted_out,
        opted_out_count=opted_out[0].total if opted_out else 0,
    )


def sms_opt_outs_between(
    trial: Trial, sites, *, start: dt.datetime, end: dt.datetime, limit: int
) -> tuple[list[Participant], int]:
    """Participants of the sites who opted out in [start, end), most recent first: the
    first `limit` and the total, one query."""
    rows = list(
        Participant.objects.filter(
            trial=trial, site__in=sites, sms_opted_out_at__gte=start, sms_opted_out_at__lt=end
        )
        .select_related("site")
        .annotate(total=Window(Count("pk")))
        .order_by("-sms_opted_out_at", "-pk")[:limit]
    )
    return rows, rows[0].total if rows else 0
