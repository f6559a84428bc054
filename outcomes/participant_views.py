"""Participants' pages that show their outcomes, in the layer above both: the participant's
page (baseline, visits, the weekly SMS summary), the baseline form with the baseline
instruments, the details form (a mobile number is required when the trial sends SMS), the
review before randomization with the instruments' scores, and the coordinator's worklist
with its weekly SMS alerts. Their URLs, names and templates are participants' own
(outcomes.urls); participants never imports outcomes (docs/DESIGN.md "Layers").

Views parse input, check the role and site, call one service, then redirect (POST →
redirect → GET, so refresh and back never resubmit) or re-render with errors.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from outcomes.instruments import scoring
from outcomes.instruments import selectors as instrument_selectors
from outcomes.instruments.forms import baseline_instrument_forms
from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.services import (
    participant_record_baseline_with_instruments,
)
from outcomes.sms import selectors as sms_selectors
from outcomes.sms.models import SmsSchedule
from outcomes.sms.sms_use import sms_use
from participants import access, selectors, services, status_rules
from participants.forms import BaselineForm, ParticipantDetailsForm, RandomizeForm
from participants.models import Allocation, Participant
from participants.services.followup import allowed_changes
from participants.views.enrollment import PAGE_SIZE
from trial import roles
from trial.models import Trial, VisitDefinition


def participant_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_view_participants)
    participant = access.get_participant(request, trial, pk)
    config = selectors.trial_config(trial)
    return render(
        request,
        "participants/participant_detail.html",
        {
            "trial": trial,
            "participant": participant,
            # With its arm in the same query (the page has a query budget).
            "allocation": Allocation.objects.select_related("arm")
            .filter(participant=participant)
            .first(),
            "baseline_rows": _baseline_rows(config, participant),
            "can_follow_up_here": roles.can_follow_up(request.user, trial),
            "can_change_status": bool(allowed_changes(participant)),
            **selectors.participant_timeline(participant, services.trial_today(trial)),
            "sms_status": (
                sms_selectors.participant_sms_status(participant)
                if participant.is_randomized and sms_use(trial).weekly
                else None
            ),
        },
    )


@require_http_methods(["GET", "POST"])
def participant_baseline(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    participant = access.get_participant(request, trial, pk)
    if participant.is_randomized:
        messages.warning(request, "Baseline values cannot change after randomization.")
        return redirect("participant_detail", code=code, pk=pk)
    config = selectors.trial_config(trial)
    instruments = instrument_selectors.baseline_instruments(trial)
    sourced = [i.baseline_variable.code for i in instruments if i.baseline_variable_id]
    languages = [(lang.code, lang.name) for lang in trial.sms_languages.all()]
    initial = {"full_name": participant.full_name, "phone": participant.phone}
    initial.update(participant.baseline)
    initial.update({f"factor_{k}": v for k, v in participant.factor_levels.items()})
    schedule = SmsSchedule.objects.filter(trial=trial).first()
    initial["sms_language"] = participant.sms_language or (
        schedule.default_language if schedule else ""
    )
    data = request.POST if request.method == "POST" else None
    form = BaselineForm(
        data,
        config=config,
        sourced=sourced,
        sms_languages=languages,
        phone_required=sms_use(trial).phone_required,
        initial=initial,
    )
    entries = {e.instrument_id: e for e in instrument_selectors.baseline_entries(participant)}
    instrument_forms = baseline_instrument_forms(
        instruments, data, entries, baseline=participant.baseline
    )
    if request.method == "POST":
        valid = form.is_valid() & all([f.is_valid() for f in instrument_forms])  # validate all
        if valid:
            try:
                participant_record_baseline_with_instruments(
                    participant=participant,
                    full_name=form.cleaned_data["full_name"],
                    phone=form.cleaned_data["phone"],
                    sms_language=form.sms_language(),
                    values=form.values(),
                    chosen_levels=form.chosen_levels(),
                    entries=[f.entry_input() for f in instrument_forms],
                    by=request.user,
                )
            except ValidationError as exc:
                _add_baseline_errors(form, instrument_forms, exc)
            else:
                return redirect("participant_review", code=code, pk=pk)
    return render(
        request,
        "participants/baseline_form.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
            "instrument_forms": instrument_forms,
            "any_errors": form.errors or any(f.errors for f in instrument_forms),
        },
    )


def _add_baseline_errors(form, instrument_forms, exc: ValidationError) -> None:
    """Put the baseline service's errors next to their fields: "<instrument code>-<field>"
    on that instrument's form (outcomes.instruments.services.instrument_error_key), the rest
    on `form`."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    by_prefix = {f.prefix: f for f in instrument_forms}
    for key, errors in exc.message_dict.items():
        prefix, _, name = key.partition("-")
        target = by_prefix.get(prefix) if key not in form.fields else None
        if target is not None:
            target.add_error(name if name in target.fields else None, errors)
        else:
            form.add_error(key if key in form.fields else None, errors)


