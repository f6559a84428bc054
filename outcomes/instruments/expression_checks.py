"""Static checks of an expression against the items it may read (no Django).

Used for show-if conditions, calculated items (outcomes.instruments.definition_checks) and
expression scores (outcomes.instruments.score_rules). An item may read only items before it, so
a calculation can never depend on itself through a chain: a reference to a later item, or to the
item itself (a cycle), is reported rather than resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from outcomes.instruments.expressions import (
    Binary,
    Call,
    ExpressionError,
    Node,
    Ref,
    Unary,
    children,
    parse,
    walk,
)
from outcomes.instruments.problems import Problem

# Item types whose answer is no number: arithmetic on them is a mistake found before any data.
NOT_NUMBERS = frozenset({"text", "date", "time", "multiple_choice"})
NUMERIC_FUNCTIONS = frozenset({"sum", "mean", "min", "max"})


def check_expression(
    text: str, path: str, readable: Mapping[str, object], known: set[str], own_name: str
) -> list[Problem]:
    """The problems of one expression. `readable` maps the names of the items it may read to
    the items; `known` holds every item name of the instrument (to tell unknown from later)."""
    try:
        tree = parse(text)
    except ExpressionError as error:
        return [Problem(path, error.key, {"position": error.position, **error.params})]
    found = []
    for node in walk(tree):
        if isinstance(node, Ref):
            found.extend(_check_ref(node, path, readable, known, own_name))
    found.extend(_check_numbers(tree, path, readable))
    return found


def _check_ref(
    ref: Ref, path: str, readable: Mapping[str, object], known: set[str], own_name: str
) -> list[Problem]:
    params = {"item": ref.name}
    if ref.name == own_name:
        return [Problem(path, "expression.cycle", params)]
    if ref.name not in readable:
        key = "expression.later_item" if ref.name in known else "expression.unknown_item"
        return [Problem(path, key, params)]
    item = readable[ref.name]
    if item.type == "descriptive":
        return [Problem(path, "expression.not_a_value", params)]
    if ref.choice is None:
        if item.type == "multiple_choice":
            return [Problem(path, "expression.needs_choice", params)]
        return []
    if item.type != "multiple_choice":
        return [Problem(path, "expression.choice_of_single_answer", params)]
    if ref.choice not in item.codes:
        return [Problem(path, "expression.unknown_choice", params | {"choice": ref.choice})]
    return []


def _check_numbers(tree: Node, path: str, readable: Mapping[str, object]) -> list[Problem]:
    """References used as numbers (operands of arithmetic, sum, mean, min, max) that are not."""
    found = []
    for node in walk(tree):
        numeric = (
            (isinstance(node, Binary) and node.op in ("+", "-", "*", "/"))
            or (isinstance(node, Unary) and node.op == "-")
            or (isinstance(node, Call) and node.function in NUMERIC_FUNCTIONS)
        )
        if not numeric:
            continue
        for child in children(node):
            item = readable.get(child.name) if isinstance(child, Ref) else None
            if item is not None and child.choice is None and not is_numeric(item):
                found.append(Problem(path, "expression.not_a_number", {"item": child.name}))
    return found


def is_numeric(item) -> bool:
    """Whether an item's answers are numbers (choice items: when every code is one)."""
    if item.type in NOT_NUMBERS or item.type == "descriptive":
        return False
    if item.type == "single_choice":
        return all(_is_number(code) for code in item.codes)
    return True


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False
