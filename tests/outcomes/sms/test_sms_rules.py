"""Reading an SMS reply and the weekly calendar (outcomes.sms.sms_rules): pure, so properties."""

from __future__ import annotations

import ast
import datetime as dt
import unicodedata
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from outcomes.sms import sms_rules
from outcomes.sms.sms_rules import classify, keyword, read_number

CPH = ZoneInfo("Europe/Copenhagen")
UTC = dt.UTC
SUNDAY = 6
EVENING = dt.time(18, 0)

# Text around a number: letters that spell no number word, whitespace and punctuation that
# changes no number (no minus, decimal point, comma or slash next to it).
LETTERS = "abcdfghjklmpqrsuvwxyzæøåABCDFGHJKLMPQRSUVWXYZÆØÅ"
SEPARATORS = " \t\n!?:;()\"'#*"
words = st.text(alphabet=LETTERS, min_size=1, max_size=8).filter(
    lambda w: w.casefold() not in sms_rules.NUMBER_WORDS
)
separators = st.text(alphabet=SEPARATORS, min_size=1, max_size=3)
surrounding = st.lists(st.tuples(words, separators), max_size=3).map(
    lambda parts: "".join(w + s for w, s in parts)
)
trailing = st.lists(st.tuples(separators, words), max_size=3).map(
    lambda parts: "".join(s + w for s, w in parts)
)
ranges = st.tuples(st.integers(-50, 50), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1]))


def test_the_rules_never_import_django():
    tree = ast.parse(Path(sms_rules.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] == "django"]


# --- Reading a reply --------------------------------------------------------------------------


@settings(max_examples=300)
@given(value=st.integers(0, 100), before=surrounding, after=trailing, pad=separators)
@example(value=3, before="", after=" days", pad=" ")
@example(value=7, before="svar: ", after="!", pad="\n")
def test_any_in_range_number_in_ascii_digits_is_read_with_text_around_it(value, before, after, pad):
    body = f"{pad}{before}{value}{after}{pad}"
    assert read_number(body) == (value, "")
    assert classify(body, 0, 100) == sms_rules.Reading("answer", value=value)


@given(value=st.integers(0, 100), zeros=st.integers(0, 3))
def test_leading_zeros_do_not_change_the_number(value, zeros):
    assert classify("0" * zeros + str(value), 0, 100).value == value


@given(value=st.integers(-10_000, 10_000), bounds=ranges, before=surrounding, after=trailing)
def test_an_out_of_range_number_is_never_an_answer(value, bounds, before, after):
    low, high = bounds
    reading = classify(f"{before}{value}{after}", low, high)
    if not low <= value <= high:
        assert reading.kind != "answer"
        assert reading.value is None


@settings(max_examples=300)
@given(
    first=st.integers(0, 10_000),
    second=st.integers(0, 10_000),
    between=st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Nd")), min_size=1, max_size=10
    ),
    before=surrounding,
)
def test_two_different_numbers_are_never_an_answer(first, second, between, before):
    if first == second or unicodedata.normalize("NFKC", between) == "":
        return
    body = f"{before}{first}{between}{second}"
    # Whatever sits between them (even letters that glue the two into one token, or
    # characters NFKC turns into more digits), no single number is read.
    reading = classify(body, 0, 10_000)
    assert reading.kind != "answer", body


@pytest.mark.parametrize(
    "body",
    ["3-4", "3 - 4", "3 or 4", "3/4", "2.5", "2,5", "-1", "−1", "3 4", "3x4", "", "   ", "?"],
)
def test_ranges_decimals_negatives_and_empty_replies_do_not_read(body):
    assert classify(body, 0, 7).kind == "invalid"


@pytest.mark.parametrize(
    ("body", "value"),
    [
        ("3", 3),
        (" 3 ", 3),
        ("3!", 3),
        ("3 dage", 3),
        ("3dage", 3),
        ("tre dage", 3),
        ("Three", 3),
        ("(5)", 5),
        ("0", 0),
        ("7.", 7),
        ("3 3", 3),
    ],
)
def test_usual_answers_are_read(body, value):
    assert classify(body, 0, 7) == sms_rules.Reading("answer", value=value)


@pytest.mark.parametrize(
    ("body", "value"),
    [
        # Words that are numbers only sometimes: read alone or before "day(s)"...
        ("ingen", 0), ("no", 0), ("None", 0), ("en", 1), ("ingen dage", 0), ("en dag", 1),
        ("no days", 0), ("No, 3 days", 3),
        # ...and not in a sentence, where they mean something else.
        ("ingen anelse", None), ("no idea", None), ("None of your business", None),
        ("en uge", None), ("et par dage", None),
    ],
)  # fmt: skip
def test_words_that_are_numbers_only_sometimes_are_not_guessed(body, value):
    reading = classify(body, 0, 7)
    assert (reading.kind, reading.value) == ("invalid" if value is None else "answer", value)


