"""Evaluating a parsed expression (outcomes.instruments.expressions) over answers (no Django).

`evaluate(tree, values)` never raises on any answers: a value that does not fit an operation
makes the result missing (None), as an unanswered item does.

Missing values, and where REDCap differs:
- A reference to an unanswered item (absent, None, or a missing-data code such as "refused") is
  missing. REDCap treats a blank field as the empty string "".
- Arithmetic with a missing operand is missing, and so is division by zero (REDCap: blank/NaN).
- A comparison with a missing operand is false, so a show-if on an unanswered item hides the
  item. The one exception is REDCap's idiom for "answered": `[x] = ''` is true and `[x] <> ''`
  false exactly when [x] is missing. Note that `[x] != 1` is therefore false, not true, when
  [x] is missing (REDCap: true, since "" differs from 1), and `not ([x] = 1)` is true.
- and/or/not work on truth values; missing counts as false (two-valued logic, so a condition
  is always decided).
- sum, mean, min and max skip missing arguments and are missing when none is left; count is
  the number of answered arguments. REDCap's sum/mean/min/max likewise ignore blanks.
- `[x(c)]` of a multiple-choice item is 1 when code c is checked and 0 otherwise, also when
  nothing is checked (REDCap: an unchecked box is 0, never blank).
- A quoted number compares as a number with a number, as REDCap does (`[pain] > '3'`), and a
  date item compares with an ISO date string ('2024-05-31').
Numbers are decimals, so 0.1 + 0.2 = 0.3 exactly; yes/no answers count as 1 and 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation, localcontext

from outcomes.instruments.expressions import Binary, Call, Node, Number, Ref, String, Unary

Value = Decimal | str | bool | dt.date | dt.time | tuple | None


def evaluate(node: Node, values: Mapping[str, object]) -> Value:
    """The value of the expression over the answers; None when it is missing.

    `values` maps item names to cleaned answers (int, Decimal, str, bool, date, time, or a
    tuple of codes for a multiple-choice item); a name not in it, None, or any other object
    (a missing-data code) is missing."""
    with localcontext() as context:
        context.prec = 28
        try:
            return _evaluate(node, values)
        except (ArithmeticError, InvalidOperation):
            return None


def _evaluate(node: Node, values: Mapping[str, object]) -> Value:
    if isinstance(node, Number | String):
        return node.value
    if isinstance(node, Ref):
        return _reference(node, values)
    if isinstance(node, Unary):
        operand = _evaluate(node.operand, values)
        if node.op == "not":
            return not truth(operand)
        number = as_number(operand)
        return None if number is None else -number
    if isinstance(node, Call):
        return _call(node, values)
    return _binary(node, values)


def _reference(node: Ref, values: Mapping[str, object]) -> Value:
    value = values.get(node.name)
    if node.choice is not None:
        return Decimal(1) if isinstance(value, tuple) and node.choice in value else Decimal(0)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal | str | dt.date | dt.time | tuple):
        return value
    return None


def _binary(node: Binary, values: Mapping[str, object]) -> Value:
    if node.op == "and":
        return truth(_evaluate(node.left, values)) and truth(_evaluate(node.right, values))
    if node.op == "or":
        return truth(_evaluate(node.left, values)) or truth(_evaluate(node.right, values))
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    if node.op in ("+", "-", "*", "/"):
        return _arithmetic(node.op, as_number(left), as_number(right))
    return compare(node.op, left, right, node)


def _arithmetic(op: str, left: Decimal | None, right: Decimal | None) -> Decimal | None:
    if left is None or right is None:
        return None
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return None if right == 0 else left / right


def compare(op: str, left: Value, right: Value, node: Binary | None = None) -> bool:
    """A comparison under the rules in the module docstring."""
    empty_literal = node is not None and (
        (isinstance(node.left, String) and node.left.value == "")
        or (isinstance(node.right, String) and node.right.value == "")
    )
    if left is None or right is None:
        if empty_literal and op in ("=", "!="):
            return (op == "=") == (left is None or right is None)
        return False
    pair = _comparable(left, right)
    if pair is None:
        return False
    a, b = pair
    try:
        return {
            "=": a == b,
            "!=": a != b,
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
        }[op]
    except TypeError:
        return False


def _comparable(left: Value, right: Value) -> tuple | None:
    """The two values in one kind that can be compared, or None if they cannot."""
    if isinstance(left, tuple) or isinstance(right, tuple):
        return None
    for date_type in (dt.date, dt.time):
        if isinstance(left, date_type) or isinstance(right, date_type):
            a, b = _as_temporal(left, date_type), _as_temporal(right, date_type)
            return None if a is None or b is None else (a, b)
    a, b = as_number(left), as_number(right)
    if a is not None and b is not None:
        return a, b
    return str(left), str(right)


def _as_temporal(value: Value, kind: type):
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind.fromisoformat(value)
        except ValueError:
            return None
    return None


def as_number(value: Value) -> Decimal | None:
    """A number from a number, a yes/no (1/0) or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def truth(value: Value) -> bool:
    """Whether a value counts as true in a condition: missing is false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    number = as_number(value)
    if number is not None:
        return number != 0
    return bool(value)


def _call(node: Call, values: Mapping[str, object]) -> Value:
    if node.function == "if":
        condition, when_true, when_false = node.args
        chosen = when_true if truth(_evaluate(condition, values)) else when_false
        return _evaluate(chosen, values)
    answered = [_evaluate(arg, values) for arg in node.args]
    if node.function == "count":
        return Decimal(sum(1 for value in answered if value is not None))
    numbers = [n for n in (as_number(v) for v in answered) if n is not None]
    if not numbers:
        return None
    if node.function == "sum":
        return sum(numbers, Decimal(0))
    if node.function == "mean":
        return sum(numbers, Decimal(0)) / len(numbers)
    return min(numbers) if node.function == "min" else max(numbers)
