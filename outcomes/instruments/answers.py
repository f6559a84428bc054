"""Checking raw answers against an instrument definition (no Django).

`validate_answers(definition, answers)` takes what a form posted (strings; a list of strings for
a multiple-choice item) and returns `(cleaned, errors)`:
1. Items are taken in order, so a show-if or a calculation sees the cleaned earlier answers.
2. An item whose show-if is false is "not asked" (MissingCode("not_asked")), whatever was posted:
   a hidden item never keeps a stale value.
3. A calculated item is computed from the earlier answers (None when it cannot be).
4. An answer equal to one of the item's missing-data codes is stored as that code, never as a
   value; it counts as an answer for a required item.
5. Anything else is parsed by the item's type and checked against its range or choices.
Cleaned values: int (integer, vas, yes/no as 1 or 0), Decimal (decimal, at its precision;
calculated), str (a single choice's code, text), tuple of codes (multiple choice, in the
definition's order), date, time; None for an unanswered optional item. Descriptive items have
no entry. `errors` holds one Problem per item in error (path = the item's name).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from outcomes.instruments.definition import Definition, Item
from outcomes.instruments.expression_eval import evaluate, truth
from outcomes.instruments.expressions import parse
from outcomes.instruments.problems import Problem

YES = ("1", "yes")
NO = ("0", "no")
VAS_RANGE = (0, 100)
_INTEGER = re.compile(r"[+-]?[0-9]{1,15}\Z")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,15}(\.[0-9]+)?\Z")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}\Z")


@dataclass(frozen=True)
class MissingCode:
    """Why an item has no value: one of definition_checks.MISSING_CODES."""

    code: str


NOT_ASKED = MissingCode("not_asked")


class _Invalid(Exception):
    def __init__(self, key: str, **params):
        super().__init__(key)
        self.key = key
        self.params = params


def validate_answers(
    definition: Definition, answers: Mapping[str, object]
) -> tuple[dict[str, object], list[Problem]]:
    """The cleaned answers and the problems of each item in error (see the module docstring)."""
    cleaned: dict[str, object] = {}
    errors: list[Problem] = []
    for item in definition.items:
        if item.type == "descriptive":
            continue
        if item.show_if is not None and not truth(evaluate(parse(item.show_if), cleaned)):
            cleaned[item.name] = NOT_ASKED
            continue
        if item.type == "calculated":
            cleaned[item.name] = _calculate(item, cleaned)
            continue
        try:
            cleaned[item.name] = _clean(item, answers.get(item.name))
        except _Invalid as invalid:
            cleaned[item.name] = None
            errors.append(Problem(item.name, invalid.key, invalid.params))
    return cleaned, errors


def _calculate(item: Item, cleaned: Mapping[str, object]) -> Decimal | None:
    value = evaluate(parse(item.calculation), cleaned)
    if isinstance(value, bool):
        return Decimal(int(value))
    return value if isinstance(value, Decimal) else None


def _clean(item: Item, raw: object) -> object:
    if item.type == "multiple_choice":
        raw = _as_list(raw)
        if len(raw) == 1 and raw[0] in item.missing_codes:
            return MissingCode(raw[0])
        if not raw:
            return _unanswered(item)
        return _multiple(item, raw)
    if raw is None:
        return _unanswered(item)
    if not isinstance(raw, str):
        raise _Invalid("answer.not_text")
    raw = raw.strip()
    if raw == "":
        return _unanswered(item)
    if raw in item.missing_codes:
        return MissingCode(raw)
    return PARSERS[item.type](item, raw)


def _unanswered(item: Item) -> None:
    if item.required:
        raise _Invalid("answer.required")
    return None


def _as_list(raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
        raise _Invalid("answer.not_text")
    return [value.strip() for value in raw if value.strip()]


def _multiple(item: Item, raw: list[str]) -> tuple[str, ...]:
    unknown = [value for value in raw if value not in item.codes]
    if unknown:
        raise _Invalid("answer.not_a_choice", value=unknown[0])
    return tuple(code for code in item.codes if code in raw)


def _in_range(number, low, high):
    if low is not None and number < low:
        raise _Invalid("answer.below_minimum", minimum=low)
    if high is not None and number > high:
        raise _Invalid("answer.above_maximum", maximum=high)
    return number


def _integer(item: Item, raw: str) -> int:
    if not _INTEGER.match(raw):
        raise _Invalid("answer.not_a_whole_number")
    return _in_range(int(raw), item.minimum, item.maximum)


def _vas(item: Item, raw: str) -> int:
    if not _INTEGER.match(raw):
        raise _Invalid("answer.not_a_whole_number")
    return _in_range(int(raw), *VAS_RANGE)


def _decimal(item: Item, raw: str) -> Decimal:
    if not _DECIMAL.match(raw):
        raise _Invalid("answer.not_a_number")
    number = Decimal(raw)
    # "72.50" is 72.5: trailing zeros are not places beyond the precision.
    places = max(0, -number.normalize().as_tuple().exponent)
    if places > item.precision:
        raise _Invalid("answer.too_many_decimals", precision=item.precision)
    try:
        number = number.quantize(Decimal(1).scaleb(-item.precision))
    except InvalidOperation as exc:  # more digits than a Decimal context holds
        raise _Invalid("answer.not_a_number") from exc
    return _in_range(number, item.minimum, item.maximum)


def _single(item: Item, raw: str) -> str:
    if raw not in item.codes:
        raise _Invalid("answer.not_a_choice", value=raw)
    return raw


def _yes_no(item: Item, raw: str) -> int:
    if raw.lower() in YES:
        return 1
    if raw.lower() in NO:
        return 0
    raise _Invalid("answer.not_yes_or_no")


def _date(item: Item, raw: str) -> dt.date:
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise _Invalid("answer.not_a_date") from exc


def _time(item: Item, raw: str) -> dt.time:
    try:
        if not _TIME.match(raw):
            raise ValueError(raw)
        return dt.time.fromisoformat(raw)
    except ValueError as exc:
        raise _Invalid("answer.not_a_time") from exc


def _text(item: Item, raw: str) -> str:
    if item.max_length is not None and len(raw) > item.max_length:
        raise _Invalid("answer.too_long", max_length=item.max_length)
    return raw


PARSERS = {
    "integer": _integer,
    "decimal": _decimal,
    "vas": _vas,
    "single_choice": _single,
    "yes_no": _yes_no,
    "date": _date,
    "time": _time,
    "text": _text,
}
