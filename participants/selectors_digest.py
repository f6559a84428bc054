"""Reads for the daily digest (participants.tasks): who gets a coordinator digest and what it
says. (Which visits get an SMS reminder: outcomes.sms.visit_reminders.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import QuerySet

from participants import hooks, selectors
from trial import roles
from trial.models import Trial

# Trials with follow-up going on: recruiting, or closed to recruitment with visits still due.
FOLLOWUP_STATUSES = (Trial.Status.RECRUITING, Trial.Status.CLOSED)


def trials_in_followup() -> QuerySet[Trial]:
    return Trial.objects.filter(status__in=FOLLOWUP_STATUSES).order_by("code")


def digest_recipients(trial: Trial) -> QuerySet[User]:
    """Active coordinators of the trial with an e-mail address."""
    return roles.holders(trial, roles.COORDINATOR).exclude(email="").order_by("pk")


def is_digest_recipient(user: User, trial: Trial) -> bool:
    """The same test as digest_recipients, for one user (re-checked when sending)."""
    return (
        user.is_active
        and trial.status in FOLLOWUP_STATUSES
        and roles.holders(trial, roles.COORDINATOR).filter(pk=user.pk).exists()
    )


@dataclass(frozen=True)
class DigestRow:
    status: str  # schedule.DUE or schedule.OVERDUE
    number: str
    site: str
    visit: str
    window_start: dt.date
    window_end: dt.date


@dataclass(frozen=True)
class OptOutRow:
    """A participant who opted out of the weekly SMS (no phone number: this goes by e-mail)."""

    number: str
    site: str
    at: dt.datetime  # local time in the trial's zone


@dataclass(frozen=True)
class Digest:
    day: dt.date
    sites: tuple[str, ...]  # codes of the sites covered
    all_sites: bool
    due: int
    overdue: int
    rows: tuple[DigestRow, ...]  # most overdue first, at most the limit asked for
    # Opt-outs of the weekly SMS since the start of the previous day, most recent first.
    sms_opt_out_count: int = 0
    sms_opt_outs: tuple[OptOutRow, ...] = ()

    @property
    def total(self) -> int:
        return self.due + self.overdue

    @property
    def more(self) -> int:
        """Visits counted but not listed."""
        return self.total - len(self.rows)

    @property
    def more_opt_outs(self) -> int:
        return self.sms_opt_out_count - len(self.sms_opt_outs)


def coordinator_digest(user: User, trial: Trial, *, day: dt.date, limit: int) -> Digest:
    """Open visits that are due or overdue on `day` at the user's sites: the counts and the
    first `limit` of them, exactly as the worklist's "due and overdue" tab lists them; and
    the participants of those sites who opted out of the weekly SMS since the start of the
    previous day (up to the end of `day`: a digest sent in the morning also tells of the
    night's opt-outs, which the next day's digest repeats rather than a gap losing them)."""
    sites = roles.sites_for(user, trial)
    site_codes = tuple(sites.values_list("code", flat=True))
    counts = selectors.worklist_counts(user, trial, today=day)
    listed = selectors.worklist(user, trial, bucket="attention", today=day)[:limit]
    rows = tuple(
        DigestRow(
            status=visit.status(day),
            number=visit.participant.number,
            site=visit.site.code,
            visit=visit.definition.label,
            window_start=visit.window_start,
            window_end=visit.window_end,
        )
        for visit in listed
    )
    # From the weekly SMS app (participants.hooks, "digest opt-outs").
    opt_outs, opt_out_count = hooks.digest_opt_outs_source()(
        trial,
        sites,
        start=_local_midnight(day - dt.timedelta(days=1), trial),
        end=_local_midnight(day + dt.timedelta(days=1), trial),
        limit=limit,
    )
    return Digest(
        day=day,
        sites=site_codes,
        all_sites=len(site_codes) == trial.sites.count(),
        due=counts["due"],
        overdue=counts["overdue"],
        rows=rows,
        sms_opt_out_count=opt_out_count,
        sms_opt_outs=tuple(
            OptOutRow(
                number=p.number or str(p),
                site=p.site.code,
                at=p.sms_opted_out_at.astimezone(trial.zone),
            )
            for p in opt_outs
        ),
    )


def _local_midnight(day: dt.date, trial: Trial) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=trial.zone)
