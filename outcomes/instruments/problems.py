"""A problem found in an instrument definition or in answers to it (no Django).

Each problem is a path to the offending part (`items[3].choices[1].code`, or an item's name
for an answer), a message key and its parameters. The pure modules build no sentences: the
shell that shows a problem translates the key (outcomes.instruments forms and pages, later).

The readers below check the shape of one value of a definition dict, report a problem when it
is wrong and return a harmless default, so that loading goes on and finds every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    path: str
    key: str
    params: Mapping[str, object] = field(default_factory=dict)


def unknown_keys(data: Mapping, known: set[str], path: str, found: list[Problem]) -> None:
    for key in data:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            found.append(Problem(where, "definition.unknown_key", {"key": key}))


def string(value: object, path: str, found: list[Problem], allow_empty: bool = False) -> str:
    if not isinstance(value, str) or not (allow_empty or value.strip()):
        found.append(Problem(path, "definition.not_a_string"))
        return ""
    return value


def optional_string(value: object, path: str, found: list[Problem]) -> str | None:
    return None if value is None else string(value, path, found)


def string_list(value: object, path: str, found: list[Problem]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        found.append(Problem(path, "definition.not_a_list_of_strings"))
        return []
    return value


def texts(value: object, path: str, found: list[Problem]) -> dict[str, str]:
    """Text per language: {"en": "...", "da": "..."}."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        found.append(Problem(path, "definition.not_texts_per_language"))
        return {}
    return dict(value)


def count(value: object, path: str, found: list[Problem]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        found.append(Problem(path, "definition.not_a_count"))
        return None
    return value
