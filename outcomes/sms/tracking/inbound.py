"""An inbound SMS (sms_receive): stored whole, then read as an answer, a clarification, an
opt-out, an opt-in, or only logged. What a reply means is decided by outcomes.sms.sms_reply;
this module locks, reads, calls it and writes."""

from __future__ import annotations

import datetime as dt
import logging

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from outcomes.sms import consent_sms, sms_recipients, sms_reply, sms_rules, sms_totals
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsLanguage, SmsWeek
from outcomes.sms.services import sms_queue
from outcomes.sms.tracking.config import SmsConfig, sms_config
from participants.models import Participant

logger = logging.getLogger(__name__)
Kind = OutboundMessage.Kind


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


def _tracked(participant: Participant) -> bool:
    return sms_recipients.tracked(
        status=participant.status,
        opted_out=participant.sms_opted_out_at is not None,
        phone=participant.phone,
    )
