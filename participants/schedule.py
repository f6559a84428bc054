"""Visit dates and visit status, as pure functions of plain values (no Django).

Dates are local calendar dates in the trial's time zone: a participant randomized at
00:30 on 29 March in Copenhagen was randomized on 29 March, although it is still 28 March
in UTC. Offsets and windows are then plain calendar arithmetic on those dates, so a
daylight-saving change cannot move a visit by a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class VisitSpec:
    """A visit definition: `offset_days` after randomization, window [−before, +after]."""

    code: str
    offset_days: int
    window_before: int
    window_after: int


@dataclass(frozen=True)
class PlannedVisit:
    code: str
    target: dt.date
    window_start: dt.date
    window_end: dt.date


# Status names, shared with the Visit model's choices.
UPCOMING = "upcoming"
DUE = "due"
OVERDUE = "overdue"
COMPLETED = "completed"
MISSED = "missed"
NOT_REQUIRED = "not_required"


def local_date(moment: dt.datetime, zone: str) -> dt.date:
    """The calendar date of an aware datetime in the named time zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ScheduleError("need a timezone-aware datetime")
    return moment.astimezone(ZoneInfo(zone)).date()


def plan(randomized_on: dt.date, specs: Iterable[VisitSpec]) -> list[PlannedVisit]:
    """Target date and window of each visit, counted in days from the randomization date."""
    planned = []
    for spec in specs:
        if spec.window_before < 0 or spec.window_after < 0:
            raise ScheduleError(f"{spec.code}: window days cannot be negative")
        target = randomized_on + dt.timedelta(days=spec.offset_days)
        planned.append(
            PlannedVisit(
                code=spec.code,
                target=target,
                window_start=target - dt.timedelta(days=spec.window_before),
                window_end=target + dt.timedelta(days=spec.window_after),
            )
        )
    return planned


def status(
    *,
    today: dt.date,
    window_start: dt.date,
    window_end: dt.date,
    outcome: str,
) -> str:
    """A visit's status on `today` (the trial's local date).

    `outcome` is what has been recorded: "open" (nothing yet), "completed", "missed" or
    "not_required". Open visits are upcoming before the window, due inside it and overdue
    after it, so the status is right on any day without a periodic job.
    """
    if outcome in (COMPLETED, MISSED, NOT_REQUIRED):
        return outcome
    if outcome != "open":
        raise ScheduleError(f"unknown outcome {outcome!r}")
    if today < window_start:
        return UPCOMING
    if today <= window_end:
        return DUE
    return OVERDUE


# Where a day falls against a visit window. The one place the window is compared with a
# date: the in-window flag, what needs confirming and the default visit date all use it.
BEFORE = "before"
INSIDE = "inside"
AFTER = "after"


def window_position(day: dt.date, window_start: dt.date, window_end: dt.date) -> str:
    """BEFORE the window opens, INSIDE it (both ends included) or AFTER it closes."""
    if day < window_start:
        return BEFORE
    if day <= window_end:
        return INSIDE
    return AFTER


def in_window(attended_on: dt.date, window_start: dt.date, window_end: dt.date) -> bool:
    return window_position(attended_on, window_start, window_end) == INSIDE


def attended_early(attended_on: dt.date, window_start: dt.date, window_end: dt.date) -> bool:
    """A visit attended before its window opened: recorded only with a confirmed reason.
    Its data would otherwise enter the analysis of a time point not yet reached (a 1-year
    outcome measured on the day of randomization)."""
    return window_position(attended_on, window_start, window_end) == BEFORE


def missed_early(today: dt.date, window_start: dt.date, window_end: dt.date) -> bool:
    """Recording a visit as missed while its window has not closed (the visit can still
    take place): only with a confirmed reason."""
    return window_position(today, window_start, window_end) != AFTER


def default_visit_date(
    today: dt.date, window_start: dt.date, window_end: dt.date
) -> dt.date | None:
    """The date a visit form suggests: today when today is inside the window, else none
    (a suggested date outside the window is too easily saved unread)."""
    return today if in_window(today, window_start, window_end) else None
