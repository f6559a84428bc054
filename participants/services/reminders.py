"""Daily follow-up messages: the coordinator digest e-mail and participants' visit reminders.

Called by the Celery tasks in participants/tasks.py (and manage.py run_daily_jobs); each is
idempotent per day, so a rerun, a retry or a second worker sends nothing twice.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from outcomes.sms.models import OutboundMessage
from outcomes.sms.services import sms_queue
from participants import selectors_digest
from participants.models import DigestLog, Visit
from trial.models import Trial

# A digest lists at most this many visits (most overdue first) and counts the rest: past a
# couple of hundred rows an e-mail stops being read, and the worklist has them all.
DIGEST_ROW_LIMIT = 200

REMINDER_TEXT = (
    "Reminder from {trial}: your {visit} visit is due from {start:%d %b}. "
    "Please contact the trial team to book it."
)


def coordinator_digest_send(*, user_id: int, trial_id: int, day: dt.date) -> str:
    """Send the day's digest unless it was sent already; returns what happened."""
    user = User.objects.filter(pk=user_id).first()
    trial = Trial.objects.filter(pk=trial_id).first()
    if user is None or trial is None:
        return "skipped: user or trial gone"
    if not selectors_digest.is_digest_recipient(user, trial):
        return "skipped: not a coordinator in a trial in follow-up"
    if not user.email:
        return "skipped: no e-mail address"
    # A cheap early exit for reruns; the insert below is what actually guards.
    if DigestLog.objects.filter(user=user, trial=trial, day=day).exists():
        return "skipped: already sent"
    digest = selectors_digest.coordinator_digest(user, trial, day=day, limit=DIGEST_ROW_LIMIT)
    if digest.total == 0 and digest.sms_opt_out_count == 0:
        # Nothing to act on: a daily "nothing due" e-mail would teach people to ignore these.
        return "skipped: nothing due"
    subject = f"{trial.code} follow-up {day:%d %b %Y}: {digest.due} due, {digest.overdue} overdue"
    if digest.sms_opt_out_count:
        # Coordinators are told of opt-outs (the participant is to be phoned instead).
        subject += f", {digest.sms_opt_out_count} SMS opt-out" + (
            "s" if digest.sms_opt_out_count > 1 else ""
        )
    body = render_to_string(
        "participants/email/digest.txt",
        {
            "user": user,
            "trial": trial,
            "digest": digest,
            "worklist_url": settings.SITE_URL + reverse("worklist", kwargs={"code": trial.code}),
        },
    )
    # Insert the log row first and send inside the same transaction, letting the unique
    # constraint (user, trial, day) decide who sends. A concurrent run of the same digest
    # waits on the uncommitted row (PostgreSQL) or the write lock (SQLite IMMEDIATE) until
    # this one commits, then gets IntegrityError and sends nothing; if our send fails, the
    # rollback removes the row, so the retry (or the other run) sends it. get_or_create or
    # select_for_update would not do: there is no row yet to lock, and check-then-insert
    # lets two runs both see nothing and both send. The one duplicate left is a commit
    # failing after the mail went out.
    try:
        with transaction.atomic():
            DigestLog.objects.create(
                user=user, trial=trial, day=day, due=digest.due, overdue=digest.overdue
            )
            send_mail(subject, body, None, [user.email])
    except IntegrityError:
        return "skipped: already sent"
    return "sent"


def visit_reminder_send(*, visit_id: int, day: dt.date) -> OutboundMessage | None:
    """Mark the visit reminded on `day` and queue the SMS, once; None if not (any more) due."""
    with transaction.atomic():
        visit = (
            Visit.objects.select_related("trial", "participant", "definition")
            .filter(pk=visit_id)
            .first()
        )
        # Re-read: the participant may have withdrawn or the visit been recorded meanwhile.
        if (
            visit is None
            or not selectors_digest.visits_to_remind(visit.trial, day=day)
            .filter(pk=visit_id)
            .exists()
        ):
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
