"""An instrument definition as data: frozen dataclasses, loaded from and dumped to a plain dict
(our JSON format), with validation that reports every problem at once (no Django).

The format, with the keys a dump leaves out when they hold their default:

    {"name": "rmdq", "version": "1", "description": {"en": "..."}, "languages": ["en"],
     "citation": "...",                                    # optional
     "items": [{"name": "item_1", "type": "yes_no", "label": {"en": "..."},
                "help": {"en": "..."},                      # optional
                "required": true,                           # default false
                "show_if": "[other] = '1'",                 # optional, an expression
                "calculation": "sum([a], [b])",             # calculated items only
                "min": 0, "max": 10,                        # integer and decimal
                "precision": 1,                             # decimal: places after the point
                "max_length": 200,                          # text
                "choices": [{"code": "1", "label": {"en": "..."}}],
                "missing_codes": ["refused", "dont_know"]}],
     "scores": [...]}                                       # outcomes.instruments.score_rules

dump(load(d)) == d for every valid d in this form; the semantic checks live in
outcomes.instruments.definition_checks, answers in outcomes.instruments.answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from outcomes.instruments import definition_checks, score_rules
from outcomes.instruments import problems as shape
from outcomes.instruments.definition_checks import ITEM_TYPES
from outcomes.instruments.problems import Problem


@dataclass(frozen=True)
class Choice:
    code: str
    label: Mapping[str, str]


@dataclass(frozen=True)
class Item:
    name: str
    type: str
    label: Mapping[str, str]
    help: Mapping[str, str] = field(default_factory=dict)
    required: bool = False
    show_if: str | None = None
    calculation: str | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    precision: int | None = None
    max_length: int | None = None
    choices: tuple[Choice, ...] = ()
    missing_codes: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(choice.code for choice in self.choices)


@dataclass(frozen=True)
class Definition:
    name: str
    version: str
    description: Mapping[str, str]
    languages: tuple[str, ...]
    items: tuple[Item, ...]
    scores: tuple[score_rules.ScoreRule, ...] = ()
    citation: str = ""

    def item(self, name: str) -> Item | None:
        return next((item for item in self.items if item.name == name), None)


class DefinitionInvalid(ValueError):
    """A definition that cannot be used; `problems` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) in the instrument definition")
        self.problems = problems


# --- Loading -----------------------------------------------------------------------------------


def load(data: object) -> Definition:
    """The definition a dict describes; raise DefinitionInvalid listing all its problems."""
    found: list[Problem] = []
    definition = _load_definition(data, found)
    if definition is not None:
        # A part whose shape is wrong is reported once, not again by the checks of its meaning.
        wrong = tuple(p.path for p in found)
        found.extend(
            problem
            for problem in definition_checks.check(definition)
            if not any(_within(problem.path, path) for path in wrong)
        )
    if found or definition is None:
        raise DefinitionInvalid(found)
    return definition


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith((f"{outer}.", f"{outer}["))


def problems(data: object) -> list[Problem]:
    """Everything wrong with a dict as a definition; empty when load() accepts it."""
    try:
        load(data)
    except DefinitionInvalid as invalid:
        return invalid.problems
    return []


def _load_definition(data: object, found: list[Problem]) -> Definition | None:
    if not isinstance(data, Mapping):
        found.append(Problem("", "definition.not_an_object"))
        return None
    shape.unknown_keys(
        data,
        {"name", "version", "description", "languages", "citation"} | {"items", "scores"},
        "",
        found,
    )
    languages = shape.string_list(data.get("languages"), "languages", found)
    if not languages:
        found.append(Problem("languages", "definition.no_language"))
    items_data = data.get("items")
    if not isinstance(items_data, list):
        found.append(Problem("items", "definition.not_a_list"))
        items_data = []
    scores_data = data.get("scores", [])
    if not isinstance(scores_data, list):
        found.append(Problem("scores", "definition.not_a_list"))
        scores_data = []
    return Definition(
        name=shape.string(data.get("name"), "name", found),
        version=shape.string(data.get("version"), "version", found),
        description=shape.texts(data.get("description", {}), "description", found),
        languages=tuple(languages),
        items=tuple(_load_item(d, f"items[{i}]", found) for i, d in enumerate(items_data)),
        scores=tuple(
            score_rules.load_rule(d, f"scores[{i}]", found) for i, d in enumerate(scores_data)
        ),
        citation=shape.string(data.get("citation", ""), "citation", found, allow_empty=True),
    )


