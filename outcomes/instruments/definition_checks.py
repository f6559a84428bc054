"""What makes an instrument definition valid (no Django): the item types, the missing-data codes,
the variable-name rules, and `check(definition)`, which returns every problem at once.

The definition's dataclasses and its dict format are in outcomes.instruments.definition.
"""

from __future__ import annotations

import re

from outcomes.instruments import score_rules
from outcomes.instruments.expression_checks import check_expression
from outcomes.instruments.problems import Problem

ITEM_TYPES = (
    "integer",
    "decimal",
    "single_choice",
    "multiple_choice",
    "yes_no",
    "date",
    "time",
    "text",
    "vas",  # visual analogue scale, a whole number 0-100
    "calculated",
    "descriptive",  # a section header or explanatory text: no answer
)
# Why an answer is missing, stored in place of a value. "not_asked" is given by the system to an
# item its show-if hides; an item may offer the others to the respondent (the reasons of CDISC
# CDASH's "not done" / "not applicable" / "unknown").
MISSING_CODES = ("not_asked", "refused", "dont_know", "not_applicable")
OFFERED_MISSING_CODES = MISSING_CODES[1:]

# A variable name that Stata, SPSS and R all accept: an ASCII letter, then letters, digits or
# underscores, at most 32 characters (Stata's limit; SPSS allows 64, R more).
VARIABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\Z")
# Reserved words, compared without case (SPSS ignores case; a name differing from a reserved
# word only in case would confuse readers of the other packages' code anyway).
STATA_RESERVED = {"byte", "double", "float", "if", "in", "int", "long", "strl", "using", "with"}
# Stata also reserves _all, _b, _coef, _cons, _n, _N, _pi, _pred, _rc and _skip, which the
# letter-first rule already excludes, and str1 ... str2045 (the string storage types):
STATA_RESERVED_PATTERN = re.compile(r"str[0-9]+\Z", re.IGNORECASE)
SPSS_RESERVED = {"all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with"}
R_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "true"}
R_RESERVED |= {"false", "null", "inf", "nan", "na", "na_integer_", "na_real_", "na_character_"}
R_RESERVED |= {"na_complex_", "in"}
RESERVED_WORDS = frozenset(STATA_RESERVED | SPSS_RESERVED | R_RESERVED)

CHOICE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,32}\Z")  # as `[item(code)]` can reference it
NUMERIC_TYPES = ("integer", "decimal")
MAX_PRECISION = 10
MAX_TEXT_LENGTH = 10_000


def variable_name_problem(name: str) -> str | None:
    """The message key of what is wrong with a variable name, or None when it is valid."""
    if not VARIABLE_NAME.match(name):
        return "item.name_invalid"
    lowered = name.lower()
    if lowered in RESERVED_WORDS or STATA_RESERVED_PATTERN.match(name):
        return "item.name_reserved"
    return None


def check(definition) -> list[Problem]:
    """Every problem of a definition whose shape is right (outcomes.instruments.definition)."""
    found = []
    if variable_name_problem(definition.name):
        found.append(Problem("name", "definition.name_invalid"))
    for language in definition.description:
        if language not in definition.languages:
            found.append(
                Problem("description", "definition.unknown_language", {"language": language})
            )
    seen: dict[str, int] = {}
    earlier: dict[str, object] = {}
    known = {item.name for item in definition.items}
    for i, item in enumerate(definition.items):
        path = f"items[{i}]"
        key = variable_name_problem(item.name)
        if key:
            found.append(Problem(f"{path}.name", key, {"name": item.name}))
        elif item.name.lower() in seen:
            found.append(
                Problem(f"{path}.name", "item.name_duplicate", {"first": seen[item.name.lower()]})
            )
        seen.setdefault(item.name.lower(), i)
        found.extend(_check_item(item, path, definition.languages))
        for key in ("show_if", "calculation"):
            text = getattr(item, key)
            if text is not None:
                found.extend(check_expression(text, f"{path}.{key}", earlier, known, item.name))
        earlier[item.name] = item
    found.extend(_check_scores(definition, seen))
    return found


