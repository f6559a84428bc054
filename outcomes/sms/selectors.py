"""Reads of the weekly SMS tracking for the pages: a participant's conversation, the weekly
response grid of a site, and the worklist's alerts. Each takes a fixed number of queries
whatever the number of participants or messages (the pages assert it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value, Window
from django.utils import timezone

from outcomes.sms import sms_queries, sms_recipients, sms_rules
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsLanguage, SmsSchedule, SmsWeek
from participants.models import Participant
from trial.models import Trial

CONVERSATION_PAGE_SIZE = 50
GRID_PAGE_SIZE = 50
GRID_COLUMNS = 12
ALERT_LIMIT = 20

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

ALL = "all"
PARTIAL = "partial"
NONE = "none"
OPEN = "open"
NOT_SENT = "not_sent"
OPTED_OUT = "opted_out"

CELL_LABELS = {
    ALL: "All answered",
    PARTIAL: "Partly answered",
    NONE: "No answer",
    OPEN: "Open, not answered yet",
    NOT_SENT: "Not sent",
    OPTED_OUT: "Opted out",
}


def sms_send_dates(
    schedule: SmsSchedule, *, until: dt.date, columns: int = GRID_COLUMNS
) -> list[dt.date]:
    """The `columns` send days of the schedule up to `until` (inclusive), oldest first."""
    last = until - dt.timedelta(days=(until.weekday() - schedule.weekday) % 7)
    return [last - dt.timedelta(days=7 * k) for k in reversed(range(columns))]


def sms_current_send_date(trial: Trial, schedule: SmsSchedule, now: dt.datetime) -> dt.date:
    """The latest send day whose send time has passed (the week now open)."""
    return sms_rules.last_send_date(now, trial.zone, schedule.weekday, schedule.send_time)


@dataclass(frozen=True)
class GridCell:
    state: str  # ALL, PARTIAL, NONE, NOT_SENT or OPTED_OUT
    week: int | None = None
    answered: int = 0

    @property
    def label(self) -> str:
        return CELL_LABELS[self.state]


@dataclass(frozen=True)
class GridRow:
    participant: Participant
    cells: list[GridCell]

    @property
    def silent(self) -> bool:
        """Silent long enough for the coordinator to call (outcomes.sms.sms_recipients)."""
        return sms_recipients.silent(self.participant.sms_missed_weeks)


@dataclass(frozen=True)
class GridColumn:
    send_date: dt.date
    sent: int
    answered: int  # weeks with at least one answer
    complete: int

    @property
    def rate(self) -> float | None:
        """Share of the weeks sent that got at least one answer."""
        return self.answered / self.sent if self.sent else None


@dataclass
class Grid:
    columns: list[GridColumn]
    page: Page
    rows: list[GridRow] = field(default_factory=list)


def sms_grid_participants(
    trial: Trial, sites, schedule: SmsSchedule, send_dates: list[dt.date]
) -> QuerySet[Participant]:
    """Randomized participants of the sites with at least one of their SMS weeks among the
    columns, by site and number."""
    first, last = send_dates[0], send_dates[-1]
    return (
        Participant.objects.filter(
            trial=trial,
            site__in=sites,
            randomized_on__gte=first - dt.timedelta(days=7 * schedule.weeks),
            randomized_on__lt=last,
        )
        .select_related("site")
        .only(
            "pk",
            "number",
            "status",
            "site__code",
            "randomized_on",
            "sms_opted_out_at",
            "sms_missed_weeks",
        )
        .order_by("site__code", "number", "pk")
    )


def sms_week_grid(
    trial: Trial,
    sites,
    schedule: SmsSchedule,
    send_dates: list[dt.date],
    page: int | str | None,
    *,
    per_page: int = GRID_PAGE_SIZE,
) -> Grid:
    """Who answered which week: one row per participant (a page of them), one column per
    send date. Four queries: the participants' count and page, their weeks in the column
    range, and the response rate per column over all the sites' participants (the last
    two read SmsWeek through its (trial, send_date, site) index)."""
    result = Paginator(
        sms_grid_participants(trial, sites, schedule, send_dates), per_page
    ).get_page(page)
    participants = list(result.object_list)
    open_day = sms_current_send_date(trial, schedule, timezone.now())
    in_columns = SmsWeek.objects.filter(
        trial=trial, send_date__gte=send_dates[0], send_date__lte=send_dates[-1], site__in=sites
    )
    weeks = (
        {
            (w["participant_id"], w["send_date"]): w
            for w in in_columns.filter(participant_id__in=[p.pk for p in participants]).values(
                "participant_id", "send_date", "week", "answered", "completed_at"
            )
        }
        if participants
        else {}
    )
    rates = {
        row["send_date"]: row
        for row in in_columns.order_by()
        .values("send_date")
        .annotate(
            sent=Count("pk"),
            answered=Count("pk", filter=Q(answered__gt=0)),
            complete=Count("pk", filter=Q(completed_at__isnull=False)),
        )
    }
    columns = [
        GridColumn(
            send_date=day,
            sent=rates.get(day, {}).get("sent", 0),
            answered=rates.get(day, {}).get("answered", 0),
            complete=rates.get(day, {}).get("complete", 0),
        )
        for day in send_dates
    ]
    rows = []
    for participant in participants:
        opted_out_on = (
            timezone.localtime(participant.sms_opted_out_at, trial.zone).date()
            if participant.sms_opted_out_at
            else None
        )
        rows.append(
            GridRow(
                participant,
                [
                    _cell(weeks.get((participant.pk, day)), day, opted_out_on, open_day)
                    for day in send_dates
                ],
            )
        )
    result.object_list = rows
    return Grid(columns=columns, page=result, rows=rows)


def _cell(
    week: dict | None, day: dt.date, opted_out_on: dt.date | None, open_day: dt.date
) -> GridCell:
    if week is None:
        if opted_out_on is not None and opted_out_on <= day:
            return GridCell(OPTED_OUT)
        return GridCell(NOT_SENT)
    if week["completed_at"] is not None:
        state = ALL
    elif week["answered"]:
        state = PARTIAL
    else:
        # This week still takes answers until the next send day: not yet a missed week.
        state = OPEN if day == open_day else NONE
    return GridCell(state, week=week["week"], answered=week["answered"])


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
