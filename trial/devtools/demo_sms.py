"""Demo data: a plausible history of the weekly SMS for the demo participants.

Used by `manage.py seed_demo` after the demo participants exist. For each one, the weekly
rounds from randomization up to the current week are written as the services would have
written them (SmsWeek, OutboundMessage sent and delivered, InboundMessage, SmsAnswer,
Participant.sms_missed_weeks), by bulk insert: going through the services week by week
would take minutes for 90 participants × up to 62 weeks. The current week is then opened
by the real weekly job (outcomes.sms.tracking.sms_weekly_send), so it is sent as it would be.

The replies of each week are replayed through the real reading rules (outcomes.sms.sms_rules)
in a small copy of the inbound state machine, so stored kinds, clarifications, reminders and
thank-yous match what outcomes.sms.tracking would have produced for the same replies.

Demo data only: nothing else may write these tables directly.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from outcomes.sms import sms_rules, sms_totals, tracking
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsWeek
from participants.models import Participant, StatusChange
from trial.models import Trial

Kind = OutboundMessage.Kind
In = InboundMessage.Kind

# How the bothersome-days answer falls over the weeks: start × e^(−rate × week) + floor, per
# arm. A modest difference, for the statistician's dashboard to have something to show.
DECLINE_RATE = {"exercise": 0.042, "rest": 0.034}
DEFAULT_DECLINE_RATE = 0.035
# Replies that the rules cannot read (each gets a clarification, as the service would).
UNREADABLE = ("3-4", "nogle dage", "ca. 2 eller 3", "?", "Hvad mener I?", "2,5")
EXTRAS = ("Tak!", "Undskyld, det var 3 dage", "👍")
# Beat runs the weekly job every quarter of an hour and the reminders at 7 past.
JOB_DELAY = dt.timedelta(seconds=40)


@dataclass
class SmsHistory:
    participants: int = 0
    weeks: int = 0
    outbound: int = 0
    inbound: int = 0
    answers: int = 0
    opted_out: int = 0
    opted_in: int = 0
    current_week_opened: int = 0


@dataclass
class _Week:
    """One week being written, with the state the inbound state machine keeps."""

    row: SmsWeek
    limit: dt.datetime  # replies from here on belong to someone else (next week, status)
    events: list[tuple[dt.datetime, str]] = field(default_factory=list)


class _Writer:
    """Collects the rows of every participant's history, then inserts them in bulk."""

    def __init__(self, trial: Trial, config: tracking.SmsConfig, rng: random.Random):
        self.trial = trial
        self.config = config
        self.rng = rng
        self.weeks: list[SmsWeek] = []
        self.outbound: list[OutboundMessage] = []
        self.inbound: list[InboundMessage] = []
        self.answers: list[SmsAnswer] = []

    def gateway_id(self) -> str:
        return f"SM{self.rng.getrandbits(128):032x}"

    def send(self, p: Participant, at: dt.datetime, kind: str, body: str, **links):
        message = OutboundMessage(
            trial=self.trial, participant=p, to=p.phone, body=body, kind=kind,
            status=OutboundMessage.Status.SENT, attempts=1, sent_at=at, next_attempt_at=at,
            last_attempt_at=at, gateway_message_id=self.gateway_id(),
            delivery_status="delivered",
            delivery_updated_at=at + dt.timedelta(seconds=self.rng.randint(2, 40)), **links,
        )  # fmt: skip
        self.outbound.append(message)
        return message

    def receive(self, p: Participant | None, at: dt.datetime, body: str, kind: str, **links):
        message = InboundMessage(
            gateway_message_id=self.gateway_id(), trial=self.trial if p else None,
            participant=p, from_number=p.phone if p else links.pop("from_number"),
            body=body, received_at=at, kind=kind, **links,
        )  # fmt: skip
        self.inbound.append(message)
        return message

    def play_week(self, p: Participant, week: _Week) -> None:
        """Replay the week's replies (and its reminder) as outcomes.sms.tracking would."""
        config, row = self.config, week.row
        questions = {q.pk: q for q in config.questions}
        language = config.language(p.sms_language)
        reminder_at = row.opened_at + dt.timedelta(
            hours=config.schedule.reminder_after_hours, minutes=7
        )
        timeline = [(at, body, False) for at, body in week.events] + [(reminder_at, "", True)]
        for at, body, is_reminder in sorted(timeline, key=lambda event: event[0]):
            if at >= week.limit:
                break
            question = questions.get(row.current_question_id)
            if is_reminder:
                if question is not None:
                    row.reminder_sent_at = at
                    text = f"{language.reminder} {config.question_text(question, language.code)}"
                    self.send(p, at, Kind.SMS_REMINDER, text, week=row, question=question)
                continue
            if question is None:
                self.receive(p, at, body, In.EXTRA, week=row)
                continue
            reading = sms_rules.classify(body, question.min_value, question.max_value)
            if reading.kind != "answer":
                reply = None
                if row.clarifications < config.schedule.max_clarifications:
                    row.clarifications += 1
                    text = language.clarification.format(
                        min=question.min_value, max=question.max_value
                    )
                    reply = self.send(
                        p, at + dt.timedelta(seconds=3), Kind.SMS_CLARIFICATION, text,
                        week=row, question=question,
                    )  # fmt: skip
                self.receive(p, at, body, In.INVALID, week=row, question=question, reply=reply)
                continue
            following = config.next_question(question)
            if following is not None:
                text = config.question_text(following, language.code)
                reply = self.send(
                    p, at + dt.timedelta(seconds=3), Kind.SMS_QUESTION, text,
                    week=row, question=following,
                )  # fmt: skip
            else:
                row.completed_at = at
                reply = self.send(p, at + dt.timedelta(seconds=3), Kind.SMS_THANKS,
                                  language.thanks, week=row)  # fmt: skip
            message = self.receive(
                p, at, body, In.ANSWER, week=row, question=question, value=reading.value,
                reply=reply,
            )  # fmt: skip
            self.answers.append(
                SmsAnswer(
                    trial=self.trial, participant=p, week=row, question=question,
                    value=reading.value, message=message, answered_at=at,
                )
            )  # fmt: skip
            row.answered += 1
            row.current_question = following

    @transaction.atomic
    def save(self) -> None:
        size = 2000
        SmsWeek.objects.bulk_create(self.weeks, batch_size=size)
        OutboundMessage.objects.bulk_create(self.outbound, batch_size=size)
        InboundMessage.objects.bulk_create(self.inbound, batch_size=size)
        SmsAnswer.objects.bulk_create(self.answers, batch_size=size)
        # Bulk-created, so the dashboard's totals are counted here, as a whole.
        sms_totals.rebuild([self.trial.pk])
        # created_at is auto_now_add (the insert's time); a message of the past was queued
        # the moment it was sent.
        OutboundMessage.objects.filter(
            trial=self.trial, kind__in=tracking_kinds(), sent_at__lt=F("created_at")
        ).update(created_at=F("sent_at"))


