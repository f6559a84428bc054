"""Visit reminders: an SMS to the participant shortly before a visit's window opens.

Run daily by the task participants.tasks.send_visit_reminders (its name from before it moved
here; outcomes.sms.tasks) and manage.py run_daily_jobs; idempotent per visit
(Visit.reminder_sent_on), so a rerun, a retry or a second worker sends nothing twice.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet

from outcomes.sms import sms_recipients
from outcomes.sms.models import OutboundMessage
from outcomes.sms.services import sms_queue
from participants.models import Visit
from participants.selectors_digest import trials_in_followup
from trial.models import Trial

REMINDER_TEXT = (
    "Reminder from {trial}: your {visit} visit is due from {start:%d %b}. "
    "Please contact the trial team to book it."
)


def trials_with_reminders() -> QuerySet[Trial]:
    return trials_in_followup().filter(visit_reminder_days__isnull=False)


def visits_to_remind(trial: Trial, *, day: dt.date) -> QuerySet[Visit]:
    """Open visits whose participant should get a reminder SMS on `day`.

    A reminder goes out `trial.visit_reminder_days` before the window opens; a run that was
    missed (the scheduler down for a day) is caught up on any later day until the window
    opens, never after. Only active participants with a phone who have not refused
    follow-up; each visit is reminded once (reminder_sent_on).

    Stricter than sms_recipients rule 3 (never messaged: opted out, withdrawn, deceased),
    which would also remind a lost participant: the reminders have always gone to active
    participants only. An opted-out participant is selected, and the message is then
    cancelled at sending time by that rule (outcomes.sms.services.sms_send_now).
    """
    if trial.visit_reminder_days is None:
        return Visit.objects.none()
    return Visit.objects.filter(
        trial=trial,
        outcome=Visit.Outcome.OPEN,
        reminder_sent_on__isnull=True,
        window_start__gte=day,
        window_start__lte=day + dt.timedelta(days=trial.visit_reminder_days),
        participant__status=sms_recipients.ACTIVE,
        participant__followup_allowed=True,
    ).exclude(participant__phone="")


def visit_reminder_send(*, visit_id: int, day: dt.date) -> OutboundMessage | None:
    """Mark the visit reminded on `day` and queue the SMS, once; None if not (any more) due."""
    with transaction.atomic():
        visit = (
            Visit.objects.select_related("trial", "participant", "definition")
            .filter(pk=visit_id)
            .first()
        )
        # Re-read: the participant may have withdrawn or the visit been recorded meanwhile.
        if visit is None or not visits_to_remind(visit.trial, day=day).filter(pk=visit_id).exists():
            return None
        # The claim: a conditional update on the visit row alone, checked by its row count.
        # A rerun or a racing worker finds reminder_sent_on set and sends nothing; on
        # PostgreSQL the loser waits for the winner's row lock and re-checks the condition
        # against the committed row. (Kept to one table: an UPDATE whose condition sits in a
        # joined subquery would be re-checked against a stale snapshot.) update() writes no
        # history row, which is right for this bookkeeping field.
        claimed = Visit.objects.filter(
            pk=visit_id, reminder_sent_on__isnull=True, outcome=Visit.Outcome.OPEN
        ).update(reminder_sent_on=day)
        if not claimed:
            return None
        # The SMS is sent after this transaction commits (sms_queue uses on_commit), so a
        # rollback here sends nothing and leaves the visit to be reminded on the next run.
        return sms_queue(
            participant=visit.participant,
            body=REMINDER_TEXT.format(
                trial=visit.trial.name, visit=visit.definition.label, start=visit.window_start
            ),
            kind=OutboundMessage.Kind.VISIT_REMINDER,
        )
