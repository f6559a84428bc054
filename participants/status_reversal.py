"""Reversing a status change entered in error (a withdrawal, loss or death recorded for the
wrong participant, say): which change may be reversed, and what the reversal restores.

Pure: plain values in, a frozen decision out, no Django. The service
(participants.services.status.status_change_reverse) locks the participant, reads its
changes and the visits they closed, calls `decide` and writes what it says.

The history stays append-only (ICH E6(R2) 4.9.3: a correction must not obscure the original
entry): the reversed change is kept and the reversal is a change of its own that names it.
Reversals undo changes one at a time, latest first, like an undo stack: only the latest
change still in effect can be reversed, and a reversal itself is never reversed (record a
new change instead), so the state to restore is always the one just before that change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

WITHDRAWN = "withdrawn"
# What a status change does to the visits still open (services.followup): "not required"
# on death or withdrawal from follow-up, "missed" on loss to follow-up.
CLOSED_BY_STATUS = ("missed", "not_required")

# Why a reversal is refused (the service words them for the user).
NOT_LATEST = "not_latest"  # not the latest change still in effect (or not this participant's)
ALREADY_REVERSED = "already_reversed"
IS_REVERSAL = "is_reversal"
STATUS_MOVED = "status_moved"  # the participant's status is no longer what the change set


@dataclass(frozen=True)
class Change:
    """A status change as stored, in the order they were recorded."""

    id: int
    from_status: str
    to_status: str
    effective_on: dt.date
    followup_allowed: bool | None  # for withdrawals: may follow-up data still be collected?
    reverses_id: int | None = None  # set on a reversal: the change it reverses


@dataclass(frozen=True)
class ClosedVisit:
    """A visit and what has happened to it since a status change closed it."""

    id: int
    outcome: str
    closed_by_id: int | None  # the status change that closed it, if one did
    recorded_since: bool  # anything recorded on it after that (an entry, another record)


@dataclass(frozen=True)
class Decision:
    """What a reversal writes, or why there is none (`refusal`, one of the codes above)."""

    refusal: str | None
    change_id: int | None = None
    from_status: str = ""
    to_status: str = ""
    effective_on: dt.date | None = None
    followup_allowed: bool = True
    status_changed_on: dt.date | None = None  # the participant's status date, restored
    reopen: tuple[int, ...] = ()  # visits to open again
    kept: tuple[int, ...] = ()  # visits the change closed, recorded since: left as they are


def effective(changes: Sequence[Change]) -> list[Change]:
    """The changes still in effect, oldest first: neither reversals nor reversed."""
    reversed_ids = {c.reverses_id for c in changes if c.reverses_id is not None}
    return [c for c in changes if c.reverses_id is None and c.id not in reversed_ids]


def reversible(changes: Sequence[Change]) -> Change | None:
    """The one change that may be reversed now: the latest still in effect."""
    in_effect = effective(changes)
    return in_effect[-1] if in_effect else None


def decide(
    *,
    changes: Sequence[Change],
    change_id: int,
    status: str,
    followup_allowed: bool,
    visits: Sequence[ClosedVisit],
) -> Decision:
    """Reverse change `change_id` of a participant whose `changes` (oldest first) brought
    them to `status` with `followup_allowed`; `visits` are the participant's visits.

    1. Only the latest change in effect may be reversed (see the module's docstring).
    2. The status restored is the one it changed from; the status date, the date of the
       change in effect before it (none if there is none).
    3. Follow-up: only a withdrawal changes it, so reversing a withdrawal restores what the
       withdrawal before it allowed (a first withdrawal: follow-up allowed); reversing any
       other change leaves it as it is.
    4. Visits the change closed ("missed", "not required") open again, unless something was
       recorded on them since; those are kept as they are and reported.
    """
    target = next((c for c in changes if c.id == change_id), None)
    if target is not None and target.reverses_id is not None:
        return Decision(IS_REVERSAL, change_id)
    if target is not None and any(c.reverses_id == change_id for c in changes):
        return Decision(ALREADY_REVERSED, change_id)
    in_effect = effective(changes)
    if target is None or not in_effect or in_effect[-1].id != change_id:
        return Decision(NOT_LATEST, change_id)
    if status != target.to_status:
        return Decision(STATUS_MOVED, change_id)
    earlier = in_effect[:-1]
    restored_followup = followup_allowed
    if target.to_status == WITHDRAWN:
        withdrawals = [c for c in earlier if c.to_status == WITHDRAWN]
        restored_followup = bool(withdrawals[-1].followup_allowed) if withdrawals else True
    closed = [v for v in visits if v.closed_by_id == change_id]
    reopen = tuple(v.id for v in closed if v.outcome in CLOSED_BY_STATUS and not v.recorded_since)
    return Decision(
        refusal=None,
        change_id=change_id,
        from_status=status,
        to_status=target.from_status,
        effective_on=target.effective_on,
        followup_allowed=restored_followup,
        status_changed_on=earlier[-1].effective_on if earlier else None,
        reopen=reopen,
        kept=tuple(v.id for v in closed if v.id not in reopen),
    )
