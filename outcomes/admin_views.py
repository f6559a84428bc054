"""The results dashboard: custom views inside the Django admin site, so the admin's login,
navigation and staff check apply (statisticians and trial managers are staff; clinicians and
coordinators are not). On top, only roles that may see results (roles.can_view_balance) and
only trials the user belongs to. Arms are labelled as the viewer may see them
(trial.blinding); a trial manager's view of unblinded results while the trial is blinded is
audited.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from outcomes.dashboard import dashboard_results
from trial import blinding, roles
from trial.models import Trial


def _trial(request: HttpRequest, code: str) -> Trial:
    if not roles.can_view_balance(request.user):
        raise PermissionDenied("Results are for statisticians and trial managers.")
    return get_object_or_404(roles.trials_for(request.user), code=code)


def results_index(request: HttpRequest) -> HttpResponse:
    """The trials whose results this user may see."""
    trials = roles.trials_for(request.user) if roles.can_view_balance(request.user) else []
    context = {**admin.site.each_context(request), "title": "Trial results", "trials": trials}
    return render(request, "admin/trial_results_index.html", context)


@require_http_methods(["GET", "POST"])
def trial_results(request: HttpRequest, code: str) -> HttpResponse:
    trial = _trial(request, code)
    blinded = blinding.is_blinded(request.user, trial)
    if request.method == "POST":
        dashboard_results(trial, blinded=blinded, refresh=True)
        messages.success(request, "Results computed again from the current data.")
        return redirect("trial_results", code=trial.code)
    results = dashboard_results(trial, blinded=blinded)
    if not blinded:
        blinding.record_unblinded_view(user=request.user, trial=trial, what="Results dashboard")
    context = {
        **admin.site.each_context(request),
        "title": f"{trial.code} results",
        "trial": trial,
        "r": results,
        "table1_head": list(zip(results.table1.columns, results.table1.n, strict=True)),
        "can_unblind": roles.is_trial_manager(request.user) and trial.unblinded_at is None,
    }
    return render(request, "admin/trial_results.html", context)


def trial_consort_svg(request: HttpRequest, code: str) -> HttpResponse:
    trial = _trial(request, code)
    blinded = blinding.is_blinded(request.user, trial)
    results = dashboard_results(trial, blinded=blinded)
    if not blinded:
        blinding.record_unblinded_view(
            user=request.user, trial=trial, what="CONSORT diagram (SVG)", exported=True
        )
    response = HttpResponse(results.consort_svg, content_type="image/svg+xml")
    response["Content-Disposition"] = f'attachment; filename="{trial.code}-consort.svg"'
    return response


class UnblindForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Why the blind is broken now (e.g. the final analysis is signed off). "
        "This cannot be undone and is recorded with your name.",
    )
    confirm = forms.BooleanField(label="I understand that unblinding cannot be undone.")


@require_http_methods(["GET", "POST"])
def trial_unblind(request: HttpRequest, code: str) -> HttpResponse:
    trial = _trial(request, code)
    if not roles.is_trial_manager(request.user):
        raise PermissionDenied("Only a trial manager can unblind a trial.")
    form = UnblindForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            blinding.trial_unblind(trial=trial, by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{trial.code} is unblinded.")
            return redirect("trial_results", code=trial.code)
    context = {
        **admin.site.each_context(request),
        "title": f"Unblind {trial.code}",
        "trial": trial,
        "form": form,
    }
    return render(request, "admin/trial_unblind.html", context)
