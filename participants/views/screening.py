"""Screening pages: screen a patient (one record per submitted form), the screening log, a
record's page, voiding a record entered in error, and the consent decision.

Views parse input, check the role and site, call one service, then redirect (POST →
redirect → GET) or re-render with errors.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from participants import access, selectors, services
from participants.forms import ConsentForm, ScreeningForm, ScreeningVoidForm
from participants.models import Participant, ScreeningRecord
from participants.views.enrollment import PAGE_SIZE
from trial import roles
from trial.models import Trial


def _screening(request: HttpRequest, trial: Trial, pk: int) -> ScreeningRecord:
    screening = get_object_or_404(
        ScreeningRecord.objects.select_related("site", "trial"), pk=pk, trial=trial
    )
    if not roles.works_at(request.user, trial, screening.site_id):
        raise PermissionDenied("This screening belongs to a site you do not work at.")
    return screening


@require_http_methods(["GET", "POST"])
@never_cache  # back to this page asks for a new one (a new token), never the old copy
def screening_new(request: HttpRequest, code: str) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    form = ScreeningForm(
        request.POST if request.method == "POST" else None,
        trial=trial,
        sites=roles.sites_for(request.user, trial),
        criteria=selectors.criteria_for(trial),
    )
    if request.method == "POST" and form.is_valid():
        try:
            record, created = services.screening_record(
                trial=trial,
                site=form.cleaned_data["site"],
                initials=form.cleaned_data["initials"],
                screened_on=form.cleaned_data["screened_on"],
                answers=form.answers(),
                by=request.user,
                form_token=form.cleaned_data["form_token"],
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            if not created:
                # The same form again (back and resubmit): the record its first submission
                # made, wherever that now leads; what was changed in between is not saved.
                messages.info(
                    request,
                    _(
                        "This screening was already recorded when the form was first "
                        "submitted; nothing new was saved."
                    ),
                )
                if record.outcome == ScreeningRecord.Outcome.ELIGIBLE and not record.is_voided:
                    return redirect("screening_consent", code=code, pk=record.pk)
                return redirect("screening_detail", code=code, pk=record.pk)
            if record.outcome == ScreeningRecord.Outcome.ELIGIBLE:
                messages.success(request, "Eligible. Record the patient's consent decision.")
                return redirect("screening_consent", code=code, pk=record.pk)
            messages.info(request, "Not eligible: recorded in the screening log.")
            return redirect("screening_detail", code=code, pk=record.pk)
    return render(request, "participants/screening_form.html", {"trial": trial, "form": form})


def screening_log(request: HttpRequest, code: str) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    records = selectors.screenings_visible_to(request.user, trial).order_by("-screened_on", "-pk")
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "participants/screening_log.html", {"trial": trial, "page": page})


def screening_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    screening = _screening(request, trial, pk)
    participant = Participant.objects.filter(screening=screening).first()
    eligible = screening.outcome == ScreeningRecord.Outcome.ELIGIBLE and not screening.is_voided
    return render(
        request,
        "participants/screening_detail.html",
        {
            "trial": trial,
            "screening": screening,
            "participant": participant,
            "can_record_consent": eligible,
            "can_void": roles.is_trial_manager(request.user, trial)
            and not screening.is_voided
            and participant is None,
        },
    )


@require_http_methods(["GET", "POST"])
def screening_void(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.is_trial_manager)
    screening = _screening(request, trial, pk)
    form = ScreeningVoidForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.screening_void(
                screening=screening, reason=form.cleaned_data["reason"], by=request.user
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.success(
                request, _("The screening record is voided; CONSORT no longer counts it.")
            )
            return redirect("screening_detail", code=code, pk=pk)
    return render(
        request,
        "participants/screening_void.html",
        {"trial": trial, "screening": screening, "form": form},
    )


@require_http_methods(["GET", "POST"])
def screening_consent(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_enroll)
    screening = _screening(request, trial, pk)
    if screening.outcome != ScreeningRecord.Outcome.ELIGIBLE or screening.is_voided:
        return redirect("screening_detail", code=code, pk=pk)
    form = ConsentForm(request.POST if request.method == "POST" else None, trial=trial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["decision"] == "declined":
                services.screening_decline(
                    screening=screening, reason=data["declined_reason"], by=request.user
                )
                messages.info(request, "Recorded that the patient declined.")
                return redirect("screening_detail", code=code, pk=pk)
            participant = services.participant_enroll(
                screening=screening,
                consent_date=data["consent_date"],
                consent_document=data["consent_document"],
                by=request.user,
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.success(request, "Consent recorded. Enter the baseline values.")
            return redirect("participant_baseline", code=code, pk=participant.pk)
    return render(
        request,
        "participants/consent_form.html",
        {"trial": trial, "screening": screening, "form": form},
    )
