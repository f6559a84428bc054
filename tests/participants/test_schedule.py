"""Tests of participants.schedule: visit dates, windows and status, in the trial's local time.

The module is pure Python, so these tests touch no database. Dates around the 2026 European
daylight-saving changes are checked by hand; the rest is stated as properties.
"""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from participants import schedule
from participants.schedule import (
    COMPLETED,
    DUE,
    MISSED,
    NOT_REQUIRED,
    OVERDUE,
    UPCOMING,
    PlannedVisit,
    ScheduleError,
    VisitSpec,
    in_window,
    local_date,
    plan,
    status,
)

CPH = "Europe/Copenhagen"
CPH_ZONE = ZoneInfo(CPH)
UTC = dt.UTC

# The Modic trial's follow-up schedule (as in trial/devtools/demo.py).
MODIC = [
    VisitSpec("baseline", 0, 0, 0),
    VisitSpec("w10", 70, 7, 21),
    VisitSpec("y1", 434, 14, 42),
]

FAST = settings(max_examples=200, deadline=None)

dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31))
offsets = st.integers(min_value=0, max_value=1000)
window_days = st.integers(min_value=0, max_value=100)
codes = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
specs = st.builds(
    VisitSpec, code=codes, offset_days=offsets, window_before=window_days, window_after=window_days
)
# Hypothesis takes naive bounds for datetimes() and attaches the zone itself.
EARLIEST = dt.datetime(2000, 1, 1)  # noqa: DTZ001
LATEST = dt.datetime(2100, 12, 31, 23, 59, 59)  # noqa: DTZ001
utc_moments = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=st.just(UTC))
RECORDED = [COMPLETED, MISSED, NOT_REQUIRED]
OPEN_ORDER = {UPCOMING: 0, DUE: 1, OVERDUE: 2}


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def by_code(planned: list[PlannedVisit]) -> dict[str, PlannedVisit]:
    return {p.code: p for p in planned}


@st.composite
def windows(draw):
    """A window [start, end] with start <= end, as plan() produces."""
    start = draw(dates)
    end = start + days(draw(st.integers(min_value=0, max_value=200)))
    return start, end


# --- 1. The Modic schedule, checked by hand ----------------------------------------------


def test_a_modic_participant_randomized_on_15_january_2026_has_a_same_day_baseline():
    baseline = by_code(plan(dt.date(2026, 1, 15), MODIC))["baseline"]
    assert baseline == PlannedVisit(
        "baseline", dt.date(2026, 1, 15), dt.date(2026, 1, 15), dt.date(2026, 1, 15)
    )


def test_a_modic_participant_randomized_on_15_january_2026_is_seen_at_10_weeks_on_26_march():
    # 15 Jan + 70 days: 16 days to 31 Jan, 28 to 28 Feb (44), 26 more to 26 Mar (70).
    # Window: 26 Mar - 7 = 19 Mar; 26 Mar + 21 = 16 Apr.
    w10 = by_code(plan(dt.date(2026, 1, 15), MODIC))["w10"]
    assert w10 == PlannedVisit(
        "w10", dt.date(2026, 3, 26), dt.date(2026, 3, 19), dt.date(2026, 4, 16)
    )


def test_a_modic_participant_randomized_on_15_january_2026_is_seen_at_1_year_on_25_march_2027():
    # 15 Jan 2026 + 434 days: 2026 is not a leap year, so +365 days is 15 Jan 2027; the other
    # 69 days are 16 to 31 Jan, 28 to 28 Feb (44), 25 more to 25 Mar 2027 (69).
    # Window: 25 Mar - 14 = 11 Mar 2027; 25 Mar + 42 = 25 Mar + 6 (31 Mar) + 30 (30 Apr)
    # + 6 = 6 May 2027.
    y1 = by_code(plan(dt.date(2026, 1, 15), MODIC))["y1"]
    assert y1 == PlannedVisit("y1", dt.date(2027, 3, 25), dt.date(2027, 3, 11), dt.date(2027, 5, 6))


