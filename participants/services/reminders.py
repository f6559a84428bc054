"""The daily coordinator digest e-mail (participants' visit reminders are SMS:
outcomes.sms.visit_reminders).

Called by the Celery tasks in participants/tasks.py (and manage.py run_daily_jobs); idempotent
per day, so a rerun, a retry or a second worker sends nothing twice.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from participants import selectors_digest
from participants.models import DigestLog
from trial.models import Trial

# A digest lists at most this many visits (most overdue first) and counts the rest: past a
# couple of hundred rows an e-mail stops being read, and the worklist has them all.
DIGEST_ROW_LIMIT = 200


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
