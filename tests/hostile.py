"""Hostile values for the URL fuzz test (tests/test_fuzz_urls.py), in turn, and the request
bodies made from a page's form with them."""

from __future__ import annotations

import itertools

# A number past every range: years, months, ids, counts, pages.
HUGE = "99999999999"
HOSTILE = (
    # numbers out of any range, negative, not numbers at all
    "99999999999",
    "-99999999999",
    "9" * 40,
    "-1",
    "0",
    "1e309",
    "NaN",
    "-inf",
    "1.5",
    "0x1F",
    "１２",  # fullwidth digits
    "٣",  # Arabic-Indic digit
    # long text
    "A" * 10_000,
    "Ø" * 10_000,
    # malformed and out-of-range dates and times
    "2024-02-30",
    "0000-00-00",
    "99999-12-31",
    "9999-12-31",
    "0001-01-01",
    "1900-01-01",
    "31/12/2024",
    "2024-13-01",
    "25:61",
    # unknown choices and ids
    "not-a-choice",
    "999999999999999999999",
    "1;2",
    "",
    " ",
    # odd unicode
    "\u202eevil",
    "🙂" * 3,
    "e\u0301",
    "\ufeff",
    "\u200b",
    "\uffff",
    "𝟘𝟙",
    # markup and paths
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%",
    "%00",
    "{{ 7*7 }}",
)
# Formset counts: negative, not numbers, absurd (TOTAL_FORMS is capped by Django at
# max_num + 1000 forms, which would only make the test slow).
FORM_COUNTS = {
    "TOTAL_FORMS": ("-1", "-99999999999", "abc", "", "1.5"),
    "INITIAL_FORMS": ("-1", "-99999999999", "abc", "", "99999999999", "1.5"),
}


class Values:
    """Hostile values in turn: each call continues where the last stopped."""

    def __init__(self, start: int = 0):
        self.counter = itertools.count(start)

    def text(self) -> str:
        return HOSTILE[next(self.counter) % len(HOSTILE)]

    def count(self, kind: str) -> str:
        choices = FORM_COUNTS[kind]
        return choices[next(self.counter) % len(choices)]


def _count_kind(name: str) -> str | None:
    for kind in FORM_COUNTS:
        if name.endswith(f"-{kind}"):
            return kind
    return None


def hostile_form(data: dict[str, list[str]], values: Values) -> dict[str, list[str]]:
    """Every field hostile, the formset counts too."""
    result = {}
    for name in data:
        kind = _count_kind(name)
        result[name] = [values.count(kind) if kind else values.text()]
    return result


def as_shown_but(data: dict[str, list[str]], values: Values, turn: int) -> list[dict]:
    """The form as shown with one field (in turn) hostile; with each formset's INITIAL_FORMS
    negative (which once re-inserted existing rows); and with one formset's TOTAL_FORMS (in
    turn) tampered."""
    shown = {name: list(v) for name, v in data.items()}
    bodies = []
    fields = sorted(name for name in data if not _count_kind(name))
    if fields:
        bodies.append({**shown, fields[turn % len(fields)]: [values.text()]})
    bodies += [{**shown, name: ["-1"]} for name in sorted(data) if name.endswith("-INITIAL_FORMS")]
    totals = sorted(name for name in data if name.endswith("-TOTAL_FORMS"))
    if totals:
        name = totals[turn % len(totals)]
        bodies.append({**shown, name: [values.count("TOTAL_FORMS")]})
    return bodies