def _check_item(item, path: str, languages: tuple[str, ...]) -> list[Problem]:
    found = _check_texts(item.label, f"{path}.label", languages, required=True)
    found += _check_texts(item.help, f"{path}.help", languages, required=False)
    kind = item.type
    if not kind:  # an unknown type, already reported: which keys it allows is unknown too
        return found
    allowed = {
        "min": kind in NUMERIC_TYPES,
        "max": kind in NUMERIC_TYPES,
        "precision": kind == "decimal",
        "max_length": kind == "text",
        "choices": kind in ("single_choice", "multiple_choice"),
        "calculation": kind == "calculated",
        "missing_codes": kind not in ("calculated", "descriptive"),
        "required": kind not in ("calculated", "descriptive"),
    }
    present = {
        "min": item.minimum is not None,
        "max": item.maximum is not None,
        "precision": item.precision is not None,
        "max_length": item.max_length is not None,
        "choices": bool(item.choices),
        "calculation": item.calculation is not None,
        "missing_codes": bool(item.missing_codes),
        "required": item.required,
    }
    for key, is_present in present.items():
        if is_present and not allowed[key]:
            found.append(Problem(f"{path}.{key}", "item.key_not_for_type", {"type": kind}))
        elif allowed[key] and not is_present and key in ("precision", "choices", "calculation"):
            found.append(Problem(f"{path}.{key}", "item.key_needed_for_type", {"type": kind}))
    if item.minimum is not None and item.maximum is not None and item.minimum > item.maximum:
        found.append(Problem(f"{path}.max", "item.max_below_min"))
    if kind == "integer":
        for key, bound in (("min", item.minimum), ("max", item.maximum)):
            if bound is not None and bound != bound.to_integral_value():
                found.append(Problem(f"{path}.{key}", "item.bound_not_whole"))
    if item.precision is not None and item.precision > MAX_PRECISION:
        found.append(Problem(f"{path}.precision", "item.precision_too_large"))
    if item.max_length is not None and not 1 <= item.max_length <= MAX_TEXT_LENGTH:
        found.append(Problem(f"{path}.max_length", "item.max_length_out_of_range"))
    found += _check_choices(item, path, languages)
    found += _check_missing_codes(item, path)
    return found


def _check_texts(texts, path: str, languages, *, required: bool) -> list[Problem]:
    found = [
        Problem(path, "definition.unknown_language", {"language": language})
        for language in texts
        if language not in languages
    ]
    if required:
        found += [
            Problem(f"{path}.{language}", "definition.text_missing", {"language": language})
            for language in languages
            if not texts.get(language, "").strip()
        ]
    return found


def _check_choices(item, path: str, languages) -> list[Problem]:
    found, seen = [], set()
    for j, choice in enumerate(item.choices):
        where = f"{path}.choices[{j}]"
        if not CHOICE_CODE.match(choice.code):
            found.append(Problem(f"{where}.code", "choice.code_invalid", {"code": choice.code}))
        elif choice.code in seen:
            found.append(Problem(f"{where}.code", "choice.code_duplicate", {"code": choice.code}))
        seen.add(choice.code)
        found += _check_texts(choice.label, f"{where}.label", languages, required=True)
    return found


def _check_missing_codes(item, path: str) -> list[Problem]:
    found, seen = [], set()
    for j, code in enumerate(item.missing_codes):
        where = f"{path}.missing_codes[{j}]"
        if code not in OFFERED_MISSING_CODES:
            found.append(Problem(where, "item.missing_code_unknown", {"code": code}))
        elif code in seen:
            found.append(Problem(where, "item.missing_code_duplicate", {"code": code}))
        elif code in item.codes:
            found.append(Problem(where, "item.missing_code_is_a_choice", {"code": code}))
        seen.add(code)
    return found


def _check_scores(definition, item_names: dict[str, int]) -> list[Problem]:
    found, seen = [], set()
    items = {item.name: item for item in definition.items}
    for i, rule in enumerate(definition.scores):
        path = f"scores[{i}]"
        key = variable_name_problem(rule.name)
        if key:
            found.append(Problem(f"{path}.name", key, {"name": rule.name}))
        elif rule.name.lower() in seen or rule.name.lower() in item_names:
            # Scores and items share the export's columns, so their names must differ too.
            found.append(Problem(f"{path}.name", "score.name_duplicate", {"name": rule.name}))
        seen.add(rule.name.lower())
        found.extend(score_rules.check_rule(rule, path, items))
    return found