# Punctuation, symbols (emoji), spaces and invisible characters, as phones add them; not
# those that NFKC turns into letters or digits ("㎏" is "kg").
decorations = st.text(
    alphabet=st.characters(categories=("P", "S", "Z", "Cc", "Cf")), max_size=3
).filter(lambda t: not any(c.isalnum() for c in unicodedata.normalize("NFKC", t)))


@given(
    word=st.sampled_from(sorted(sms_rules.OPT_OUT_WORDS | sms_rules.OPT_IN_WORDS)),
    case=st.lists(st.booleans(), min_size=12, max_size=12),
    before=decorations,
    after=decorations,
)
@example(word="stop", case=[True] * 12, before="", after="!")
@example(word="afmeld", case=[False] * 12, before=" “", after="” ")
def test_keywords_are_recognised_in_any_case_with_punctuation_around(word, case, before, after):
    cased = "".join(c.upper() if up else c for c, up in zip(word, case, strict=False))
    expected = "opt_out" if word in sms_rules.OPT_OUT_WORDS else "opt_in"
    body = before + cased + after
    assert keyword(body) == expected
    # A keyword wins over any reading as a number.
    assert classify(body, 0, 7).kind == expected


@pytest.mark.parametrize(
    "body",
    ["«STOP»", "“Stop”", "STOP…", "stop\u200b", "\ufeffSTOP", "¡Stop!", "STOP 🛑", "Stop\xa0"],
)
def test_phones_decorations_around_a_keyword_are_ignored(body):
    assert keyword(body) == "opt_out"


@pytest.mark.parametrize("body", ["stop3", "s-top", "stopping", "", "!!!"])
def test_a_keyword_glued_to_other_letters_or_digits_is_no_keyword(body):
    assert keyword(body) is None


def test_a_keyword_inside_a_sentence_is_no_keyword():
    assert keyword("please do not stop") is None
    assert classify("stop 3", 0, 7).kind not in {"opt_out", "opt_in"}


@settings(max_examples=500)
@given(body=st.text(), low=st.integers(-100, 100), span=st.integers(0, 100))
@example(body="9" * 5000, low=0, span=7)
@example(body="\x00", low=0, span=7)
@example(body="\ufdfa" * 200, low=0, span=7)  # NFKC expands it eighteen-fold
def test_arbitrary_text_never_raises_and_reads_as_a_reading(body, low, span):
    reading = classify(body, low, low + span)
    assert reading.kind in {"answer", "invalid", "opt_out", "opt_in"}
    if reading.kind == "answer":
        assert low <= reading.value <= low + span
    else:
        assert reading.value is None


@given(value=st.integers(0, 9), script=st.sampled_from([0xFF10, 0x0660, 0x06F0, 0x0966, 0x1D7CE]))
def test_digits_of_other_scripts_and_full_width_digits_are_read_after_nfkc(value, script):
    digit = chr(script + value)
    assert classify(digit, 0, 9).value == value
    assert classify(f"{digit} dage", 0, 9).value == value


@pytest.mark.parametrize(("body", "value"), [("７", 7), ("٣", 3), ("³", 3), ("①", 1), ("𝟓", 5)])
def test_nfkc_digits(body, value):
    assert classify(body, 0, 7).value == value


def test_a_very_long_reply_is_not_read():
    assert classify("3 " + "x" * 500, 0, 7) == sms_rules.Reading("invalid", problem="too long")


# --- The weekly calendar ----------------------------------------------------------------------


def at(year, month, day, hour, minute=0, zone=CPH):
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone)


def test_last_send_date_is_today_from_the_send_time_on_and_last_week_before_it():
    sunday = dt.date(2026, 1, 11)
    assert sunday.weekday() == SUNDAY
    assert sms_rules.last_send_date(at(2026, 1, 11, 17, 59), CPH, SUNDAY, EVENING) == dt.date(
        2026, 1, 4
    )
    assert sms_rules.last_send_date(at(2026, 1, 11, 18, 0), CPH, SUNDAY, EVENING) == sunday
    assert sms_rules.last_send_date(at(2026, 1, 11, 18, 1), CPH, SUNDAY, EVENING) == sunday
    # Any later day of the week still points at that Sunday.
    assert sms_rules.last_send_date(at(2026, 1, 17, 23, 59), CPH, SUNDAY, EVENING) == sunday


def test_last_send_date_uses_the_trial_zone_not_utc():
    # 17:30 UTC on Sunday 11 January is 18:30 in Copenhagen: the send time has passed there.
    now = dt.datetime(2026, 1, 11, 17, 30, tzinfo=UTC)
    assert sms_rules.last_send_date(now, CPH, SUNDAY, EVENING) == dt.date(2026, 1, 11)
    # 23:30 UTC on Saturday is already Sunday 00:30 in Copenhagen, before the send time.
    now = dt.datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
    assert sms_rules.last_send_date(now, CPH, SUNDAY, EVENING) == dt.date(2026, 1, 4)


