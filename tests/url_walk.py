"""Every URL pattern of the URLconf, read from the resolver when asked (so patterns added
later are included), and the paths that fill their parameters. Used by the URL fuzz test."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from django.contrib.admin.options import ModelAdmin
from django.urls import URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern

# Django's syntax for a route's parameters: <converter:name> or <name>.
ROUTE_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
# Regex patterns whose groups have no names: the names their values mean.
UNNAMED_GROUPS = {
    # django-simple-history: one historical version of an object.
    r"^([^/]+)/history/([^/]+)/$": ("object_id", "version_id"),
}


@dataclass(frozen=True)
class Param:
    name: str
    # The literal path segment before the parameter ("participants" in
    # trials/<code>/participants/<pk>/), which says what kind of object an id names.
    segment: str


@dataclass(frozen=True)
class Pattern:
    key: str  # the full route or regex, as written in the URLconf
    name: str | None  # namespaced, e.g. "admin:trial_trial_change"
    callback: Callable
    pieces: tuple  # literal text and Param, in order
    model_admin: ModelAdmin | None

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.pieces if isinstance(p, Param))

    @property
    def is_webhook(self) -> bool:
        """A public endpoint for another system (CSRF-exempt, no login)."""
        return getattr(self.callback, "csrf_exempt", False) and not getattr(
            self.callback, "login_required", True
        )

    def path(self, values: dict[str, str]) -> str:
        return "/" + "".join(
            quote(str(values[p.name]), safe="") if isinstance(p, Param) else p for p in self.pieces
        )


def _route_pieces(route: str) -> list:
    pieces, start = [], 0
    for match in ROUTE_PARAMETER.finditer(route):
        pieces.append(route[start : match.start()])
        pieces.append(match.group("name"))
        start = match.end()
    pieces.append(route[start:])
    return pieces


def _closing(regex: str, start: int) -> int:
    """The index of the parenthesis closing the group opened at `start`."""
    depth, i, in_class = 0, start, False
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced group in {regex!r}")


def _regex_pieces(regex: str) -> list:
    """Literal text and group names of a regex made of literals and capturing groups."""
    names = iter(UNNAMED_GROUPS.get(regex, ()))
    pieces, literal, i = [], "", 0
    while i < len(regex):
        char = regex[i]
        if char in "^$":
            i += 1
        elif char == "\\":
            literal += regex[i + 1]
            i += 2
        elif char == "(":
            named = re.match(r"\(\?P<(\w+)>", regex[i:])
            name = named.group(1) if named else next(names, None)
            if name is None:
                raise ValueError(f"unnamed group in {regex!r}: add it to UNNAMED_GROUPS")
            pieces += [literal, name]
            literal, i = "", _closing(regex, i) + 1
        else:
            literal += char
            i += 1
    return [*pieces, literal]


def _model_admin(callback) -> ModelAdmin | None:
    found = getattr(callback, "model_admin", None)
    while found is None and callback is not None:
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, ModelAdmin):
            return owner
        callback = getattr(callback, "__wrapped__", None)
    return found


def patterns() -> list[Pattern]:
    """Every leaf pattern of the URLconf, in its order."""
    found = []

    def walk(resolver: URLResolver, parts: tuple, namespace: str) -> None:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry, (*parts, entry.pattern), ns)
                continue
            all_parts = (*parts, entry.pattern)
            found.append(
                Pattern(
                    key="".join(str(p) for p in all_parts),
                    name=f"{namespace}{entry.name}" if entry.name else None,
                    callback=entry.callback,
                    pieces=_all_pieces(all_parts),
                    model_admin=_model_admin(entry.callback),
                )
            )

    walk(get_resolver(), (), "")
    return found


def _all_pieces(parts: tuple) -> tuple:
    """Literal text and Params of the whole route (the includes' prefixes, then the leaf)."""
    pieces, text = [], ""
    for part in parts:
        if isinstance(part, RoutePattern):
            raw = _route_pieces(str(part))
        elif isinstance(part, RegexPattern):
            raw = _regex_pieces(part.regex.pattern)
        else:
            raise TypeError(f"unknown pattern type {type(part)}")
        for i, piece in enumerate(raw):
            if i % 2 == 0:  # literal, name, literal, ..., literal
                text += piece
                continue
            segments = [s for s in text.split("/") if s]
            pieces += [text, Param(piece, segments[-1] if segments else "")]
            text = ""
    return tuple(p for p in [*pieces, text] if p != "")


def resolves_to(path: str, pattern: Pattern) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.func is pattern.callback


def changelist_params(model_admin: ModelAdmin) -> set[str]:
    """Query parameters of an admin list its page may not show: the date drill-down's
    month and day, and the admin's own flags."""
    params = {"_to_field", "_popup", "_changelist_filters"}
    if model_admin.date_hierarchy:
        params |= {f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")}
    if model_admin.search_fields:
        params.add("q")
    return params