def tracking_kinds() -> list[str]:
    return [Kind.SMS_QUESTION, Kind.SMS_REMINDER, Kind.SMS_THANKS, Kind.SMS_CLARIFICATION,
            Kind.SMS_OPT_IN]  # fmt: skip


def simulate_sms_history(
    trial: Trial, rng: random.Random, *, now: dt.datetime | None = None
) -> SmsHistory:
    """Write the weekly SMS history of the trial's randomized participants up to `now`,
    then open the current week through the real weekly job. Does nothing for a trial
    without weekly SMS or with SMS weeks already."""
    summary = SmsHistory()
    config = tracking.sms_config(trial)
    if config is None or SmsWeek.objects.filter(trial=trial).exists():
        return summary
    now = now or timezone.now()
    schedule, zone = config.schedule, trial.zone
    current = sms_rules.last_send_date(now, zone, schedule.weekday, schedule.send_time)
    participants = list(
        Participant.objects.filter(trial=trial, randomized_on__isnull=False)
        .exclude(phone="")
        .select_related("allocation__arm")
        .order_by("randomized_on", "pk")
    )
    # Nothing is sent from the day a participant stopped being followed.
    stopped = {}
    for change in StatusChange.objects.filter(
        participant__trial=trial, to_status__in=["withdrawn", "lost", "deceased", "completed"]
    ).order_by("effective_on"):
        stopped.setdefault(change.participant_id, change.effective_on)
    # One or two opt-outs, one of whom opts in again three weeks later.
    long_enough = [
        p for p in participants
        if p.pk not in stopped and (current - p.randomized_on).days > 7 * 16
    ]  # fmt: skip
    chosen = rng.sample(long_enough, min(2, len(long_enough)))
    opt_out = {p.pk: rng.randint(5, 12) for p in chosen}
    opt_in_after = {chosen[0].pk: 3} if chosen else {}

    writer = _Writer(trial, config, rng)
    for p in participants:
        end = stopped.get(p.pk)
        _participant_history(
            writer, p, current=current, now=now,
            end=dt.datetime.combine(end, dt.time(0), tzinfo=zone) if end else None,
            opt_out_week=opt_out.get(p.pk), opt_in_after=opt_in_after.get(p.pk),
        )  # fmt: skip
    # A couple of texts from numbers that are nobody's.
    for number, body in (("+4531234567", "Hej, hvem er det?"), ("+4560606060", "3")):
        day = current - dt.timedelta(days=rng.randint(1, 40))
        writer.receive(
            None, dt.datetime.combine(day, dt.time(rng.randint(8, 21), 13), tzinfo=zone),
            body, In.UNKNOWN_NUMBER, from_number=number,
        )  # fmt: skip
    writer.save()
    Participant.objects.bulk_update(participants, ["sms_missed_weeks", "sms_opted_out_at"])

    summary.participants = len(participants)
    summary.weeks, summary.outbound = len(writer.weeks), len(writer.outbound)
    summary.inbound, summary.answers = len(writer.inbound), len(writer.answers)
    summary.opted_out = sum(p.sms_opted_out_at is not None for p in participants)
    summary.opted_in = len(opt_in_after)
    summary.current_week_opened = tracking.sms_weekly_send(trial=trial, now=now).opened
    return summary


