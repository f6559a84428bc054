"""Scoring rules of the trial's instruments, as pure functions of plain values (no Django).

Each function takes the responses as entered and returns the score, or None when the
score is missing under the instrument's rule. Out-of-range input raises ScoringError: a
form should never let it through, so reaching here with it is a bug, not a missing value.

- Pain: current low back pain on a 0–10 numeric rating scale; the score is the response.
- Roland–Morris Disability Questionnaire (RMDQ): 23 yes/no items; score = number of "yes",
  0–23 (Roland & Morris, Spine 1983;8:141–4). Missing-item rule used here: the score is
  missing when any item is unanswered. (Published pro-rating rules exist; we do not impute,
  so an analysis sees exactly what was answered.)
- EQ-5D-3L: five dimensions (mobility, self-care, usual activities, pain/discomfort,
  anxiety/depression) at levels 1–3, plus a 0–100 visual analogue scale. The index comes
  from a value set stored as data (see EQ5D_UK_TTO_DOLAN_1997 and outcomes.instruments.models).
- Global assessment: a 7-point transition question; "improved" means much better or better.

The instruments' wording (RMDQ_ITEM_WORDING, EQ5D_LEVEL_NAMES, GLOBAL_CHOICES) is English,
the source language, marked with gettext_noop so that `makemessages` collects it; the forms
translate it when they show it (outcomes.instruments.forms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def gettext_noop(message: str) -> str:
    """Mark a string for translation without translating it (as django.utils.translation's
    function of the same name, which `makemessages` looks for), keeping this module free of
    Django."""
    return message


class ScoringError(ValueError):
    """Input that no scoring rule accepts (wrong length, out of range, wrong type)."""


# --- Pain NRS ----------------------------------------------------------------------------------


def pain_nrs(value: int | None) -> int | None:
    """The 0–10 numeric rating: the response itself, or None when not answered."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ScoringError(f"pain must be a whole number 0–10, got {value!r}")
    return value


# --- Roland–Morris -------------------------------------------------------------------------------

RMDQ_ITEMS = 23

# The statements of the 23-item RMDQ in the order of the paper form, in the English wording
# of Roland & Morris (Spine 1983;8:141-4); Roland & Fairbank (Spine 2000;25:3115-24) state
# that no permission is needed to use the questionnaire in that form. The 23-item version
# leaves out one of the original 24 statements; here it is the last, "I stay in bed most of
# the time because of my back", so items 1-23 keep their original numbers. Check this
# against the trial's own paper form: the entry page shows each item's number with its
# statement, so a mismatch is visible.
RMDQ_ITEM_WORDING = (
    gettext_noop("I stay at home most of the time because of my back."),
    gettext_noop("I change position frequently to try and get my back comfortable."),
    gettext_noop("I walk more slowly than usual because of my back."),
    gettext_noop(
        "Because of my back I am not doing any of the jobs that I usually do around the house."
    ),
    gettext_noop("Because of my back, I use a handrail to get upstairs."),
    gettext_noop("Because of my back, I lie down to rest more often."),
    gettext_noop("Because of my back, I have to hold on to something to get out of an easy chair."),
    gettext_noop("Because of my back, I try to get other people to do things for me."),
    gettext_noop("I get dressed more slowly than usual because of my back."),
    gettext_noop("I only stand for short periods of time because of my back."),
    gettext_noop("Because of my back, I try not to bend or kneel down."),
    gettext_noop("I find it difficult to get out of a chair because of my back."),
    gettext_noop("My back is painful almost all the time."),
    gettext_noop("I find it difficult to turn over in bed because of my back."),
    gettext_noop("My appetite is not very good because of my back pain."),
    gettext_noop(
        "I have trouble putting on my socks (or stockings) because of the pain in my back."
    ),
    gettext_noop("I only walk short distances because of my back."),
    gettext_noop("I sleep less well because of my back."),
    gettext_noop("Because of my back pain, I get dressed with help from someone else."),
    gettext_noop("I sit down for most of the day because of my back."),
    gettext_noop("I avoid heavy jobs around the house because of my back."),
    gettext_noop(
        "Because of my back pain, I am more irritable and bad tempered with people than usual."
    ),
    gettext_noop("Because of my back, I go upstairs more slowly than usual."),
)


def rmdq(items: Sequence[bool | None]) -> int | None:
    """Number of items answered "yes" (0–23); None when any item is unanswered."""
    try:
        items = list(items)
    except TypeError as exc:
        raise ScoringError("the RMDQ items must be a sequence of answers") from exc
    if len(items) != RMDQ_ITEMS:
        raise ScoringError(f"the RMDQ has {RMDQ_ITEMS} items, got {len(items)}")
    if any(item is not None and not isinstance(item, bool) for item in items):
        raise ScoringError("RMDQ items are yes (True), no (False) or unanswered (None)")
    if any(item is None for item in items):
        return None
    return sum(items)


# --- EQ-5D-3L ----------------------------------------------------------------------------------

