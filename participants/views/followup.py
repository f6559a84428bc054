"""Follow-up pages: the coordinator's worklist, visits, contact attempts, status changes."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from participants import access, selectors, services
from participants.forms import (
    AttendanceForm,
    ContactForm,
    MissedForm,
    StatusChangeForm,
    StatusReverseForm,
)
from participants.models import Participant, StatusChange
from participants.services.followup import allowed_changes
from trial import roles


def followup_summary(request: HttpRequest, code: str) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_view_followup_summary)
    today = services.trial_today(trial)
    return render(
        request,
        "participants/followup_summary.html",
        {
            "trial": trial,
            "today": today,
            "rows": selectors.followup_summary(request.user, trial, today),
        },
    )


def _next(request: HttpRequest) -> str:
    """Where the action was started from ("worklist" or nothing), carried through the form."""
    value = request.GET.get("next") or request.POST.get("next") or ""
    return value if value == "worklist" else ""


def _back_to(request: HttpRequest, trial, participant: Participant):
    """Return to the worklist when the action started there, else to the participant."""
    if _next(request) == "worklist":
        return redirect("worklist", code=trial.code)
    return redirect("participant_detail", code=trial.code, pk=participant.pk)


@require_http_methods(["GET", "POST"])
def visit_attended(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    visit = access.get_visit(request, trial, pk)
    form = AttendanceForm(
        request.POST if request.method == "POST" else None, trial=trial, visit=visit
    )
    if request.method == "POST" and form.is_valid():
        try:
            visit = services.visit_record_attendance(
                visit=visit,
                attended_on=form.cleaned_data["attended_on"],
                early_reason=form.cleaned_data["early_reason"],
                by=request.user,
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            where = "inside" if visit.in_window else "OUTSIDE"
            messages.success(
                request,
                f"{visit.participant} {visit.definition.label}: attended "
                f"{visit.attended_on:%d %b %Y}, {where} the window.",
            )
            return _back_to(request, trial, visit.participant)
    return render(
        request,
        "participants/visit_form.html",
        {
            "trial": trial,
            "visit": visit,
            "form": form,
            "action": "attended",
            "next": _next(request),
        },
    )


@require_http_methods(["GET", "POST"])
def visit_missed(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    visit = access.get_visit(request, trial, pk)
    form = MissedForm(request.POST if request.method == "POST" else None, trial=trial, visit=visit)
    if request.method == "POST" and form.is_valid():
        try:
            services.visit_record_missed(
                visit=visit,
                reason=form.cleaned_data["reason"],
                early_reason=form.cleaned_data["early_reason"],
                by=request.user,
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.info(request, f"{visit.participant} {visit.definition.label}: missed.")
            return _back_to(request, trial, visit.participant)
    return render(
        request,
        "participants/visit_form.html",
        {"trial": trial, "visit": visit, "form": form, "action": "missed", "next": _next(request)},
    )


@require_http_methods(["GET", "POST"])
def contact_log(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    participant = access.get_participant(request, trial, pk)
    form = ContactForm(
        request.POST if request.method == "POST" else None,
        participant=participant,
        initial={"visit": access.int_or_none(request.GET.get("visit"))},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_attempt_log(
                participant=participant, by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.success(request, f"Contact attempt logged for {participant}.")
            return _back_to(request, trial, participant)
    return render(
        request,
        "participants/contact_form.html",
        {"trial": trial, "participant": participant, "form": form, "next": _next(request)},
    )


@require_http_methods(["GET", "POST"])
def participant_status(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_follow_up)
    participant = access.get_participant(request, trial, pk)
    allowed = [
        (
            status,
            "Withdrawn, now refusing any further follow-up"
            if status == participant.status
            else Participant.Status(status).label,
        )
        for status in Participant.Status.values
        if status in allowed_changes(participant)
    ]
    form = StatusChangeForm(
        request.POST if request.method == "POST" else None, trial=trial, allowed=allowed
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.participant_status_change(
                participant=participant, by=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            access.add_service_errors(form, exc)
        else:
            messages.success(request, "Status changed.")
            return redirect("participant_detail", code=code, pk=pk)
    return render(
        request,
        "participants/status_form.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
            "allowed": allowed,
            "reversible_change": selectors.reversible_change(participant),
        },
    )


@require_http_methods(["GET", "POST"])
def status_change_reverse(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """Reverse the participant's latest status change, entered in error, with a reason."""
    trial = access.get_trial(request, code, roles.can_follow_up)
    participant = access.get_participant(request, trial, pk)
    change = selectors.reversible_change(participant)
    form = StatusReverseForm(
        request.POST if request.method == "POST" else None,
        initial={"change": change.pk if change else None},
    )
    if request.method == "POST" and form.is_valid():
        chosen = StatusChange.objects.filter(
            pk=form.cleaned_data["change"], participant=participant
        ).first()
        if chosen is None:
            form.add_error(None, _("That status change is not this participant's."))
        else:
            try:
                result = services.status_change_reverse(
                    change=chosen, reason=form.cleaned_data["reason"], by=request.user
                )
            except ValidationError as exc:
                access.add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("Status change reversed: the participant is %(status)s again.")
                    % {"status": Participant.Status(result.reversal.to_status).label.lower()},
                )
                if result.kept:
                    messages.warning(
                        request,
                        _(
                            "Left as they are, because something was recorded on them since: "
                            "%(visits)s."
                        )
                        % {"visits": ", ".join(v.definition.label for v in result.kept)},
                    )
                return redirect("participant_detail", code=code, pk=pk)
    return render(
        request,
        "participants/status_reverse_form.html",
        {"trial": trial, "participant": participant, "change": change, "form": form},
    )