def _participant_history(
    writer: _Writer,
    p: Participant,
    *,
    current: dt.date,
    now: dt.datetime,
    end: dt.datetime | None,
    opt_out_week: int | None,
    opt_in_after: int | None,
) -> None:
    rng, config = writer.rng, writer.config
    schedule, zone = config.schedule, writer.trial.zone
    first_question = config.questions[0]
    arm = p.allocation.arm.code if hasattr(p, "allocation") else ""
    rate = DECLINE_RATE.get(arm, DEFAULT_DECLINE_RATE) * rng.uniform(0.7, 1.3)
    start, floor = rng.uniform(4.0, 6.5), rng.uniform(0.5, 2.0)
    works = rng.random() < 0.6  # sick leave only for those in work
    habit = rng.choices(["steady", "patchy", "fading"], weights=[72, 18, 10])[0]
    ends_late = rng.random() < 0.08  # answers often after the reminder

    days_to_first = (schedule.weekday - p.randomized_on.weekday()) % 7 or 7
    first = p.randomized_on + dt.timedelta(days=days_to_first)
    previous: SmsWeek | None = None
    opted_in_at: dt.datetime | None = None
    resume_week: int | None = None
    p.sms_missed_weeks = 0
    p.sms_opted_out_at = None
    for number in range(1, schedule.weeks + 1):
        send_date = first + dt.timedelta(days=7 * (number - 1))
        if send_date >= current:
            break  # the current week is the real job's
        opened = sms_rules.send_moment(send_date, zone, schedule.send_time) + JOB_DELAY
        if end is not None and opened >= end:
            break
        if p.sms_opted_out_at is not None:
            if resume_week is None or number < resume_week:
                continue
            # START on the Wednesday; the next quarter-hour run opens this week at once.
            opted_in_at = opened + dt.timedelta(days=3, hours=-2)
            writer.receive(
                p, opted_in_at, "START", In.OPT_IN,
                reply=writer.send(p, opted_in_at + dt.timedelta(seconds=3), Kind.SMS_OPT_IN,
                                  config.language(p.sms_language).opted_in),
            )  # fmt: skip
            p.sms_opted_out_at = None
            opened = opted_in_at + dt.timedelta(minutes=11)
        next_open = sms_rules.send_moment(
            send_date + dt.timedelta(days=7), zone, schedule.send_time
        )
        limit = min(next_open, now, end or next_open)
        row = SmsWeek(
            trial=writer.trial, site_id=p.site_id, participant=p, week=number,
            send_date=send_date, opened_at=opened, current_question=first_question,
        )  # fmt: skip
        writer.weeks.append(row)
        language = config.language(p.sms_language)
        writer.send(
            p, opened, Kind.SMS_QUESTION, config.question_text(first_question, language.code),
            week=row, question=first_question,
        )  # fmt: skip
        if previous is not None and previous.answered == 0:
            p.sms_missed_weeks += 1
        week = _Week(row, limit)
        if number == opt_out_week:
            at = opened + dt.timedelta(minutes=rng.randint(5, 300))
            writer.receive(p, at, rng.choice(["STOP", "Stop", "stop!"]), In.OPT_OUT)
            p.sms_opted_out_at = at
            week.limit = min(week.limit, at)
            if opt_in_after:
                resume_week = number + opt_in_after
        else:
            week.events = _replies(rng, number, habit, ends_late, opened, start, floor, rate, works)
        writer.play_week(p, week)
        if row.answered:
            p.sms_missed_weeks = 0
        previous = row


