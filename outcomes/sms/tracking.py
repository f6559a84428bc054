"""Weekly two-way SMS tracking: one service per change of state.

    sms_weekly_send      the week's first question to every participant due (batched job)
    sms_reminders_send   one reminder for a week still unanswered after the delay (job)
    sms_receive          an inbound SMS: answer, clarification, opt-out, opt-in, or just logged

The rules of reading a reply and of the calendar are pure (outcomes.sms.sms_rules). Every outgoing
message goes through the outbox (outcomes.sms.services), so it is stored before it is sent and
the database's unique constraints allow one question, one reminder and one thank-you per
participant and week whatever a re-run does.

Who gets messages: the participants outcomes.sms.sms_recipients calls tracked (the rule, with
its query twin in outcomes.sms.sms_queries). The check is repeated when each message is sent
(outcomes.sms.services.sms_send_now), so an opt-out in between still counts.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from outcomes.sms import consent_sms, sms_queries, sms_recipients, sms_reply, sms_rules, sms_totals
from outcomes.sms.models import (
    InboundMessage,
    OutboundMessage,
    SmsAnswer,
    SmsLanguage,
    SmsQuestion,
    SmsQuestionText,
    SmsSchedule,
    SmsWeek,
)
from outcomes.sms.services import sms_queue, sms_queue_many
from participants.models import Participant
from trial.models import Trial

logger = logging.getLogger(__name__)
Kind = OutboundMessage.Kind

# Participants read and written per transaction by the weekly job: memory and lock time
# stay bounded however large the trial.
BATCH_SIZE = 1000


# --- Configuration, loaded once per job or reply ---------------------------------------------


@dataclass(frozen=True)
class SmsConfig:
    schedule: SmsSchedule
    questions: list[SmsQuestion]
    languages: dict[str, SmsLanguage]
    # {(question id, language code): text}
    texts: dict[tuple[int, str], str]
    zone: ZoneInfo

    def language(self, code: str) -> SmsLanguage:
        return self.languages.get(code) or self.languages[self.schedule.default_language]

    def question_text(self, question: SmsQuestion, language_code: str) -> str:
        code = self.language(language_code).code
        return (
            self.texts.get((question.pk, code))
            or self.texts[(question.pk, self.schedule.default_language)]
        )

    def next_question(self, question: SmsQuestion) -> SmsQuestion | None:
        ids = [q.pk for q in self.questions]
        position = ids.index(question.pk)
        return self.questions[position + 1] if position + 1 < len(ids) else None

    @cached_property
    def reply_rules(self) -> sms_reply.TrialSms:
        """What outcomes.sms.sms_reply needs of the configuration (kept with the cached config)."""
        return sms_reply.TrialSms(
            zone=self.zone,
            send_time=self.schedule.send_time,
            max_clarifications=self.schedule.max_clarifications,
            questions=tuple(
                sms_reply.Question(q.pk, q.min_value, q.max_value) for q in self.questions
            ),
        )


# Every inbound reply needs the configuration, which changes rarely (in the admin): each
# process keeps it CONFIG_TTL seconds. A change saved in this process clears it at once
# (outcomes.apps connects clear_sms_config_cache to the configuration models' signals);
# other processes see it within CONFIG_TTL. Without this, reading it was a quarter of the
# work of a reply (docs/PERFORMANCE.md).
CONFIG_TTL = 60.0
_config_cache: dict[int, tuple[float, SmsConfig | None]] = {}


def sms_config(trial: Trial | int) -> SmsConfig | None:
    """The trial's SMS configuration, or None when it has no usable one (no schedule,
    disabled, no questions, or the default language missing)."""
    trial_id = trial if isinstance(trial, int) else trial.pk
    now = time.monotonic()
    cached = _config_cache.get(trial_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    config = _load_config(trial_id)
    _config_cache[trial_id] = (now + CONFIG_TTL, config)
    return config


def clear_sms_config_cache(**kwargs) -> None:
    _config_cache.clear()


def _load_config(trial_id: int) -> SmsConfig | None:
    schedule = SmsSchedule.objects.filter(trial_id=trial_id, enabled=True).first()
    if schedule is None:
        return None
    questions = list(SmsQuestion.objects.filter(trial_id=trial_id).order_by("order", "pk"))
    languages = {lang.code: lang for lang in SmsLanguage.objects.filter(trial_id=trial_id)}
    texts = {
        (t.question_id, t.language.code): t.text
        for t in SmsQuestionText.objects.filter(question__trial_id=trial_id).select_related(
            "language"
        )
    }
    if not questions or schedule.default_language not in languages:
        return None
    if any((q.pk, schedule.default_language) not in texts for q in questions):
        return None
    zone = Trial.objects.only("time_zone").get(pk=trial_id).zone
    return SmsConfig(schedule, questions, languages, texts, zone)


def _tracked(participant: Participant) -> bool:
    return sms_recipients.tracked(
        status=participant.status,
        opted_out=participant.sms_opted_out_at is not None,
        phone=participant.phone,
    )


# --- The weekly job ---------------------------------------------------------------------------


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


# --- Inbound messages -------------------------------------------------------------------------


def sms_receive(
    *,
    gateway_message_id: str,
    from_number: str,
    body: str,
    to_number: str = "",
    received_at: dt.datetime | None = None,
) -> tuple[InboundMessage, bool]:
    """Store and act on one inbound SMS. Idempotent on the gateway's message id: a
    redelivery returns the stored message and does nothing again. Returns (message, new).

    The message id's unique constraint finds a redelivery: its INSERT fails and the
    transaction is rolled back, so a first delivery (nearly all of them) costs no lookup."""
    try:
        with transaction.atomic():
            return _receive(
                gateway_message_id=gateway_message_id,
                from_number=from_number,
                body=body,
                to_number=to_number,
                received_at=received_at or timezone.now(),
            ), True
    except IntegrityError:
        # A redelivery, or the same message delivered twice at once: stored already.
        existing = InboundMessage.objects.filter(gateway_message_id=gateway_message_id).first()
        if existing is None:
            raise
        return existing, False


def _e164(number: str) -> str | None:
    try:
        parsed = phonenumbers.parse((number or "").strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _receive(
    *, gateway_message_id: str, from_number: str, body: str, to_number: str, received_at
) -> InboundMessage:
    # PostgreSQL text cannot hold NUL; such a character is kept as U+FFFD, never refused.
    raw = (body or "").replace("\x00", "\ufffd")
    from_number = (from_number or "").replace("\x00", "\ufffd")
    to_number = (to_number or "").replace("\x00", "\ufffd")
    message = InboundMessage.objects.create(
        gateway_message_id=gateway_message_id,
        from_number=(from_number or "")[:64],
        to_number=(to_number or "")[:64],
        # Whole, however long (the request size limit bounds it): the participant's own
        # words are never refused or cut; pages cut them for display only.
        body=raw,
        received_at=received_at,
        kind=InboundMessage.Kind.UNKNOWN_NUMBER,
    )
    number = _e164(from_number)
    # Lock every participant with this number: replies from one phone are handled one at a
    # time, so two quick answers cannot both answer the same question.
    candidates = (
        list(
            Participant.objects.select_for_update()
            .filter(phone=number)
            .order_by(F("randomized_at").desc(nulls_last=True), "-pk")
        )
        if number
        else []
    )
    if not candidates:
        logger.info("SMS %s from an unknown number; logged, no reply", gateway_message_id)
        return message

    word = sms_rules.keyword(raw)
    if word == "opt_out":
        return _opt_out(message, candidates, received_at)
    if word == "opt_in":
        return _opt_in(message, candidates)
    weeks = _current_weeks(candidates)
    configs = {trial_id: sms_config(trial_id) for trial_id in {p.trial_id for p in candidates}}
    decision = sms_reply.decide_reply(
        body=raw,
        candidates=[
            sms_reply.Candidate(p.pk, p.trial_id, _tracked(p), p.sms_missed_weeks)
            for p in candidates
        ],
        weeks=[
            sms_reply.CurrentWeek(
                w.pk, w.participant_id, w.send_date, w.current_question_id, w.answered,
                w.clarifications,
            )
            for w in weeks
        ],
        trials={pk: config and config.reply_rules for pk, config in configs.items()},
        at=received_at,
    )  # fmt: skip
    participant = next(p for p in candidates if p.pk == decision.participant_id)
    week = next((w for w in weeks if w.pk == decision.week_id), None)
    return _apply_reply(
        message, decision, participant, week, configs[participant.trial_id], received_at
    )


def _current_weeks(candidates: list[Participant]) -> list[SmsWeek]:
    """The latest week of each participant, locked, most recently opened first."""
    return list(
        SmsWeek.objects.select_for_update()
        .filter(participant__in=candidates)
        .filter(
            ~Exists(
                SmsWeek.objects.filter(
                    participant_id=OuterRef("participant_id"), week__gt=OuterRef("week")
                )
            )
        )
        .order_by("-opened_at", "-week")
    )


def _apply_reply(
    message: InboundMessage,
    decision: sms_reply.ReplyDecision,
    participant: Participant,
    week: SmsWeek | None,
    config: SmsConfig | None,
    received_at: dt.datetime,
) -> InboundMessage:
    """Write what outcomes.sms.sms_reply decided: the message's kind and links, a clarification
    or the answer with the next question or the thank-you."""
    message.participant = participant
    message.trial_id = participant.trial_id
    if week is None:
        return _save(message, decision.kind)
    message.week = week
    if decision.question_id is None:
        return _save(message, decision.kind)
    question = next(q for q in config.questions if q.pk == decision.question_id)
    message.question = question
    language = config.language(participant.sms_language)
    if decision.kind == InboundMessage.Kind.INVALID:
        if decision.clarify:
            week.clarifications += 1
            week.save(update_fields=["clarifications"])
            message.reply = sms_queue(
                participant=participant,
                body=language.clarification.format(min=question.min_value, max=question.max_value),
                kind=Kind.SMS_CLARIFICATION,
                week_id=week.pk,
                question_id=question.pk,
            )
        return _save(message, InboundMessage.Kind.INVALID)
    return _record_answer(message, decision, participant, week, config, language, received_at)


def _record_answer(
    message: InboundMessage,
    decision: sms_reply.ReplyDecision,
    participant: Participant,
    week: SmsWeek,
    config: SmsConfig,
    language: SmsLanguage,
    received_at: dt.datetime,
) -> InboundMessage:
    question = message.question
    message.value = decision.value
    SmsAnswer.objects.create(
        trial_id=participant.trial_id,
        participant=participant,
        week=week,
        question=question,
        value=decision.value,
        message=message,
        answered_at=received_at,
    )
    if decision.reset_missed:
        Participant.objects.filter(pk=participant.pk).update(sms_missed_weeks=0)
    following = next((q for q in config.questions if q.pk == decision.next_question_id), None)
    week.answered += 1
    week.current_question = following
    if following is None:
        week.completed_at = received_at
    week.save(update_fields=["answered", "current_question", "completed_at"])
    if following is not None:
        reply = sms_queue(
            participant=participant,
            body=config.question_text(following, language.code),
            kind=Kind.SMS_QUESTION,
            week_id=week.pk,
            question_id=following.pk,
        )
    else:
        reply = sms_queue(
            participant=participant, body=language.thanks, kind=Kind.SMS_THANKS, week_id=week.pk
        )
    message.reply = reply
    _save(message, InboundMessage.Kind.ANSWER)
    # The last statements before COMMIT: the totals' rows are shared by every participant
    # in the same week and arm, and stay locked until then.
    sms_totals.answer_recorded(
        trial_id=participant.trial_id,
        participant_id=participant.pk,
        question_id=question.pk,
        week=week.week,
        value=decision.value,
        first_of_week=decision.first_of_week,
        completes_week=following is None,
    )
    return message


def _save(message: InboundMessage, kind: str) -> InboundMessage:
    message.kind = kind
    message.save()
    return message


def _opt_out(message: InboundMessage, candidates: list[Participant], now) -> InboundMessage:
    """STOP: every participant with this number stops getting messages at once; queued
    ones are cancelled. No confirmation is sent (nothing more is sent after an opt-out; the
    gateway's own STOP handling may confirm). Coordinators see it on the worklist."""
    consent_sms.sms_opt_out(
        participants=candidates, at=now, change_reason="Opted out of SMS by reply"
    )
    first = candidates[0]
    message.participant = first
    message.trial_id = first.trial_id
    return _save(message, InboundMessage.Kind.OPT_OUT)


def _opt_in(message: InboundMessage, candidates: list[Participant]) -> InboundMessage:
    """START: opted-out participants with this number get messages again; a confirmation
    goes to each who is still followed (active)."""
    reply = None
    consent_sms.sms_opt_in(participants=candidates, change_reason="Opted back in to SMS by reply")
    for participant in candidates:
        if reply is None and _tracked(participant):
            config = sms_config(participant.trial_id)
            if config is not None:
                reply = sms_queue(
                    participant=participant,
                    body=config.language(participant.sms_language).opted_in,
                    kind=Kind.SMS_OPT_IN,
                )
    first = candidates[0]
    message.participant = first
    message.trial_id = first.trial_id
    message.reply = reply
    return _save(message, InboundMessage.Kind.OPT_IN)
