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
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from outcomes.results import consort, services
from outcomes.results.dashboard import dashboard_results
from outcomes.results.models import ExportJob
from trial import blinding, roles
from trial.models import Trial


def _trial(request: HttpRequest, code: str) -> Trial:
    if not roles.can_view_balance(request.user):
        raise PermissionDenied("Results are for statisticians and trial managers.")
    return get_object_or_404(roles.trials_for(request.user, roles.can_view_balance), code=code)


def results_index(request: HttpRequest) -> HttpResponse:
    """The trials whose results this user may see."""
    trials = roles.trials_for(request.user, roles.can_view_balance)
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
        "can_unblind": roles.is_trial_manager(request.user, trial) and trial.unblinded_at is None,
        "exports": [(job, _job_status(job)) for job in _visible_jobs(request, trial)[:5]],
    }
    return render(request, "admin/trial_results.html", context)


# The CONSORT diagram's downloads: (content type, renderer of the cached counts).
CONSORT_FORMATS = {
    "svg": ("image/svg+xml", consort.svg),
    "pdf": ("application/pdf", consort.pdf),
}


def trial_consort(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    """The CONSORT diagram as a file (`fmt` is "svg" or "pdf", fixed by the URL)."""
    content_type, render = CONSORT_FORMATS[fmt]
    trial = _trial(request, code)
    blinded = blinding.is_blinded(request.user, trial)
    results = dashboard_results(trial, blinded=blinded)
    if not blinded:
        blinding.record_unblinded_view(
            user=request.user, trial=trial, what=f"CONSORT diagram ({fmt.upper()})", exported=True
        )
    response = HttpResponse(render(results.consort), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{trial.code}-consort.{fmt}"'
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
    if not roles.is_trial_manager(request.user, trial):
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


# --- Export bundles (outcomes.results.export, built by outcomes.results.tasks.export_run) -----


def _visible_jobs(request: HttpRequest, trial: Trial):
    """A trial manager sees every export of the trial; anyone else only their own."""
    jobs = ExportJob.objects.filter(trial=trial).select_related("requested_by", "trial")
    if not roles.is_trial_manager(request.user, trial):
        jobs = jobs.filter(requested_by=request.user)
    if blinding.is_blinded(request.user, trial):
        # Someone blinded now (e.g. no longer a trial manager) gets no export with names.
        jobs = jobs.filter(blinded=True)
    return jobs


def _job_status(job: ExportJob) -> dict:
    available = (
        job.status == ExportJob.Status.DONE
        and bool(job.file_path)
        and job.expires_at is not None
        and job.expires_at > timezone.now()
    )
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "progress": job.progress,
        "step": job.step,
        # A blinded requester gets no raw error text: it could name an arm.
        "error": ("The export failed; ask a trial manager to look at it." if job.error else "")
        if job.blinded
        else job.error,
        "blinded": job.blinded,
        "shift_dates": job.shift_dates,
        "size": job.size,
        "expires_at": job.expires_at.isoformat() if job.expires_at else None,
        "download_url": reverse("trial_export_download", args=[job.trial.code, job.pk])
        if available
        else None,
        "status_url": reverse("trial_export_status", args=[job.trial.code, job.pk]),
    }


@require_POST
def trial_export_start(request: HttpRequest, code: str) -> HttpResponse:
    """Queue an export; blinded (arm codes only) unless this user may see arm names."""
    trial = _trial(request, code)
    job, created = services.export_request(
        trial=trial,
        user=request.user,
        shift_dates=request.POST.get("shift_dates") in ("1", "on", "true"),
    )
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(_job_status(job), status=202)
    if created:
        messages.info(request, f"Export {job.pk} queued; it appears below when ready.")
    else:
        messages.info(request, f"Export {job.pk} is still being built.")
    return redirect(f"{reverse('trial_results', args=[trial.code])}#exports")


def _job(request: HttpRequest, code: str, job_id: int) -> ExportJob:
    trial = _trial(request, code)
    return get_object_or_404(_visible_jobs(request, trial), pk=job_id)


def trial_export_status(request: HttpRequest, code: str, job_id: int) -> JsonResponse:
    return JsonResponse(_job_status(_job(request, code, job_id)))


def trial_export_download(request: HttpRequest, code: str, job_id: int) -> HttpResponse:
    """The ZIP, for its requester or a trial manager, until it expires."""
    job = _job(request, code, job_id)
    if job.status != ExportJob.Status.DONE or not job.file_path:
        raise Http404("This export is not available.")
    if job.expires_at is None or job.expires_at <= timezone.now():
        return HttpResponse("This export has expired; start a new one.", status=410)
    try:
        handle = open(job.file_path, "rb")  # noqa: SIM115 (FileResponse closes it)
    except OSError:
        return HttpResponse("This export's file is gone; start a new one.", status=410)
    if not job.blinded:
        blinding.record_unblinded_view(
            user=request.user, trial=job.trial, what=f"Data export {job.pk}", exported=True
        )
    return FileResponse(handle, as_attachment=True, filename=job.file_name)