def _replies(
    rng: random.Random,
    number: int,
    habit: str,
    ends_late: bool,
    opened: dt.datetime,
    start: float,
    floor: float,
    rate: float,
    works: bool,
) -> list[tuple[dt.datetime, str]]:
    """What one participant texts back in one week (before the rules read it)."""
    answers = {"steady": 0.94, "patchy": 0.6, "fading": max(0.15, 0.92 - 0.018 * number)}
    if rng.random() > answers[habit]:
        return []
    if ends_late or rng.random() < 0.05:  # after the reminder
        at = opened + dt.timedelta(hours=rng.uniform(24.5, 96))
    else:
        at = opened + dt.timedelta(minutes=rng.choice([rng.uniform(1, 90), rng.uniform(90, 1200)]))
    events = []
    if rng.random() < 0.04:
        events.append((at, rng.choice(UNREADABLE)))
        at += dt.timedelta(minutes=rng.uniform(2, 30))
    mean = start * math.exp(-rate * number) + floor
    bothersome = min(7, max(0, round(rng.gauss(mean, 1.1))))
    events.append((at, _as_text(rng, bothersome)))
    if rng.random() < 0.05:
        return events  # the second question left unanswered
    at += dt.timedelta(minutes=rng.uniform(0.5, 25))
    on_leave = works and rng.random() < 0.25 * math.exp(-0.05 * number) + 0.03
    events.append((at, _as_text(rng, rng.randint(1, 7) if on_leave else 0)))
    if rng.random() < 0.02:
        events.append((at + dt.timedelta(minutes=rng.uniform(1, 60)), rng.choice(EXTRAS)))
    return events


def _as_text(rng: random.Random, value: int) -> str:
    words = ["nul", "en", "to", "tre", "fire", "fem", "seks", "syv"]
    roll = rng.random()
    if roll < 0.85:
        return str(value)
    if roll < 0.93:
        return f"{value} dage"
    return words[value]