ITEM_KEYS = {"name", "type", "label", "help", "required", "show_if", "calculation", "min", "max"}
ITEM_KEYS |= {"precision", "max_length", "choices", "missing_codes"}


def _load_item(data: object, path: str, found: list[Problem]) -> Item:
    if not isinstance(data, Mapping):
        found.append(Problem(path, "definition.not_an_object"))
        data = {}
    shape.unknown_keys(data, ITEM_KEYS, path, found)
    item_type = data.get("type")
    if item_type not in ITEM_TYPES:
        found.append(Problem(f"{path}.type", "item.unknown_type", {"type": item_type}))
    choices = data.get("choices", [])
    if not isinstance(choices, list):
        found.append(Problem(f"{path}.choices", "definition.not_a_list"))
        choices = []
    required = data.get("required", False)
    if not isinstance(required, bool):
        found.append(Problem(f"{path}.required", "definition.not_a_boolean"))
    return Item(
        name=shape.string(data.get("name"), f"{path}.name", found),
        type=item_type if item_type in ITEM_TYPES else "",
        label=shape.texts(data.get("label", {}), f"{path}.label", found),
        help=shape.texts(data.get("help", {}), f"{path}.help", found),
        required=required is True,
        show_if=shape.optional_string(data.get("show_if"), f"{path}.show_if", found),
        calculation=shape.optional_string(data.get("calculation"), f"{path}.calculation", found),
        minimum=_number(data.get("min"), f"{path}.min", found),
        maximum=_number(data.get("max"), f"{path}.max", found),
        precision=shape.count(data.get("precision"), f"{path}.precision", found),
        max_length=shape.count(data.get("max_length"), f"{path}.max_length", found),
        choices=tuple(
            _load_choice(c, f"{path}.choices[{i}]", found) for i, c in enumerate(choices)
        ),
        missing_codes=tuple(
            shape.string_list(data.get("missing_codes", []), f"{path}.missing_codes", found)
        ),
    )


def _load_choice(data: object, path: str, found: list[Problem]) -> Choice:
    if not isinstance(data, Mapping):
        found.append(Problem(path, "definition.not_an_object"))
        data = {}
    shape.unknown_keys(data, {"code", "label"}, path, found)
    return Choice(
        code=shape.string(data.get("code"), f"{path}.code", found),
        label=shape.texts(data.get("label", {}), f"{path}.label", found),
    )


def _number(value: object, path: str, found: list[Problem]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        found.append(Problem(path, "definition.not_a_number"))
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        found.append(Problem(path, "definition.not_a_number"))
        return None
    return number


# --- Dumping -----------------------------------------------------------------------------------


def dump(definition: Definition) -> dict:
    """The plain dict of a definition (JSON-ready), leaving out keys that hold their default."""
    data = {
        "name": definition.name,
        "version": definition.version,
        "description": dict(definition.description),
        "languages": list(definition.languages),
    }
    if definition.citation:
        data["citation"] = definition.citation
    data["items"] = [dump_item(item) for item in definition.items]
    data["scores"] = [score_rules.dump_rule(rule) for rule in definition.scores]
    return data


def dump_item(item: Item) -> dict:
    data: dict = {"name": item.name, "type": item.type, "label": dict(item.label)}
    if item.help:
        data["help"] = dict(item.help)
    if item.required:
        data["required"] = True
    optional = {
        "show_if": item.show_if,
        "calculation": item.calculation,
        "min": _plain_number(item.minimum),
        "max": _plain_number(item.maximum),
        "precision": item.precision,
        "max_length": item.max_length,
    }
    data |= {key: value for key, value in optional.items() if value is not None}
    if item.choices:
        data["choices"] = [{"code": c.code, "label": dict(c.label)} for c in item.choices]
    if item.missing_codes:
        data["missing_codes"] = list(item.missing_codes)
    return data


def _plain_number(value: Decimal | None) -> int | float | None:
    """A JSON number: whole numbers as int, so 10 dumps as 10, not 10.0."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)