@require_http_methods(["GET", "POST"])
def participant_edit(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    participant = access.get_participant(request, trial, pk)
    phone_required = sms_use(trial).phone_required
    form = ParticipantDetailsForm(
        request.POST if request.method == "POST" else None,
        trial=trial,
        phone_required=phone_required,
        randomized=participant.is_randomized,
        initial={
            "full_name": participant.full_name,
            "phone": participant.phone,
            "consent_date": participant.consent_date,
            "consent_document": participant.consent_document_id,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.participant_update_details(
                participant=participant,
                by=request.user,
                phone_required=phone_required,
                reason_for_change=form.cleaned_data.get("reason_for_change", ""),
                **form.details(),
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.success(request, "Details saved.")
            return redirect("participant_detail", code=code, pk=pk)
    return render(
        request,
        "participants/participant_edit.html",
        {"trial": trial, "participant": participant, "form": form},
    )


@require_http_methods(["GET", "POST"])
def participant_review(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    # The randomize POST reads only the row: the service reads it again, locked.
    participant = access.get_participant(
        request, trial, pk, related=() if request.method == "POST" else access.PARTICIPANT_RELATED
    )
    if participant.is_randomized:
        # Back button or a stale tab: show the allocation already made, never a new one.
        return redirect("participant_allocation", code=code, pk=pk)
    if not participant.baseline_complete:
        return redirect("participant_baseline", code=code, pk=pk)
    form = RandomizeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.participant_randomize(participant=participant, by=request.user)
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            return redirect("participant_allocation", code=code, pk=pk)
    config = selectors.trial_config(trial)
    entries = instrument_selectors.baseline_entries(participant)
    return render(
        request,
        "participants/review.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
            "baseline_rows": _baseline_rows(config, participant, entries),
            "sms_languages": dict(trial.sms_languages.values_list("code", "name")),
        },
    )


def worklist(request: HttpRequest, code: str) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    today = services.trial_today(trial)
    bucket = request.GET.get("bucket", "attention")
    if bucket not in selectors.WORKLIST_BUCKETS:
        bucket = "attention"
    days = min(max(access.int_or_none(request.GET.get("days")) or 14, 1), 365)
    site_id = access.int_or_none(request.GET.get("site"))
    definition_id = access.int_or_none(request.GET.get("visit"))
    visits = selectors.worklist(
        request.user,
        trial,
        bucket=bucket,
        today=today,
        upcoming_days=days,
        site_id=site_id,
        definition_id=definition_id,
    )
    page = Paginator(visits, PAGE_SIZE).get_page(request.GET.get("page"))
    for visit in page:
        visit.status_today = visit.status(today)
        visit.days_overdue = (today - visit.window_end).days
        visit.can_enter_outcomes = status_rules.outcomes_enterable(
            in_followup=visit.participant.in_followup, visit_outcome=visit.outcome
        )
    return render(
        request,
        "participants/worklist.html",
        {
            "trial": trial,
            "today": today,
            "page": page,
            "bucket": bucket,
            "buckets": selectors.WORKLIST_BUCKETS,
            "counts": selectors.worklist_counts(
                request.user,
                trial,
                today=today,
                upcoming_days=days,
                site_id=site_id,
                definition_id=definition_id,
            ),
            "days": days,
            "sites": roles.sites_for(request.user, trial),
            "site_id": site_id,
            "definitions": VisitDefinition.objects.filter(trial=trial, at_randomization=False),
            "definition_id": definition_id,
            "sms_alerts": (
                _worklist_sms_alerts(request.user, trial, site_id=site_id)
                if sms_use(trial).weekly
                else None
            ),
        },
    )


def _worklist_sms_alerts(user, trial: Trial, *, site_id: int | None = None):
    """The worklist's "Weekly SMS" panel: participants of the user's sites (or of the one
    site filtered on) silent for two weeks or more, and those who opted out. Two queries."""
    sites = roles.sites_for(user, trial)
    if site_id:
        sites = sites.filter(pk=site_id)
    return sms_selectors.sms_alerts(trial, sites)


def _baseline_rows(
    config: selectors.TrialConfig, participant: Participant, entries=()
) -> list[tuple[str, str]]:
    """(label, value) rows: baseline values, factor levels, then the baseline instrument
    `entries` (OutcomeEntry rows) with their scores. A baseline variable taken from an
    instrument's score (the pain score) is shown once, as the instrument's row."""
    entries = list(entries)
    from_instruments = {
        e.instrument.baseline_variable.code for e in entries if e.instrument.baseline_variable_id
    }
    rows = []
    for var in config.variables:
        if var.code in from_instruments:
            continue
        value = participant.baseline.get(var.code)
        rows.append((var.label, "—" if value is None else f"{value} {var.unit}".strip()))
    for factor in config.factors:
        level = factor.level(participant.factor_levels.get(factor.code, ""))
        rows.append((f"Factor: {factor.name}", level.label if level else "—"))
    for entry in sorted(entries, key=lambda e: (e.instrument.order, e.instrument.pk)):
        rows.append((entry.instrument.name, _entry_summary(entry)))
    return rows


def _entry_summary(entry: OutcomeEntry) -> str:
    if entry.not_done:
        note = f" ({entry.not_done_note})" if entry.not_done_note else ""
        return f"Not done: {entry.get_not_done_display().lower()}{note}"
    kind = entry.instrument.kind
    if kind == Instrument.Kind.EQ5D_3L:
        parts = [
            f"health state {entry.eq5d_profile}, index {entry.score:.3f}"
            if entry.eq5d_profile
            else "health state incomplete"
        ]
        parts.append("VAS —" if entry.eq5d_vas is None else f"VAS {entry.eq5d_vas}")
        return "; ".join(parts)
    if entry.score is None:
        return "— (not every item answered)"
    if kind == Instrument.Kind.RMDQ:
        return f"{entry.score:g} of {scoring.RMDQ_ITEMS}"
    return f"{entry.score:g}"