EQ5D_DIMENSIONS = ("MO", "SC", "UA", "PD", "AD")
EQ5D_DIMENSION_LABELS = {
    "MO": gettext_noop("Mobility"),
    "SC": gettext_noop("Self-care"),
    "UA": gettext_noop("Usual activities"),
    "PD": gettext_noop("Pain/discomfort"),
    "AD": gettext_noop("Anxiety/depression"),
}
# The levels are named, not worded: the questionnaire's own statements per dimension are the
# EuroQol Research Foundation's (EQ-5D-3L; EuroQol Group, Health Policy 1990;16:199-208), used
# under a licence each trial registers with EuroQol, so an open-source default must not ship
# them. These are the level names the EQ-5D-3L literature uses for every dimension.
EQ5D_LEVEL_NAMES = (
    gettext_noop("No problems"),
    gettext_noop("Some problems"),
    gettext_noop("Extreme problems"),
)


@dataclass(frozen=True)
class EQ5DValueSet:
    """An additive EQ-5D-3L value set with the N3 term (the form of the UK TTO model).

    index = 1 − constant (if any dimension is above level 1)
              − Σ decrement[dimension][level]
              − n3 (if any dimension is at level 3)
    """

    code: str
    constant: float
    n3: float
    decrements: Mapping[str, Mapping[int, float]]  # {"MO": {2: 0.069, 3: 0.314}, ...}

    @classmethod
    def from_dict(cls, code: str, data: Mapping) -> EQ5DValueSet:
        """Build from stored data: {"constant", "n3", "decrements": {"MO": {"2": x, "3": y}}}."""
        try:
            decrements = {
                dim: {
                    int(level): _coefficient(value)
                    for level, value in data["decrements"][dim].items()
                }
                for dim in EQ5D_DIMENSIONS
            }
            value_set = cls(
                code, _coefficient(data["constant"]), _coefficient(data["n3"]), decrements
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScoringError(f"value set {code!r} is incomplete: {exc}") from exc
        for dim in EQ5D_DIMENSIONS:
            if set(decrements[dim]) != {2, 3}:
                raise ScoringError(f"value set {code!r}: {dim} needs decrements for levels 2 and 3")
        return value_set


def _coefficient(value) -> float:
    """A value-set coefficient: a finite, non-negative number (a decrement), not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a finite non-negative number")
    return number


# Dolan P. Modeling valuations for EuroQol health states. Med Care 1997;35:1095–108
# (UK time trade-off, N3 model). Stored as data by outcomes' migrations; kept here too so
# the pure module can be tested against the published anchor values.
EQ5D_UK_TTO_CITATION = (
    "Dolan P. Modeling valuations for EuroQol health states. Med Care 1997;35(11):1095-1108. "
    "UK general population, time trade-off, N3 model."
)
EQ5D_UK_TTO_DOLAN_1997 = {
    "constant": 0.081,
    "n3": 0.269,
    "decrements": {
        "MO": {"2": 0.069, "3": 0.314},
        "SC": {"2": 0.104, "3": 0.214},
        "UA": {"2": 0.036, "3": 0.094},
        "PD": {"2": 0.123, "3": 0.386},
        "AD": {"2": 0.071, "3": 0.236},
    },
}


def eq5d_profile(levels: Mapping[str, int | None]) -> str | None:
    """The 5-digit health state, e.g. "11223"; None when any dimension is unanswered."""
    values = [levels.get(dim) for dim in EQ5D_DIMENSIONS]
    # Check what was answered before deciding it is incomplete: a bad level is an error
    # even when another dimension is missing.
    for dim, value in zip(EQ5D_DIMENSIONS, values, strict=True):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value not in (1, 2, 3):
            raise ScoringError(f"EQ-5D-3L {dim} must be 1, 2 or 3, got {value!r}")
    if any(v is None for v in values):
        return None
    return "".join(str(v) for v in values)


def eq5d_index(profile: str | None, value_set: EQ5DValueSet) -> float | None:
    """The index of a health state under a value set, rounded to 3 decimals."""
    if profile is None:
        return None
    if not isinstance(profile, str) or len(profile) != 5 or any(ch not in "123" for ch in profile):
        raise ScoringError(f"an EQ-5D-3L health state is 5 digits 1–3, got {profile!r}")
    levels = [int(ch) for ch in profile]
    if all(level == 1 for level in levels):
        return 1.0
    index = 1.0 - value_set.constant
    for dim, level in zip(EQ5D_DIMENSIONS, levels, strict=True):
        if level > 1:
            index -= value_set.decrements[dim][level]
    if 3 in levels:
        index -= value_set.n3
    return round(index, 3)


def eq5d_vas(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ScoringError(f"the EQ VAS is a whole number 0–100, got {value!r}")
    return value


# --- Global assessment ------------------------------------------------------------------------

GLOBAL_QUESTION = gettext_noop("Compared with the start of the trial, the back pain is")
GLOBAL_CHOICES = (
    (1, gettext_noop("Much better")),
    (2, gettext_noop("Better")),
    (3, gettext_noop("Slightly better")),
    (4, gettext_noop("Unchanged")),
    (5, gettext_noop("Slightly worse")),
    (6, gettext_noop("Worse")),
    (7, gettext_noop("Much worse")),
)
GLOBAL_IMPROVED = frozenset({1, 2})


def global_improved(answer: int | None) -> bool | None:
    """True for much better or better, False for the other five answers, None if missing."""
    if answer is None:
        return None
    if isinstance(answer, bool) or not isinstance(answer, int) or not 1 <= answer <= 7:
        raise ScoringError(f"the global assessment is 1–7, got {answer!r}")
    return answer in GLOBAL_IMPROVED