def test_a_plan_from_a_date_in_the_spring_dst_week_is_still_offset_exact():
    # Randomized Friday 27 Mar 2026, two days before clocks go forward: + 70 days =
    # 4 more days to 31 Mar, 30 to 30 Apr (34), 31 to 31 May (65), 5 more to 5 Jun (70).
    w10 = by_code(plan(dt.date(2026, 3, 27), MODIC))["w10"]
    assert w10.target == dt.date(2026, 6, 5)
    assert (w10.window_start, w10.window_end) == (dt.date(2026, 5, 29), dt.date(2026, 6, 26))


def test_a_plan_from_the_autumn_dst_day_is_still_offset_exact():
    # Randomized Sunday 25 Oct 2026 (clocks go back): + 70 days = 6 to 31 Oct, 30 to 30 Nov
    # (36), 31 to 31 Dec (67), 3 more to 3 Jan 2027 (70).
    assert by_code(plan(dt.date(2026, 10, 25), MODIC))["w10"].target == dt.date(2027, 1, 3)


def test_a_randomization_shortly_after_local_midnight_on_the_spring_dst_day_plans_from_that_day():
    # 00:30 local on 29 Mar 2026 is still 28 Mar in UTC; the schedule counts from 29 Mar.
    randomized_at = dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    planned = by_code(plan(local_date(randomized_at, CPH), MODIC))
    assert planned["baseline"].target == dt.date(2026, 3, 29)
    assert planned["w10"].target == dt.date(2026, 6, 7)


# --- 2. Properties of plan() -------------------------------------------------------------


@FAST
@given(randomized_on=dates, spec=specs)
def test_the_target_lies_inside_its_own_window(randomized_on, spec):
    (visit,) = plan(randomized_on, [spec])
    assert visit.window_start <= visit.target <= visit.window_end


@FAST
@given(randomized_on=dates, spec=specs)
def test_the_target_is_exactly_offset_days_after_randomization(randomized_on, spec):
    (visit,) = plan(randomized_on, [spec])
    assert (visit.target - randomized_on).days == spec.offset_days


@FAST
@given(randomized_on=dates, spec=specs)
def test_the_window_extends_exactly_before_and_after_days_around_the_target(randomized_on, spec):
    (visit,) = plan(randomized_on, [spec])
    assert (visit.target - visit.window_start).days == spec.window_before
    assert (visit.window_end - visit.target).days == spec.window_after
    assert (visit.window_end - visit.window_start).days == spec.window_before + spec.window_after


@FAST
@given(randomized_on=dates, many=st.lists(specs, max_size=8))
def test_plan_keeps_the_order_and_codes_of_the_specs(randomized_on, many):
    planned = plan(randomized_on, many)
    assert [p.code for p in planned] == [s.code for s in many]
    assert planned == [plan(randomized_on, [s])[0] for s in many]


@FAST
@given(randomized_on=dates, many=st.lists(specs, max_size=8))
def test_plan_accepts_any_iterable_of_specs(randomized_on, many):
    assert plan(randomized_on, iter(many)) == plan(randomized_on, many)


def test_plan_of_no_specs_is_an_empty_list():
    assert plan(dt.date(2026, 1, 15), []) == []


@FAST
@given(
    randomized_on=dates,
    spec=specs,
    negative=st.integers(min_value=-100, max_value=-1),
    side=st.sampled_from(["window_before", "window_after", "both"]),
)
def test_a_negative_window_raises_a_schedule_error(randomized_on, spec, negative, side):
    if side in ("window_before", "both"):
        spec = VisitSpec(spec.code, spec.offset_days, negative, spec.window_after)
    if side in ("window_after", "both"):
        spec = VisitSpec(spec.code, spec.offset_days, spec.window_before, negative)
    with pytest.raises(ScheduleError, match="cannot be negative"):
        plan(randomized_on, [VisitSpec("ok", 0, 0, 0), spec])


def test_a_schedule_error_is_a_value_error():
    assert issubclass(ScheduleError, ValueError)


# --- 3. status() -------------------------------------------------------------------------


@FAST
@given(window=windows(), today=dates)
def test_an_open_visit_is_exactly_one_of_upcoming_due_or_overdue(window, today):
    start, end = window
    result = status(today=today, window_start=start, window_end=end, outcome="open")
    expected = [
        name
        for name, holds in [
            (UPCOMING, today < start),
            (DUE, start <= today <= end),
            (OVERDUE, today > end),
        ]
        if holds
    ]
    assert expected == [result]


