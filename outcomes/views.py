"""Outcome entry for a visit (every instrument due at it on one page), and the weekly SMS
pages: a participant's conversation, the response grid, opt-outs reported to staff."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import CharField, Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from outcomes.instruments import selectors as instrument_selectors
from outcomes.instruments.forms import FORM_FOR_KIND, VisitOutcomesForm
from outcomes.instruments.services import visit_record_outcomes
from outcomes.sms import consent_sms
from outcomes.sms import selectors as sms_selectors
from outcomes.sms.models import SmsSchedule
from outcomes.sms.sms_use import sms_use
from participants import access
from trial import roles


@require_http_methods(["GET", "POST"])
def visit_outcomes(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    visit = access.get_visit(request, trial, pk)
    instruments = instrument_selectors.visit_instruments(trial, visit)
    entries = instrument_selectors.visit_entries(visit)
    data = request.POST if request.method == "POST" else None
    visit_form = VisitOutcomesForm(data, trial=trial, visit=visit)
    forms = [
        FORM_FOR_KIND[i.kind](data, instrument=i, entry=entries.get(i.pk)) for i in instruments
    ]
    if visit.definition.at_randomization:
        for form in forms:
            variable = form.instrument.baseline_variable
            if variable is not None:
                form.note = (
                    f"Entered before randomization as the baseline value “{variable.label}”. "
                    "A correction here is kept in the history, but the allocation keeps the "
                    "value and the minimization factor level it was made with."
                )
    if request.method == "POST":
        valid = visit_form.is_valid() & all([f.is_valid() for f in forms])  # validate all
        if valid:
            try:
                visit = visit_record_outcomes(
                    visit=visit,
                    entries=[f.entry_input() for f in forms],
                    attended_on=visit_form.cleaned_data["attended_on"],
                    reason_for_change=visit_form.cleaned_data["reason_for_change"],
                    early_reason=visit_form.cleaned_data["early_reason"],
                    by=request.user,
                )
            except ValidationError as exc:
                access.add_service_errors(visit_form, exc)
            else:
                messages.success(
                    request,
                    f"{visit.participant} {visit.definition.label}: outcomes saved"
                    + (
                        f"; visit {visit.get_outcome_display().lower()}."
                        if visit.outcome != "open"
                        else "."
                    ),
                )
                return redirect("participant_detail", code=code, pk=visit.participant_id)
    return render(
        request,
        "outcomes/visit_outcomes.html",
        {
            "trial": trial,
            "visit": visit,
            "visit_form": visit_form,
            "forms": forms,
            "has_entries": bool(entries),
            "any_errors": visit_form.errors or any(f.errors for f in forms),
        },
    )


# --- Weekly SMS: conversation, response grid, opt-out/opt-in reported to staff ----------------


def _can_record_sms_consent(user, trial) -> bool:
    """Coordinators and trial managers record an opt-out or opt-in told to them."""
    return roles.has_role(user, roles.COORDINATOR, roles.TRIAL_MANAGER, trial=trial)


class SmsConsentForm(Form):
    # Kept here rather than in outcomes/forms.py only because that module was being
    # edited in parallel; it belongs there.
    reason = CharField(
        max_length=300,
        label="How was this reported?",
        help_text='e.g. "Phoned the site on 3 March: no more text messages, please".',
    )


def _weekly_sms(trial) -> None:
    """The SMS pages exist only for a trial with a weekly SMS schedule (outcomes.sms.sms_use)."""
    if not sms_use(trial).weekly:
        raise Http404("This trial has no weekly SMS.")


def participant_sms(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    _weekly_sms(trial)
    participant = access.get_participant(request, trial, pk)
    return render(
        request,
        "outcomes/participant_sms.html",
        {
            "trial": trial,
            "participant": participant,
            "page": sms_selectors.participant_sms_conversation(
                participant, request.GET.get("page")
            ),
            "sms_status": sms_selectors.participant_sms_status(participant),
            "can_record_consent": _can_record_sms_consent(request.user, trial),
        },
    )


@require_http_methods(["GET", "POST"])
def participant_sms_consent(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """Record an opt-out (or, when opted out, an opt-in) the participant reported to staff."""
    trial = access.get_trial(request, code, _can_record_sms_consent)
    _weekly_sms(trial)
    participant = access.get_participant(request, trial, pk)
    opting_out = participant.sms_opted_out_at is None
    form = SmsConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        change = (
            consent_sms.participant_sms_opt_out
            if opting_out
            else consent_sms.participant_sms_opt_in
        )
        try:
            change(participant=participant, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"{participant}: opted out of SMS; nothing more will be sent."
                if opting_out
                else f"{participant}: opted back in to SMS from the next weekly round.",
            )
            return redirect("participant_sms", code=code, pk=pk)
    return render(
        request,
        "outcomes/sms_consent_form.html",
        {"trial": trial, "participant": participant, "form": form, "opting_out": opting_out},
    )


def sms_grid(request: HttpRequest, code: str) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    _weekly_sms(trial)
    sites = roles.sites_for(request.user, trial)
    site_id = access.int_or_none(request.GET.get("site"))
    shown_sites = sites.filter(pk=site_id) if site_id else sites
    schedule = SmsSchedule.objects.filter(trial=trial).first()
    context = {
        "trial": trial,
        "sites": sites,
        "site_id": site_id,
        "schedule": schedule,
        "legend": list(sms_selectors.CELL_LABELS.items()),
    }
    if schedule is not None:
        current = sms_selectors.sms_current_send_date(trial, schedule, timezone.now())
        until = _date_or_none(request.GET.get("until")) or current
        # Never later than the open week, never before a year ahead of the earliest date
        # the columns can reach back to (date arithmetic below would overflow).
        until = max(min(until, current), dt.date(1900, 1, 1))
        send_dates = sms_selectors.sms_send_dates(schedule, until=until)
        grid = sms_selectors.sms_week_grid(
            trial, shown_sites, schedule, send_dates, request.GET.get("page")
        )
        later = send_dates[-1] + dt.timedelta(days=7 * len(send_dates))
        context.update(
            grid=grid,
            page=grid.page,
            send_dates=send_dates,
            current=current,
            earlier=send_dates[0] - dt.timedelta(days=7),
            later=min(later, current) if send_dates[-1] < current else None,
        )
    return render(request, "outcomes/sms_grid.html", context)


def _date_or_none(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value and len(value) == 10 else None
    except ValueError:
        return None
