"""Score rules as data, and computing them from cleaned answers (no Django).

A rule is a dict in the instrument definition's "scores" list:

    {"name": "rmdq", "rule": "sum", "items": ["item_1", ...], "label": {"en": "..."}}

- sum: the sum of the items; missing when any item is missing. No imputation, so an analysis
  sees exactly what was answered (the rule outcomes.instruments.scoring applies to the RMDQ).
- mean: the mean of the answered items when at least `min_answered` (default: all) are
  answered, else missing. With `"prorate": true` the result is the mean × the number of items:
  a sum pro-rated over the unanswered items (e.g. the SF-36 "half rule", Ware et al. 1993).
  With `"decimals": d` the result is rounded to d places half away from zero (ROUND_HALF_UP:
  scoring manuals round .5 up; Python's round() would round half to even).
- count: how many of the items have an answer among `choices` (codes); missing unless
  `min_answered` (default: all) items are answered. `"as_boolean": true` gives count > 0, so the
  7-point global's "improved" (answer 1 or 2) is a count of choices 1 and 2 over one item.
- lookup: an EQ-5D-3L index: the five dimension items (codes 1-3, in the order MO, SC, UA, PD,
  AD) looked up in the value set named `value_set`, through outcomes.instruments.scoring.
- expression: an expression of outcomes.instruments.expressions; `decimals` as for mean.
Sums and counts of whole-number answers are ints; a mean or an expression is a Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from outcomes.instruments import problems as shape
from outcomes.instruments import scoring
from outcomes.instruments.expression_checks import check_expression, is_numeric
from outcomes.instruments.expression_eval import as_number, evaluate
from outcomes.instruments.expressions import parse
from outcomes.instruments.problems import Problem

RULES = ("sum", "mean", "count", "lookup", "expression")
MAX_DECIMALS = 10
KEYS = {"name", "rule", "items", "label", "min_answered", "prorate", "decimals", "choices"}
KEYS |= {"as_boolean", "value_set", "expression"}


class ScoreRuleError(ValueError):
    """A rule that cannot be computed with what it was given (a value set not supplied)."""


@dataclass(frozen=True)
class ScoreRule:
    name: str
    rule: str
    items: tuple[str, ...] = ()
    label: Mapping[str, str] = field(default_factory=dict)
    min_answered: int | None = None
    prorate: bool = False
    decimals: int | None = None
    choices: tuple[str, ...] = ()
    as_boolean: bool = False
    value_set: str | None = None
    expression: str | None = None


def load_rule(data: object, path: str, found: list[Problem]) -> ScoreRule:
    if not isinstance(data, Mapping):
        found.append(Problem(path, "definition.not_an_object"))
        data = {}
    shape.unknown_keys(data, KEYS, path, found)
    rule = data.get("rule")
    if rule not in RULES:
        found.append(Problem(f"{path}.rule", "score.unknown_rule", {"rule": rule}))
    flags = {}
    for key in ("prorate", "as_boolean"):
        flags[key] = data.get(key, False)
        if not isinstance(flags[key], bool):
            found.append(Problem(f"{path}.{key}", "definition.not_a_boolean"))
    return ScoreRule(
        name=shape.string(data.get("name"), f"{path}.name", found),
        rule=rule if rule in RULES else "",
        items=tuple(shape.string_list(data.get("items", []), f"{path}.items", found)),
        label=shape.texts(data.get("label", {}), f"{path}.label", found),
        min_answered=shape.count(data.get("min_answered"), f"{path}.min_answered", found),
        prorate=flags["prorate"] is True,
        decimals=shape.count(data.get("decimals"), f"{path}.decimals", found),
        choices=tuple(shape.string_list(data.get("choices", []), f"{path}.choices", found)),
        as_boolean=flags["as_boolean"] is True,
        value_set=shape.optional_string(data.get("value_set"), f"{path}.value_set", found),
        expression=shape.optional_string(data.get("expression"), f"{path}.expression", found),
    )


def dump_rule(rule: ScoreRule) -> dict:
    data: dict = {"name": rule.name, "rule": rule.rule}
    optional = {
        "items": list(rule.items),
        "label": dict(rule.label),
        "min_answered": rule.min_answered,
        "prorate": rule.prorate,
        "decimals": rule.decimals,
        "choices": list(rule.choices),
        "as_boolean": rule.as_boolean,
        "value_set": rule.value_set,
        "expression": rule.expression,
    }
    # Left out when at their default; `is` keeps a 0 (decimals, min_answered), which == False.
    return data | {
        key: value
        for key, value in optional.items()
        if value is not None and value is not False and value != [] and value != {}
    }


# --- Checks ------------------------------------------------------------------------------------

# The keys each rule uses; any other key set on a rule is reported rather than ignored.
USES = {
    "sum": {"items"},
    "mean": {"items", "min_answered", "prorate", "decimals"},
    "count": {"items", "choices", "min_answered", "as_boolean"},
    "lookup": {"items", "value_set"},
    "expression": {"expression", "decimals"},
}


def check_rule(rule: ScoreRule, path: str, items: Mapping[str, object]) -> list[Problem]:
    """The problems of one rule, given the instrument's items by name."""
    found = [
        Problem(f"{path}.{key}", "score.key_not_used", {"key": key, "rule": rule.rule})
        for key, value in dump_rule(rule).items()
        if key not in {"name", "rule", "label"} | USES.get(rule.rule, set()) and value is not None
    ]
    for i, name in enumerate(rule.items):
        item = items.get(name)
        if item is None:
            found.append(Problem(f"{path}.items[{i}]", "score.unknown_item", {"item": name}))
        elif rule.rule in ("sum", "mean") and not is_numeric(item):
            found.append(Problem(f"{path}.items[{i}]", "score.not_a_number", {"item": name}))
    if rule.rule in ("sum", "mean", "count") and not rule.items:
        found.append(Problem(f"{path}.items", "score.no_items"))
    if rule.min_answered is not None and not 1 <= rule.min_answered <= len(rule.items):
        found.append(Problem(f"{path}.min_answered", "score.min_answered_out_of_range"))
    if rule.decimals is not None and rule.decimals > MAX_DECIMALS:
        found.append(Problem(f"{path}.decimals", "score.too_many_decimals"))
    if rule.rule == "count" and not rule.choices:
        found.append(Problem(f"{path}.choices", "score.no_choices"))
    if rule.rule == "lookup":
        found.extend(_check_lookup(rule, path, items))
    if rule.rule == "expression":
        if rule.expression is None:
            found.append(Problem(f"{path}.expression", "score.no_expression"))
        else:
            found.extend(
                check_expression(rule.expression, f"{path}.expression", items, set(items), "")
            )
    return found