@FAST
@given(window=windows(), day1=dates, day2=dates)
def test_an_open_visit_status_only_moves_forward_as_today_increases(window, day1, day2):
    start, end = window
    earlier, later = sorted([day1, day2])
    before = status(today=earlier, window_start=start, window_end=end, outcome="open")
    after = status(today=later, window_start=start, window_end=end, outcome="open")
    assert OPEN_ORDER[before] <= OPEN_ORDER[after]


@FAST
@given(window=windows())
def test_an_open_visit_walks_upcoming_due_overdue_day_by_day_without_going_back(window):
    start, end = window
    seen = [
        status(today=start + days(i), window_start=start, window_end=end, outcome="open")
        for i in range(-3, (end - start).days + 4)
    ]
    # Collapse runs: the sequence of distinct states must be exactly the three, in order.
    runs = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert runs == [UPCOMING, DUE, OVERDUE]


@FAST
@given(window=windows())
def test_an_open_visit_changes_status_exactly_at_the_window_boundaries(window):
    start, end = window

    def on(today):
        return status(today=today, window_start=start, window_end=end, outcome="open")

    assert on(start - days(1)) == UPCOMING
    assert on(start) == DUE
    assert on(end) == DUE
    assert on(end + days(1)) == OVERDUE


def test_the_modic_10_week_visit_status_on_hand_picked_days():
    w10 = by_code(plan(dt.date(2026, 1, 15), MODIC))["w10"]

    def on(today):
        return status(
            today=today, window_start=w10.window_start, window_end=w10.window_end, outcome="open"
        )

    assert on(dt.date(2026, 3, 18)) == UPCOMING
    assert on(dt.date(2026, 3, 19)) == DUE
    assert on(dt.date(2026, 4, 16)) == DUE
    assert on(dt.date(2026, 4, 17)) == OVERDUE


def test_a_one_day_window_is_due_on_that_day_only():
    day = dt.date(2026, 1, 15)
    assert status(today=day, window_start=day, window_end=day, outcome="open") == DUE
    assert status(today=day - days(1), window_start=day, window_end=day, outcome="open") == UPCOMING
    assert status(today=day + days(1), window_start=day, window_end=day, outcome="open") == OVERDUE


@FAST
@given(window=windows(), today=dates, outcome=st.sampled_from(RECORDED))
def test_a_recorded_outcome_is_the_status_whatever_today_is(window, today, outcome):
    start, end = window
    assert status(today=today, window_start=start, window_end=end, outcome=outcome) == outcome


@pytest.mark.parametrize(
    "outcome", ["", "Open", "OPEN", "done", "Completed", "upcoming", "due", "overdue", " open"]
)
def test_an_unknown_outcome_raises_a_schedule_error(outcome):
    day = dt.date(2026, 1, 15)
    with pytest.raises(ScheduleError, match="unknown outcome"):
        status(today=day, window_start=day, window_end=day, outcome=outcome)


@FAST
@given(
    window=windows(),
    today=dates,
    outcome=st.text(max_size=12).filter(lambda s: s not in {"open", *RECORDED}),
)
def test_any_other_outcome_raises_a_schedule_error(window, today, outcome):
    start, end = window
    with pytest.raises(ScheduleError):
        status(today=today, window_start=start, window_end=end, outcome=outcome)


def test_status_takes_keyword_arguments_only():
    day = dt.date(2026, 1, 15)
    with pytest.raises(TypeError):
        status(day, day, day, "open")  # type: ignore[misc]


# --- 4. Local dates, time zones and daylight saving --------------------------------------


def test_23_30_utc_on_28_march_2026_is_29_march_in_copenhagen():
    # Still CET (UTC+1) at that instant: local time is 00:30 on the 29th.
    assert local_date(dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC), CPH) == dt.date(2026, 3, 29)


def test_00_30_local_on_the_spring_dst_day_just_before_the_change_is_that_day():
    moment = dt.datetime(2026, 3, 29, 0, 30, tzinfo=CPH_ZONE)
    assert moment.astimezone(UTC) == dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    assert local_date(moment, CPH) == dt.date(2026, 3, 29)


