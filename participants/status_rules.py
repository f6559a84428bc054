"""A participant's status and follow-up: which status changes are allowed, when a visit's
outcomes may be entered, and what a status change writes or why it is refused.

Pure: plain values in, plain values or a frozen decision out, no Django. The services
(participants.services.followup, outcomes.instruments.services) apply these rules; the pages
get their answers as booleans, so a button is shown exactly when the service would accept its
action.
Everyone randomized stays in the intention-to-treat population whatever their status
(ICH E9 5.2.1); a status only records what happened to them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ENROLLED = "enrolled"
ACTIVE = "active"
WITHDRAWN = "withdrawn"
LOST = "lost"
DECEASED = "deceased"
COMPLETED = "completed"
STATUSES = (ENROLLED, ACTIVE, WITHDRAWN, LOST, DECEASED, COMPLETED)

# Visit outcomes (participants.models.Visit.Outcome).
OPEN = "open"
VISIT_COMPLETED = "completed"
MISSED = "missed"
NOT_REQUIRED = "not_required"

# Which status changes make sense, from each status.
ALLOWED_CHANGES: dict[str, set[str]] = {
    ENROLLED: {WITHDRAWN},
    ACTIVE: {WITHDRAWN, LOST, DECEASED, COMPLETED},
    LOST: {ACTIVE, WITHDRAWN, DECEASED},
    WITHDRAWN: {DECEASED},
    COMPLETED: {DECEASED},
    DECEASED: set(),
}


def allowed_changes(*, status: str, randomized: bool, followup_allowed: bool) -> set[str]:
    """The statuses a participant may move to. Before randomization only withdrawal (and
    nothing after it: the follow-up statuses need a randomization); a participant withdrawn
    with follow-up allowed may later refuse it (withdrawn → withdrawn)."""
    if not randomized:
        return set(ALLOWED_CHANGES[ENROLLED]) if status == ENROLLED else set()
    allowed = set(ALLOWED_CHANGES[status])
    if status == WITHDRAWN and followup_allowed:
        allowed.add(WITHDRAWN)
    return allowed


def in_followup(*, status: str, randomized: bool, followup_allowed: bool) -> bool:
    """Visits can be recorded: randomized, and neither withdrawn from follow-up nor dead."""
    return randomized and followup_allowed and status != DECEASED


def outcomes_enterable(*, in_followup: bool, visit_outcome: str) -> bool:
    """Outcome data may be entered (or corrected) for a visit: the participant is in
    follow-up and the visit is open or attended, not recorded as missed or not required."""
    return in_followup and visit_outcome not in (MISSED, NOT_REQUIRED)


# --- A status change ---------------------------------------------------------------------------

# Why a status change is refused; the service words each for the field named.
UNKNOWN_STATUS = "unknown_status"
ALREADY = "already"
NOT_ALLOWED = "not_allowed"
NO_REASON = "no_reason"
IN_FUTURE = "in_future"
BEFORE_ENROLLMENT = "before_enrollment"
BEFORE_PREVIOUS_CHANGE = "before_previous_change"
DEATH_BEFORE_VISIT = "death_before_visit"
FOLLOWUP_UNSAID = "followup_unsaid"
VISITS_OPEN = "visits_open"
REFUSAL_FIELDS = {
    UNKNOWN_STATUS: "to_status",
    ALREADY: "to_status",
    NOT_ALLOWED: "to_status",
    NO_REASON: "reason",
    IN_FUTURE: "effective_on",
    BEFORE_ENROLLMENT: "effective_on",
    BEFORE_PREVIOUS_CHANGE: "effective_on",
    DEATH_BEFORE_VISIT: "effective_on",
    FOLLOWUP_UNSAID: "followup_allowed",
    VISITS_OPEN: "to_status",
}


@dataclass(frozen=True)
class Participant:
    """What a status change needs to know about the participant, read under its lock."""

    status: str
    randomized: bool
    followup_allowed: bool
    earliest: dt.date  # randomization date, or before randomization the consent date
    status_changed_on: dt.date | None
    last_attended_on: dt.date | None = None  # needed for a death only
    open_visits: int = 0  # needed for completion only


@dataclass(frozen=True)
class StatusChangeDecision:
    """What a status change writes, or why there is none (`refusal`, one of the codes above)."""

    refusal: str | None
    to_status: str = ""
    # The participant's follow-up after the change, and the change row's own record of it
    # (None unless it is a withdrawal).
    followup_allowed: bool = True
    change_followup_allowed: bool | None = None
    # The participant's open visits the change closes: as `close_as` ("" = none), and for a
    # loss only those whose window closed before `close_before`.
    close_as: str = ""
    close_before: dt.date | None = None

    @property
    def field(self) -> str | None:
        return REFUSAL_FIELDS.get(self.refusal) if self.refusal else None


def _refusal(
    p: Participant,
    *,
    to_status: str,
    effective_on: dt.date,
    reason: str,
    followup: bool | None,
    today: dt.date,
) -> str | None:
    """The first reason to refuse the change, in the order the form reads."""
    if to_status not in STATUSES:
        return UNKNOWN_STATUS
    refusing_followup = (
        to_status == p.status == WITHDRAWN and p.followup_allowed and followup is False
    )
    allowed = allowed_changes(
        status=p.status, randomized=p.randomized, followup_allowed=p.followup_allowed
    )
    checks = (
        (to_status == p.status and not refusing_followup, ALREADY),
        (to_status not in allowed and not refusing_followup, NOT_ALLOWED),
        (not reason, NO_REASON),
        (effective_on > today, IN_FUTURE),
        (effective_on < p.earliest, BEFORE_ENROLLMENT),
        (
            p.status_changed_on is not None and effective_on < p.status_changed_on,
            BEFORE_PREVIOUS_CHANGE,
        ),
        (
            to_status == DECEASED
            and p.last_attended_on is not None
            and effective_on < p.last_attended_on,
            DEATH_BEFORE_VISIT,
        ),
        (to_status == WITHDRAWN and followup is None, FOLLOWUP_UNSAID),
        (to_status == COMPLETED and p.open_visits > 0, VISITS_OPEN),
    )
    return next((code for failed, code in checks if failed), None)


def decide_status_change(
    participant: Participant,
    *,
    to_status: str,
    effective_on: dt.date,
    reason: str,
    followup_allowed: bool | None,
    today: dt.date,
) -> StatusChangeDecision:
    """Move `participant` to `to_status` on `effective_on` for `reason` (stripped), with
    `followup_allowed` saying, for a withdrawal, whether follow-up data may still be
    collected; `today` in the trial's zone.

    1. Refuse a change not allowed from the current status, a missing reason, a date in the
       future, before enrollment, before the previous change or (a death) before a visit
       attended, a withdrawal that does not say whether follow-up continues, and a
       completion with visits still open.
    2. Death, and withdrawal from follow-up, make the open visits "not required".
    3. Loss makes the open visits whose window has closed "missed"; open and later windows
       stay planned, so a participant found again (lost → active) can still attend.
    """
    refusal = _refusal(
        participant,
        to_status=to_status,
        effective_on=effective_on,
        reason=reason,
        followup=followup_allowed,
        today=today,
    )
    if refusal:
        return StatusChangeDecision(refusal)
    withdrawal = to_status == WITHDRAWN
    close_as, close_before = "", None
    if to_status == DECEASED or (withdrawal and not followup_allowed):
        close_as = NOT_REQUIRED
    elif to_status == LOST:
        close_as, close_before = MISSED, today
    return StatusChangeDecision(
        refusal=None,
        to_status=to_status,
        followup_allowed=bool(followup_allowed) if withdrawal else participant.followup_allowed,
        change_followup_allowed=followup_allowed if withdrawal else None,
        close_as=close_as,
        close_before=close_before,
    )
