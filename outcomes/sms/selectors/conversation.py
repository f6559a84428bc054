"""A participant's SMS conversation and SMS status, for the participant's pages; a fixed
number of queries whatever the number of messages (the pages assert it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, OuterRef, Q, Subquery, Value

from outcomes.sms import sms_recipients
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsLanguage, SmsSchedule
from participants.models import Participant

CONVERSATION_PAGE_SIZE = 50

IN = "in"
OUT = "out"


# --- A participant's conversation -------------------------------------------------------------


@dataclass(frozen=True)
class ConversationRow:
    direction: str  # IN (from the participant) or OUT (to the participant)
    at: dt.datetime  # received, or queued
    body: str
    kind: str
    kind_label: str
    status: str = ""  # outbound: queued / sent / failed / cancelled
    status_label: str = ""
    delivery_status: str = ""  # outbound: the gateway's delivery report
    error: str = ""
    sent_at: dt.datetime | None = None
    week: int | None = None
    question: str = ""
    value: int | None = None  # inbound: the number read from the reply
    truncated: bool = False  # stored cut (messages received before bodies were kept whole)
    shown_cut: bool = False  # longer than the page shows (BODY_SHOWN); kept whole


def participant_sms_conversation(
    participant: Participant, page: int | str | None, *, per_page: int = CONVERSATION_PAGE_SIZE
) -> Page:
    """Messages to and from the participant, newest first, one page of `per_page`: four
    queries (count, the page's ids from both tables in one UNION, then each table's rows
    of the page with their week and question)."""
    outbound_ids = (
        OutboundMessage.objects.filter(participant=participant)
        .order_by()
        .annotate(direction=Value(OUT), at=F("created_at"))
        .values_list("direction", "pk", "at")
    )
    inbound_ids = (
        InboundMessage.objects.filter(participant=participant)
        .order_by()
        .annotate(direction=Value(IN), at=F("received_at"))
        .values_list("direction", "pk", "at")
    )
    # Newest first; pk breaks ties within a table, direction between the two tables.
    merged = outbound_ids.union(inbound_ids, all=True).order_by("-at", "-direction", "-pk")
    result = Paginator(merged, per_page).get_page(page)
    keys = [(row[0], row[1]) for row in result.object_list]
    out_ids = [pk for direction, pk in keys if direction == OUT]
    in_ids = [pk for direction, pk in keys if direction == IN]
    outbound = (
        {
            m.pk: m
            for m in OutboundMessage.objects.filter(pk__in=out_ids).select_related(
                "week", "question"
            )
        }
        if out_ids
        else {}
    )
    inbound = (
        {
            m.pk: m
            for m in InboundMessage.objects.filter(pk__in=in_ids).select_related("week", "question")
        }
        if in_ids
        else {}
    )
    result.object_list = [
        _outbound_row(outbound[pk]) if direction == OUT else _inbound_row(inbound[pk])
        for direction, pk in keys
    ]
    return result


def _outbound_row(message: OutboundMessage) -> ConversationRow:
    return ConversationRow(
        direction=OUT,
        at=message.created_at,
        body=message.body,
        kind=message.kind,
        kind_label=message.get_kind_display(),
        status=message.status,
        status_label=message.get_status_display(),
        delivery_status=message.delivery_status,
        error=message.last_error,
        sent_at=message.sent_at,
        week=message.week.week if message.week else None,
        question=message.question.label if message.question else "",
    )


# A reply longer than this is shown cut on the conversation page (with a note); the whole
# text is kept, in the admin and the export.
BODY_SHOWN = 1000


def _inbound_row(message: InboundMessage) -> ConversationRow:
    # A reply when no question was open belongs to no week. (Replies stored before that
    # was fixed may still name the participant's last unanswered week: not shown.)
    no_week = message.kind == InboundMessage.Kind.NO_QUESTION
    return ConversationRow(
        direction=IN,
        at=message.received_at,
        body=message.body[:BODY_SHOWN],
        shown_cut=len(message.body) > BODY_SHOWN,
        kind=message.kind,
        kind_label=message.get_kind_display(),
        week=message.week.week if message.week and not no_week else None,
        question=message.question.label if message.question else "",
        value=message.value,
        truncated=message.body_truncated,
    )


# --- A participant's SMS status (participant page) --------------------------------------------


@dataclass(frozen=True)
class SmsStatus:
    language: str  # the language's name (or code if unknown)
    language_is_default: bool
    opted_out_at: dt.datetime | None
    weeks_sent: int
    weeks_answered: int  # with at least one answer
    weeks_complete: int  # every question answered
    silent_weeks: int  # consecutive finished weeks without an answer

    @property
    def silent(self) -> bool:
        """Silent long enough for the coordinator to call (outcomes.sms.sms_recipients)."""
        return sms_recipients.silent(self.silent_weeks)


def participant_sms_status(participant: Participant) -> SmsStatus:
    """The participant's SMS language, opt-out and weeks answered: one query (the
    participant page has a query budget)."""
    if participant.sms_language:
        code = Value(participant.sms_language)
    else:
        code = Subquery(
            SmsSchedule.objects.filter(trial_id=OuterRef(OuterRef("trial_id"))).values(
                "default_language"
            )[:1]
        )
    row = (
        Participant.objects.filter(pk=participant.pk)
        .annotate(
            language_name=Subquery(
                SmsLanguage.objects.filter(trial_id=OuterRef("trial_id"), code=code).values("name")[
                    :1
                ]
            ),
            weeks_sent=Count("sms_weeks"),
            weeks_answered=Count("sms_weeks", filter=Q(sms_weeks__answered__gt=0)),
            weeks_complete=Count("sms_weeks", filter=Q(sms_weeks__completed_at__isnull=False)),
        )
        .values("language_name", "weeks_sent", "weeks_answered", "weeks_complete")
        .get()
    )
    return SmsStatus(
        language=row["language_name"] or participant.sms_language,
        language_is_default=not participant.sms_language,
        opted_out_at=participant.sms_opted_out_at,
        weeks_sent=row["weeks_sent"],
        weeks_answered=row["weeks_answered"],
        weeks_complete=row["weeks_complete"],
        silent_weeks=participant.sms_missed_weeks,
    )


# --- The weekly response grid -----------------------------------------------------------------