def test_randomizations_either_side_of_midnight_before_spring_forward_fall_on_consecutive_days():
    late = dt.datetime(2026, 3, 28, 23, 59, tzinfo=CPH_ZONE)  # 22:59 UTC, CET
    early = dt.datetime(2026, 3, 29, 0, 1, tzinfo=CPH_ZONE)  # 23:01 UTC, CET
    assert local_date(late, CPH) == dt.date(2026, 3, 28)
    assert local_date(early, CPH) == dt.date(2026, 3, 29)
    assert local_date(early, CPH) - local_date(late, CPH) == days(1)


def test_moments_either_side_of_the_spring_forward_gap_are_the_same_day():
    # 01:59 CET (00:59 UTC) and, a minute later, 03:00 CEST (01:00 UTC).
    before = dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    after = dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert after.astimezone(CPH_ZONE).hour == 3
    assert local_date(before, CPH) == local_date(after, CPH) == dt.date(2026, 3, 29)


def test_just_after_local_midnight_on_the_first_summer_night_is_the_next_day():
    # 30 Mar 2026 00:05 CEST is 22:05 UTC on the 29th.
    assert local_date(dt.datetime(2026, 3, 29, 22, 5, tzinfo=UTC), CPH) == dt.date(2026, 3, 30)
    assert local_date(dt.datetime(2026, 3, 29, 21, 55, tzinfo=UTC), CPH) == dt.date(2026, 3, 29)


def test_randomizations_either_side_of_midnight_before_fall_back_fall_on_consecutive_days():
    late = dt.datetime(2026, 10, 24, 23, 59, tzinfo=CPH_ZONE)  # 21:59 UTC, CEST
    early = dt.datetime(2026, 10, 25, 0, 1, tzinfo=CPH_ZONE)  # 22:01 UTC on the 24th, CEST
    assert early.astimezone(UTC).date() == dt.date(2026, 10, 24)
    assert local_date(late, CPH) == dt.date(2026, 10, 24)
    assert local_date(early, CPH) == dt.date(2026, 10, 25)


@pytest.mark.parametrize("fold", [0, 1])
def test_the_repeated_02_30_on_the_autumn_dst_day_is_25_october_both_times(fold):
    moment = dt.datetime(2026, 10, 25, 2, 30, tzinfo=CPH_ZONE, fold=fold)
    # fold=0 is the first 02:30 (CEST, 00:30 UTC), fold=1 the second (CET, 01:30 UTC).
    expected_utc = dt.datetime(2026, 10, 25, 0 + fold, 30, tzinfo=UTC)
    assert moment.astimezone(UTC) == expected_utc
    assert local_date(moment, CPH) == dt.date(2026, 10, 25)
    assert local_date(expected_utc, CPH) == dt.date(2026, 10, 25)


def test_just_before_local_midnight_in_winter_is_that_local_day():
    # 23:55 CET on 15 Jan 2026 is 22:55 UTC: both calendars say the 15th.
    assert local_date(dt.datetime(2026, 1, 15, 22, 55, tzinfo=UTC), CPH) == dt.date(2026, 1, 15)


def test_just_after_local_midnight_in_winter_is_the_next_local_day_not_the_utc_day():
    # 00:05 CET on 16 Jan 2026 is 23:05 UTC on the 15th: the local date wins.
    moment = dt.datetime(2026, 1, 15, 23, 5, tzinfo=UTC)
    assert moment.date() == dt.date(2026, 1, 15)
    assert local_date(moment, CPH) == dt.date(2026, 1, 16)


def test_just_after_local_midnight_in_summer_is_the_next_local_day_not_the_utc_day():
    # 00:05 CEST on 16 Jul 2026 is 22:05 UTC on the 15th.
    assert local_date(dt.datetime(2026, 7, 15, 22, 5, tzinfo=UTC), CPH) == dt.date(2026, 7, 16)
    assert local_date(dt.datetime(2026, 7, 15, 21, 55, tzinfo=UTC), CPH) == dt.date(2026, 7, 15)


