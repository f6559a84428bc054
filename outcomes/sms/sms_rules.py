"""Rules of the weekly SMS tracking, pure (no Django): reading a reply and the weekly calendar.

Reading a reply
    classify(body, min_value, max_value) -> Reading. Opt-out and opt-in keywords are
    recognised first (whole message, any case; punctuation, symbols such as emoji and
    invisible characters around the word are ignored); otherwise the reply is an answer when
    it holds exactly one whole number, written in digits (any script's digits, after Unicode
    NFKC normalisation, so "７" and "٣" count) or as a Danish or English number word, and the
    number is in range ("no", "none", "ingen", "en", "et" only as the whole reply or before a
    word for day(s): "no idea" and "en uge" do not read). "3 days", "3!" and "tre dage" read as 3;
    "3-4", "3 or 4", "2.5", "-1" and "" do not read at all: we never guess between two numbers.

The weekly calendar
    Week 1 is the first send day strictly after the randomization date; week k is 7(k-1) days
    later. Send times are local wall-clock times (the trial's zone), so a send at 18:00 stays
    at 18:00 across daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# Keywords, compared case-insensitively with the whole message. STOP, STOPP (Danish,
# Norwegian, Swedish) and UNSUBSCRIBE as the issue asks, plus the carriers' usual synonyms.
OPT_OUT_WORDS = frozenset(
    {"stop", "stopp", "stopall", "unsubscribe", "cancel", "end", "quit", "afmeld", "frameld"}
)
OPT_IN_WORDS = frozenset({"start", "unstop", "tilmeld"})

# Replies longer than this are not read as answers (they are kept raw all the same).
MAX_READ_LENGTH = 160

NUMBER_WORDS = {
    # English
    "zero": 0, "none": 0, "no": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    # Danish ("en"/"et" are also articles; as the only number word they mean one)
    "nul": 0, "ingen": 0, "en": 1, "et": 1, "én": 1, "ét": 1, "to": 2, "tre": 3, "fire": 4,
    "fem": 5, "seks": 6, "syv": 7, "otte": 8, "ni": 9, "ti": 10,
}  # fmt: skip

# Words that are numbers only sometimes: "no idea", "ingen anelse", "en uge" (a week),
# "et par dage" (a couple of days) are not 0 or 1. They count only as the whole reply or
# followed by a word for day(s): "ingen", "no days", "en dag".
AMBIGUOUS_WORDS = frozenset({"no", "none", "ingen", "en", "et", "én", "ét"})
DAY_WORDS = frozenset({"day", "days", "dag", "dage", "dagen", "dagene"})

_TOKEN = re.compile(r"\w+", re.UNICODE)
_DIGITS = re.compile(r"\d+", re.UNICODE)
# Anything that turns one number into something else: a decimal point or comma between
# digits, a minus sign before one, a range, a fraction.
_NOT_A_WHOLE_NUMBER = re.compile(r"\d\s*[.,/]\s*\d|(^|[^\w])[-−]\s*\d|\d\s*[-−–]\s*\d")


@dataclass(frozen=True)
class Reading:
    """What a reply is: "opt_out", "opt_in", "answer" (with value) or "invalid"."""

    kind: str
    value: int | None = None
    # For "invalid": why, for the log (never sent back to the participant).
    problem: str = ""


def normalize(body: str) -> str:
    """NFKC-normalised, trimmed, case-folded text of a reply."""
    return unicodedata.normalize("NFKC", body or "").strip().casefold()


def _is_decoration(char: str) -> bool:
    # Punctuation, symbols (emoji), spaces and invisible characters (zero-width spaces,
    # byte-order marks), which phones add around a word: "“Stop”", "STOP 🛑", "¡Stop!"; and
    # stray combining marks left after NFKC (a spacing "˘" becomes a space and a mark).
    return unicodedata.category(char)[0] in "PSZCM"


def keyword(body: str) -> str | None:
    """ "opt_out" or "opt_in" when the whole message is such a keyword, else None."""
    text = normalize(body)
    start, end = 0, len(text)
    while start < end and _is_decoration(text[start]):
        start += 1
    while end > start and _is_decoration(text[end - 1]):
        end -= 1
    word = text[start:end]
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    return None


def read_number(body: str) -> tuple[int | None, str]:
    """The one whole number a reply holds, or (None, why not)."""
    text = normalize(body)
    if not text:
        return None, "empty"
    if len(text) > MAX_READ_LENGTH:
        return None, "too long"
    if _NOT_A_WHOLE_NUMBER.search(text):
        return None, "not a whole number"
    numbers: list[int] = []
    tokens = _TOKEN.findall(text)
    for position, token in enumerate(tokens):
        digits = _DIGITS.fullmatch(token)
        if digits:
            numbers.append(int(token))  # int() reads any script's decimal digits
        elif token in AMBIGUOUS_WORDS:
            rest = tokens[position + 1 :]
            if not rest or (len(rest) == 1 and rest[0] in DAY_WORDS):
                numbers.append(NUMBER_WORDS[token])
        elif token in NUMBER_WORDS:
            numbers.append(NUMBER_WORDS[token])
        elif _DIGITS.search(token):
            # Digits glued to letters ("3dage", "7x"): read the leading number only when
            # the rest are letters, e.g. "3dage", not "3x4".
            match = re.fullmatch(r"(\d+)([^\W\d_]+)", token)
            if not match:
                return None, "not a number"
            numbers.append(int(match.group(1)))
    if not numbers:
        return None, "no number"
    if len(set(numbers)) > 1:
        return None, "more than one number"
    return numbers[0], ""


def classify(body: str, min_value: int, max_value: int) -> Reading:
    """Read a reply to a question whose valid answers are min_value..max_value."""
    word = keyword(body)
    if word:
        return Reading(word)
    value, problem = read_number(body)
    if value is None:
        return Reading("invalid", problem=problem)
    if not min_value <= value <= max_value:
        return Reading("invalid", problem=f"{value} is out of range")
    return Reading("answer", value=value)


# --- The weekly calendar ----------------------------------------------------------------------


def last_send_date(now: dt.datetime, zone: ZoneInfo, weekday: int, send_time: dt.time) -> dt.date:
    """The most recent local date on `weekday` whose send time has passed at `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(zone)
    day = local.date() - dt.timedelta(days=(local.weekday() - weekday) % 7)
    if send_moment(day, zone, send_time) > now:
        day -= dt.timedelta(days=7)
    return day


def send_moment(day: dt.date, zone: ZoneInfo, send_time: dt.time) -> dt.datetime:
    """The aware instant of `send_time` on local `day` (wall-clock time, DST-aware; a time
    that does not exist that day, in a spring-forward gap, falls after the gap)."""
    naive = dt.datetime.combine(day, send_time)
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a non-existent local time comes back normalised past the gap.
    return aware.astimezone(dt.UTC).astimezone(zone)


def week_number(randomized_on: dt.date, send_date: dt.date) -> int:
    """Which week `send_date` is for a participant randomized on `randomized_on` (0 or less:
    before their first week). `send_date` is a send day."""
    days = (send_date - randomized_on).days
    return -(-days // 7)  # ceil(days / 7): days 1..7 are week 1, 8..14 week 2, ...


def randomized_range(send_date: dt.date, weeks: int) -> tuple[dt.date, dt.date]:
    """The randomization dates (inclusive) of participants whose week 1..weeks falls on
    `send_date`."""
    return send_date - dt.timedelta(days=7 * weeks), send_date - dt.timedelta(days=1)
