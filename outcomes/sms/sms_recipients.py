"""Who may be sent an SMS, and who counts as silent: the rules, pure (no Django).

Each rule here has one database twin in outcomes.sms.sms_queries (a `Q` matching exactly the
participants the predicate accepts; a test checks the two agree over every combination of
the fields they read). The weekly job, the reminders, the reply handler, the sending task
and the worklist's alerts all ask these and nothing else.

1. Followed by SMS: the participant is active (randomized and not withdrawn, lost,
   deceased or completed) and has not opted out. Only they are asked the weekly questions,
   and only their silences need a coordinator.
2. Tracked: followed, and with a mobile number to send to. The weekly question, its
   reminder, a clarification, the thank-you and an opt-in confirmation go to them alone.
3. Never messaged at all (visit reminders included): an opted-out, withdrawn or deceased
   participant. A lost participant still gets visit reminders: the site is trying to
   reach them (but no weekly tracking: rule 2).
4. Silent: SILENT_AFTER_WEEKS or more finished weeks in a row without an answer (the
   participant's sms_missed_weeks, kept by the weekly job and reset by an answer).

Statuses are participants.models.Participant.Status values (a test checks they exist).
"""

from __future__ import annotations

ACTIVE = "active"
NEVER_MESSAGED = frozenset({"withdrawn", "deceased"})

# Two silent weeks in a row: one missed week is common (a busy week, a phone left at
# home); a second in a row is when the coordinator calls. The worklist's partial index
# (participants.models, participant_sms_silent) holds the rows at this threshold; a test
# checks its condition matches.
SILENT_AFTER_WEEKS = 2

OPTED_OUT = "Participant opted out of SMS."
NUMBER_CHANGED = "The participant's number changed after this message was queued."


def followed(*, status: str, opted_out: bool) -> bool:
    """Rule 1: the participant is followed by the weekly SMS."""
    return status == ACTIVE and not opted_out


def tracked(*, status: str, opted_out: bool, phone: str) -> bool:
    """Rule 2: the participant is sent the weekly SMS (questions, reminders, replies)."""
    return followed(status=status, opted_out=opted_out) and bool(phone)


def silent(missed_weeks: int) -> bool:
    """Rule 4: enough finished weeks in a row without an answer to call the participant."""
    return missed_weeks >= SILENT_AFTER_WEEKS


def why_not_send(
    *,
    status: str,
    status_label: str,
    opted_out: bool,
    tracking: bool,
    phone: str,
    to: str,
) -> str:
    """Why a queued message must not go out now, or "" (checked at sending time, so an
    opt-out, a status change or a new number after queueing still stops it). `tracking`:
    the message belongs to the weekly tracking (rule 2), not a visit reminder (rule 3)."""
    if opted_out:
        return OPTED_OUT
    if status in NEVER_MESSAGED or (tracking and status != ACTIVE):
        return f"Participant {status_label.lower()}."
    if phone != to:
        return NUMBER_CHANGED
    return ""