def _check_lookup(rule: ScoreRule, path: str, items: Mapping[str, object]) -> list[Problem]:
    found = []
    if not rule.value_set:
        found.append(Problem(f"{path}.value_set", "score.no_value_set"))
    if len(rule.items) != len(scoring.EQ5D_DIMENSIONS):
        found.append(Problem(f"{path}.items", "score.lookup_needs_five_dimensions"))
    for i, name in enumerate(rule.items):
        item = items.get(name)
        if item is not None and (item.type != "single_choice" or item.codes != ("1", "2", "3")):
            found.append(Problem(f"{path}.items[{i}]", "score.lookup_needs_levels_1_to_3"))
    return found


# --- Computing ---------------------------------------------------------------------------------


def compute_scores(
    definition, cleaned: Mapping[str, object], value_sets: Mapping[str, scoring.EQ5DValueSet]
) -> dict[str, object]:
    """Every score of a (valid) definition from cleaned answers (outcomes.instruments.answers);
    a missing score is None."""
    return {rule.name: compute(rule, cleaned, value_sets) for rule in definition.scores}


def compute(
    rule: ScoreRule, cleaned: Mapping[str, object], value_sets: Mapping[str, scoring.EQ5DValueSet]
) -> object:
    if rule.rule == "expression":
        return _rounded(as_number(evaluate(parse(rule.expression), cleaned)), rule.decimals)
    if rule.rule == "lookup":
        return _lookup(rule, cleaned, value_sets)
    values = [cleaned.get(name) for name in rule.items]
    answered = [v for v in values if _is_answer(v)]
    needed = len(rule.items) if rule.min_answered is None else rule.min_answered
    if len(answered) < needed:
        return None
    if rule.rule == "count":
        count = sum(1 for value in answered if _code(value) in rule.choices)
        return count > 0 if rule.as_boolean else count
    numbers = [as_number(_plain(value)) for value in answered]
    if rule.rule == "sum":
        return _whole(sum(numbers, Decimal(0)))
    mean = sum(numbers, Decimal(0)) / len(numbers)
    return _rounded(mean * len(rule.items) if rule.prorate else mean, rule.decimals)


def _lookup(rule, cleaned, value_sets) -> float | None:
    if rule.value_set not in value_sets:
        raise ScoreRuleError(f"value set {rule.value_set!r} was not supplied")
    levels = {}
    for dimension, name in zip(scoring.EQ5D_DIMENSIONS, rule.items, strict=True):
        value = cleaned.get(name)
        levels[dimension] = int(value) if _is_answer(value) else None
    return scoring.eq5d_index(scoring.eq5d_profile(levels), value_sets[rule.value_set])


def _is_answer(value: object) -> bool:
    """An answer, as opposed to None or a missing-data code (any other object)."""
    return isinstance(value, int | Decimal | str | tuple) or value is True or value is False


def _plain(value: object) -> object:
    return int(value) if isinstance(value, bool) else value


def _code(value: object) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def _whole(number: Decimal) -> int | Decimal:
    return int(number) if number == number.to_integral_value() else number


def _rounded(number: Decimal | None, decimals: int | None) -> Decimal | None:
    if number is None or decimals is None:
        return number
    return number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