def test_last_send_date_refuses_a_naive_datetime():
    with pytest.raises(ValueError):
        sms_rules.last_send_date(dt.datetime(2026, 1, 11, 18, 0), CPH, SUNDAY, EVENING)  # noqa: DTZ001


@given(
    now=st.datetimes(
        min_value=dt.datetime(2020, 1, 1),  # noqa: DTZ001
        max_value=dt.datetime(2035, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    weekday=st.integers(0, 6),
    send_time=st.times(),
)
def test_last_send_date_is_the_latest_send_day_whose_send_time_has_passed(now, weekday, send_time):
    day = sms_rules.last_send_date(now, CPH, weekday, send_time)
    assert day.weekday() == weekday
    assert sms_rules.send_moment(day, CPH, send_time) <= now
    assert sms_rules.send_moment(day + dt.timedelta(days=7), CPH, send_time) > now


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (dt.date(2026, 3, 22), 17),  # last Sunday of winter time (CET, UTC+1)
        (dt.date(2026, 3, 29), 16),  # spring forward at 02:00 that night: CEST, UTC+2
        (dt.date(2026, 10, 18), 16),
        (dt.date(2026, 10, 25), 17),  # fall back at 03:00 that night: CET again
    ],
)
def test_18_00_local_stays_18_00_local_across_both_dst_changes_of_2026(day, utc_hour):
    moment = sms_rules.send_moment(day, CPH, EVENING)
    assert moment.astimezone(CPH).time() == EVENING
    assert moment.astimezone(UTC) == dt.datetime.combine(day, dt.time(utc_hour), tzinfo=UTC)


@pytest.mark.parametrize("sunday", [dt.date(2026, 3, 29), dt.date(2026, 10, 25)])
def test_the_dst_sunday_is_the_send_day_just_after_its_send_time(sunday):
    just_before = sms_rules.send_moment(sunday, CPH, EVENING) - dt.timedelta(seconds=1)
    just_after = sms_rules.send_moment(sunday, CPH, EVENING)
    assert sms_rules.last_send_date(just_before, CPH, SUNDAY, EVENING) == sunday - dt.timedelta(
        days=7
    )
    assert sms_rules.last_send_date(just_after, CPH, SUNDAY, EVENING) == sunday


def test_a_send_time_in_the_spring_forward_gap_falls_just_after_the_gap():
    # 02:30 on 29 March 2026 does not exist in Copenhagen (02:00 -> 03:00).
    moment = sms_rules.send_moment(dt.date(2026, 3, 29), CPH, dt.time(2, 30))
    assert moment.astimezone(UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert moment.astimezone(CPH).time() == dt.time(3, 30)
    # and the week's send day is still that Sunday once the moment has passed
    assert sms_rules.last_send_date(moment, CPH, SUNDAY, dt.time(2, 30)) == dt.date(2026, 3, 29)


def test_an_ambiguous_fall_back_send_time_is_its_first_occurrence():
    # 02:30 on 25 October 2026 happens twice; the first (still summer time) is used.
    moment = sms_rules.send_moment(dt.date(2026, 10, 25), CPH, dt.time(2, 30))
    assert moment.astimezone(UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days_after", "week"),
    [(-7, -1), (0, 0), (1, 1), (6, 1), (7, 1), (8, 2), (14, 2), (15, 3), (434, 62)],
)
def test_week_number_edges(days_after, week):
    randomized_on = dt.date(2026, 3, 20)
    assert sms_rules.week_number(randomized_on, randomized_on + dt.timedelta(days=days_after)) == (
        week
    )


def test_week_numbers_are_whole_weeks_across_dst():
    # Randomized on the Friday before spring forward: the Sundays after are weeks 1, 2, ...
    randomized_on = dt.date(2026, 3, 27)
    sundays = [dt.date(2026, 3, 29) + dt.timedelta(days=7 * k) for k in range(4)]
    assert [sms_rules.week_number(randomized_on, s) for s in sundays] == [1, 2, 3, 4]


@given(
    randomized_on=st.dates(dt.date(2020, 1, 1), dt.date(2035, 1, 1)),
    offset=st.integers(0, 6),
    weeks=st.integers(1, 80),
)
def test_randomized_range_holds_exactly_the_participants_in_weeks_1_to_n(
    randomized_on, offset, weeks
):
    send_date = randomized_on + dt.timedelta(days=offset + 1)
    for k in range(0, weeks + 2):
        day = send_date + dt.timedelta(days=7 * k)
        first, last = sms_rules.randomized_range(day, weeks)
        week = sms_rules.week_number(randomized_on, day)
        assert (first <= randomized_on <= last) == (1 <= week <= weeks)
