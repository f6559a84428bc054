"""Whether a trial uses SMS, and so what its pages show and ask: the one rule.

    weekly          the trial has a weekly SMS schedule (running or paused): the "Weekly
                    SMS" navigation, the response grid, each participant's conversation and
                    SMS summary, the worklist's SMS alerts. A paused schedule still has its
                    history to show.
    phone_required  the trial sends participants SMS: its weekly schedule is enabled, or
                    visit reminders are configured (Trial.visit_reminder_days). Only then is
                    a mobile number required at baseline and on the details page.

Views ask `sms_use(trial)` and hand templates these booleans; the navigation gets `weekly`
from the context processor below. One query.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import SimpleLazyObject

from trial.models import Trial


@dataclass(frozen=True)
class SmsUse:
    weekly: bool
    phone_required: bool


def sms_use(trial: Trial) -> SmsUse:
    return _read(pk=trial.pk)


def _read(**trial_filter) -> SmsUse:
    """The rule, from one row: the trial's reminder setting and its schedule, if any."""
    row = (
        Trial.objects.filter(**trial_filter)
        .values_list("visit_reminder_days", "sms_schedule__pk", "sms_schedule__enabled")
        .first()
    )
    if row is None:
        return SmsUse(weekly=False, phone_required=False)
    reminder_days, schedule, enabled = row
    return SmsUse(
        weekly=schedule is not None,
        phone_required=bool(enabled) or reminder_days is not None,
    )


def context(request) -> dict:
    """`weekly_sms` for the navigation of a trial's pages (their URLs carry the trial's
    code), read only when a template asks."""
    match = getattr(request, "resolver_match", None)
    code = match.kwargs.get("code") if match else None
    return {"weekly_sms": SimpleLazyObject(lambda: bool(code) and _read(code=code).weekly)}
