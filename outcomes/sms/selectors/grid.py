"""The weekly response grid of a site: one row per participant, one column per send date;
a fixed number of queries whatever the number of participants (the page asserts it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from outcomes.sms import sms_recipients, sms_rules
from outcomes.sms.models import SmsSchedule, SmsWeek
from participants.models import Participant
from trial.models import Trial

GRID_PAGE_SIZE = 50
GRID_COLUMNS = 12

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