def test_local_date_uses_the_zone_it_is_given():
    moment = dt.datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    assert local_date(moment, "UTC") == dt.date(2026, 1, 15)
    assert local_date(moment, CPH) == dt.date(2026, 1, 16)
    assert local_date(moment, "America/New_York") == dt.date(2026, 1, 15)
    assert local_date(dt.datetime(2026, 1, 15, 3, 0, tzinfo=UTC), "America/New_York") == (
        dt.date(2026, 1, 14)
    )


def _last_sunday(year: int, month: int) -> int:
    last = dt.date(year, month, 31)
    return 31 - (last.weekday() + 1) % 7


def _copenhagen_offset_hours(moment_utc: dt.datetime) -> int:
    """The EU rule, independently of tzdata: summer time (UTC+2) runs from 01:00 UTC on the
    last Sunday of March to 01:00 UTC on the last Sunday of October; otherwise UTC+1."""
    y = moment_utc.year
    start = dt.datetime(y, 3, _last_sunday(y, 3), 1, tzinfo=UTC)
    end = dt.datetime(y, 10, _last_sunday(y, 10), 1, tzinfo=UTC)
    return 2 if start <= moment_utc < end else 1


def test_the_independent_eu_rule_knows_the_2026_changes():
    assert (_last_sunday(2026, 3), _last_sunday(2026, 10)) == (29, 25)
    assert _copenhagen_offset_hours(dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == 1
    assert _copenhagen_offset_hours(dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == 2
    assert _copenhagen_offset_hours(dt.datetime(2026, 10, 25, 0, 59, tzinfo=UTC)) == 2
    assert _copenhagen_offset_hours(dt.datetime(2026, 10, 25, 1, 0, tzinfo=UTC)) == 1


@FAST
@given(moment=utc_moments)
def test_the_copenhagen_local_date_is_the_zoneinfo_date_of_the_moment(moment):
    assert local_date(moment, CPH) == moment.astimezone(CPH_ZONE).date()


@FAST
@given(moment=utc_moments)
def test_the_copenhagen_date_differs_from_utc_only_from_22_00_utc_in_summer_or_23_00_in_winter(
    moment,
):
    offset = _copenhagen_offset_hours(moment)
    local = local_date(moment, CPH)
    assert local == (moment + dt.timedelta(hours=offset)).date()
    assert local in (moment.date(), moment.date() + days(1))
    assert (local != moment.date()) == (moment.hour >= 24 - offset)


@FAST
@given(
    moment=utc_moments,
    zone=st.sampled_from(["UTC", CPH, "America/New_York", "Asia/Tokyo", "Pacific/Chatham"]),
    shift_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_the_local_date_depends_on_the_instant_not_on_how_it_is_written(
    moment, zone, shift_minutes
):
    fixed = dt.timezone(dt.timedelta(minutes=shift_minutes))
    assert local_date(moment.astimezone(fixed), zone) == local_date(moment, zone)
    assert local_date(moment.astimezone(ZoneInfo(zone)), CPH) == local_date(moment, CPH)


@FAST
@given(moment=utc_moments)
def test_the_local_date_never_moves_backwards_as_time_passes(moment):
    later = moment + dt.timedelta(hours=1)
    step = local_date(later, CPH) - local_date(moment, CPH)
    assert step in (days(0), days(1))


# --- 5. Naive datetimes ------------------------------------------------------------------


@FAST
@given(moment=st.datetimes(min_value=EARLIEST, max_value=LATEST))
def test_a_naive_datetime_raises_a_schedule_error(moment):
    with pytest.raises(ScheduleError, match="timezone-aware"):
        local_date(moment, CPH)


def test_a_datetime_whose_tzinfo_gives_no_offset_counts_as_naive():
    class NoOffset(dt.tzinfo):
        def utcoffset(self, d):
            return None

        def dst(self, d):
            return None

        def tzname(self, d):
            return None

    with pytest.raises(ScheduleError):
        local_date(dt.datetime(2026, 3, 29, 0, 30, tzinfo=NoOffset()), CPH)


# --- 6. in_window() ----------------------------------------------------------------------


def test_in_window_includes_both_ends_of_the_modic_10_week_window():
    start, end = dt.date(2026, 3, 19), dt.date(2026, 4, 16)
    assert in_window(start, start, end)
    assert in_window(end, start, end)
    assert in_window(dt.date(2026, 3, 26), start, end)
    assert not in_window(dt.date(2026, 3, 18), start, end)
    assert not in_window(dt.date(2026, 4, 17), start, end)


@FAST
@given(window=windows(), attended_on=dates)
def test_in_window_is_true_exactly_for_days_from_start_to_end_inclusive(window, attended_on):
    start, end = window
    assert in_window(attended_on, start, end) == (start <= attended_on <= end)
    assert in_window(start, start, end)
    assert in_window(end, start, end)
    assert not in_window(start - days(1), start, end)
    assert not in_window(end + days(1), start, end)


@FAST
@given(window=windows(), attended_on=dates)
def test_in_window_agrees_with_an_open_visit_being_due_that_day(window, attended_on):
    start, end = window
    due = status(today=attended_on, window_start=start, window_end=end, outcome="open") == DUE
    assert in_window(attended_on, start, end) == due


@FAST
@given(randomized_on=dates, spec=specs)
def test_a_visit_attended_on_its_target_day_is_in_window(randomized_on, spec):
    (visit,) = plan(randomized_on, [spec])
    assert in_window(visit.target, visit.window_start, visit.window_end)


# --- 6b. Ahead of the window: what needs a confirmed reason, and the default date ----------


@FAST
@given(window=windows(), day=dates)
def test_a_day_is_before_inside_or_after_a_window_and_in_window_means_inside(window, day):
    start, end = window
    position = schedule.window_position(day, start, end)
    expected = schedule.BEFORE if day < start else schedule.INSIDE if day <= end else schedule.AFTER
    assert position == expected
    assert in_window(day, start, end) == (position == schedule.INSIDE)


@FAST
@given(window=windows(), day=dates)
def test_only_an_attendance_before_the_window_opens_counts_as_early(window, day):
    start, end = window
    assert schedule.attended_early(day, start, end) == (day < start)


@FAST
@given(window=windows(), today=dates)
def test_a_miss_is_early_until_the_window_has_closed(window, today):
    """Missed while the visit could still take place: before the window and inside it,
    exactly the days an open visit is upcoming or due."""
    start, end = window
    open_status = status(today=today, window_start=start, window_end=end, outcome="open")
    assert schedule.missed_early(today, start, end) == (open_status in (UPCOMING, DUE))


@FAST
@given(window=windows(), today=dates)
def test_a_visit_form_suggests_today_only_inside_the_window(window, today):
    start, end = window
    suggested = schedule.default_visit_date(today, start, end)
    assert suggested == (today if start <= today <= end else None)


def test_one_year_outcomes_on_the_day_of_randomization_are_early():
    """The audit's case: the 1-year visit (day 434, window -14/+42) on the day of
    randomization is 420 days ahead of its window: early, and no date is suggested."""
    randomized_on = dt.date(2026, 6, 1)
    (y1,) = plan(randomized_on, [VisitSpec("y1", 434, 14, 42)])
    assert schedule.attended_early(randomized_on, y1.window_start, y1.window_end)
    assert schedule.default_visit_date(randomized_on, y1.window_start, y1.window_end) is None


# --- 7. No Django ------------------------------------------------------------------------

SCHEDULE_PY = Path(schedule.__file__)


def _imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def test_schedule_py_imports_nothing_from_django():
    tree = ast.parse(SCHEDULE_PY.read_text(encoding="utf-8"), filename=str(SCHEDULE_PY))
    imported = _imported_modules(tree)
    assert imported, "expected to find the module's imports"
    djangoish = [name for name, _ in imported if name == "django" or name.startswith("django.")]
    assert djangoish == []
    # Relative imports would pull in sibling modules of a Django app.
    assert [name for name, level in imported if level > 0] == []
    # Nor any dynamic import of Django.
    assert "importlib" not in {name.split(".")[0] for name, _ in imported}
    assert "__import__" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def test_schedule_py_imports_in_a_fresh_interpreter_without_loading_django():
    root = SCHEDULE_PY.parent.parent
    code = (
        "import sys; import participants.schedule; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
