"""The weekly round: each participant's week opened with its first question (sms_weekly_send),
and one reminder for a week still unanswered after the delay (sms_reminders_send)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from outcomes.sms import sms_queries, sms_rules, sms_totals
from outcomes.sms.models import OutboundMessage, SmsWeek
from outcomes.sms.services import sms_queue_many
from outcomes.sms.tracking.config import SmsConfig, sms_config
from participants.models import Participant
from trial.models import Trial

logger = logging.getLogger(__name__)
Kind = OutboundMessage.Kind

# Participants read and written per transaction by the weekly job: memory and lock time
# stay bounded however large the trial.
BATCH_SIZE = 1000


@dataclass(frozen=True)
class WeeklyResult:
    send_date: dt.date | None
    opened: int = 0
    already_open: int = 0


def sms_weekly_send(*, trial: Trial, now: dt.datetime | None = None) -> WeeklyResult:
    """Open this week's round for every participant due and queue its first question.

    "This week" is the latest send day whose send time has passed, so a run that comes late
    (an outage, a restart) still sends the current week, and a re-run opens nothing twice
    (SmsWeek is unique per participant and week). Participants are read in primary-key
    batches, each written in its own transaction: a crash loses at most the batch in
    progress, which the next run completes.
    """
    config = sms_config(trial)
    if config is None:
        return WeeklyResult(None)
    now = now or timezone.now()
    schedule = config.schedule
    send_date = sms_rules.last_send_date(now, trial.zone, schedule.weekday, schedule.send_time)
    first, last = sms_rules.randomized_range(send_date, schedule.weeks)
    due = Participant.objects.filter(
        sms_queries.tracked_q(), trial=trial, randomized_on__range=(first, last)
    ).order_by("pk")
    opened = already = 0
    after = 0
    while True:
        batch = list(
            due.filter(pk__gt=after).values(
                "pk", "site_id", "phone", "randomized_on", "sms_language"
            )[:BATCH_SIZE]
        )
        if not batch:
            break
        after = batch[-1]["pk"]
        try:
            n_new, n_old = _open_weeks(trial, config, send_date, now, batch)
        except IntegrityError:
            # A concurrent run opened some of these weeks first; it sends them.
            logger.warning("SMS week batch after pk %s opened concurrently; skipped", after)
            continue
        opened += n_new
        already += n_old
    return WeeklyResult(send_date, opened, already)


# long: one locked batch of the weekly job (lock, skip weeks already open, open the rest,
# queue their first questions, count silent weeks, totals last); the order is the locking.
@transaction.atomic
def _open_weeks(
    trial: Trial, config: SmsConfig, send_date: dt.date, now: dt.datetime, batch: list[dict]
) -> tuple[int, int]:
    week_of = {row["pk"]: sms_rules.week_number(row["randomized_on"], send_date) for row in batch}
    # Lock the batch's participants (in primary-key order, as every locker here does): a
    # reply being recorded for one of them finishes first, so the silent-weeks count below
    # sees its answer.
    list(
        Participant.objects.select_for_update()
        .filter(pk__in=week_of)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    # Already open: this send day's week, or a week of the same number opened on another
    # day (the trial moved its send weekday mid-week) — either way, nothing more this week.
    existing = {
        participant_id
        for participant_id, week, day in SmsWeek.objects.filter(
            Q(send_date=send_date) | Q(week__in=set(week_of.values())),
            participant_id__in=week_of,
        ).values_list("participant_id", "week", "send_date")
        if day == send_date or week == week_of[participant_id]
    }
    rows = [row for row in batch if row["pk"] not in existing]
    if not rows:
        return 0, len(existing)
    first = config.questions[0]
    weeks = SmsWeek.objects.bulk_create(
        [
            SmsWeek(
                trial=trial,
                site_id=row["site_id"],
                participant_id=row["pk"],
                week=week_of[row["pk"]],
                send_date=send_date,
                opened_at=now,
                current_question=first,
            )
            for row in rows
        ]
    )
    by_participant = {row["pk"]: row for row in rows}
    sms_queue_many(
        [
            OutboundMessage(
                trial=trial,
                participant_id=week.participant_id,
                to=by_participant[week.participant_id]["phone"],
                body=config.question_text(
                    first, by_participant[week.participant_id]["sms_language"]
                ),
                kind=Kind.SMS_QUESTION,
                week=week,
                question=first,
            )
            for week in weeks
        ]
    )
    # The week before has now ended: participants who left it unanswered have one more
    # silent week (an answer resets the count, in sms_receive).
    previous_unanswered = list(
        SmsWeek.objects.filter(
            participant_id__in=by_participant, send_date__lt=send_date, answered=0
        )
        .filter(
            # only each participant's latest earlier week
            ~Exists(
                SmsWeek.objects.filter(
                    participant_id=OuterRef("participant_id"),
                    week__gt=OuterRef("week"),
                    send_date__lt=send_date,
                )
            )
        )
        .values_list("participant_id", flat=True)
    )
    if previous_unanswered:
        Participant.objects.filter(pk__in=previous_unanswered).update(
            sms_missed_weeks=F("sms_missed_weeks") + 1
        )
    # Last: the totals' rows are shared with every answer arriving meanwhile.
    sms_totals.weeks_opened([week.pk for week in weeks])
    return len(weeks), len(existing)


def sms_reminders_send(*, trial: Trial, now: dt.datetime | None = None) -> int:
    """Queue one reminder for each current week still unanswered after the delay."""
    config = sms_config(trial)
    if config is None:
        return 0
    now = now or timezone.now()
    cutoff = now - dt.timedelta(hours=config.schedule.reminder_after_hours)
    pending = (
        SmsWeek.objects.filter(
            trial=trial,
            completed_at__isnull=True,
            reminder_sent_at__isnull=True,
            opened_at__lte=cutoff,
            # Still the current week: answers to it are accepted until the next one opens.
            opened_at__gt=now - dt.timedelta(days=7),
        )
        .filter(sms_queries.tracked_q("participant__"))
        .filter(
            ~Exists(
                SmsWeek.objects.filter(
                    participant_id=OuterRef("participant_id"), week__gt=OuterRef("week")
                )
            )
        )
        .order_by("pk")
    )
    sent = 0
    after = 0
    while True:
        batch = list(
            pending.filter(pk__gt=after).values(
                "pk",
                "participant_id",
                "current_question_id",
                "participant__phone",
                "participant__sms_language",
            )[:BATCH_SIZE]
        )
        if not batch:
            break
        after = batch[-1]["pk"]
        sent += _queue_reminders(trial, config, now, batch)
    return sent


@transaction.atomic
def _queue_reminders(trial: Trial, config: SmsConfig, now: dt.datetime, batch: list[dict]) -> int:
    # Claim the weeks first (conditional UPDATE): a concurrent run claims none of the same.
    ids = [row["pk"] for row in batch]
    # The question to re-ask is read under the lock too: a reply committed since the batch
    # was read has moved the week on to its next question.
    claimable = dict(
        SmsWeek.objects.select_for_update()
        .filter(pk__in=ids, reminder_sent_at__isnull=True, completed_at__isnull=True)
        .values_list("pk", "current_question_id")
    )
    if not claimable:
        return 0
    SmsWeek.objects.filter(pk__in=claimable).update(reminder_sent_at=now)
    questions = {q.pk: q for q in config.questions}
    messages = []
    for row in batch:
        if claimable.get(row["pk"]) not in questions:
            continue
        question = questions[claimable[row["pk"]]]
        language = config.language(row["participant__sms_language"])
        messages.append(
            OutboundMessage(
                trial=trial,
                participant_id=row["participant_id"],
                to=row["participant__phone"],
                body=f"{language.reminder} {config.question_text(question, language.code)}",
                kind=Kind.SMS_REMINDER,
                week_id=row["pk"],
                question=question,
            )
        )
    sms_queue_many(messages)
    return len(messages)
