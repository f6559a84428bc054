"""The trial's team page: its trial managers grant and revoke roles and sites (per trial)
for existing accounts, and see every change. Accounts are administered elsewhere, by
superusers (the admin)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trial import roles, selectors, services
from trial.forms import AddMemberForm, MembershipForm
from trial.models import Membership, Trial

HISTORY_PAGE_SIZE = 50


def _managed_trial(request: HttpRequest, code: str) -> Trial:
    trial = get_object_or_404(Trial, code=code)
    if not roles.is_trial_manager(request.user, trial):
        raise PermissionDenied(_("Only the trial's managers may change its team."))
    return trial


def _apply(request, form, trial, user) -> bool:
    """Hand the form's roles and sites to the service; its refusals go next to the fields."""
    try:
        services.membership_change(
            trial=trial,
            user=user,
            roles_after=form.cleaned_data["roles"],
            sites=form.cleaned_data["sites"],
            by=request.user,
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return False
    return True


@require_http_methods(["GET", "POST"])
def team(request: HttpRequest, code: str) -> HttpResponse:
    trial = _managed_trial(request, code)
    form = AddMemberForm(request.POST if request.method == "POST" else None, trial=trial)
    if request.method == "POST" and form.is_valid():
        user = form.cleaned_data["username"]
        if _apply(request, form, trial, user):
            messages.success(
                request, _("%(user)s added to %(trial)s.") % {"user": user, "trial": trial.code}
            )
            return redirect("trial_team", code=trial.code)
    history = Paginator(selectors.team_history(trial), HISTORY_PAGE_SIZE)
    return render(
        request,
        "trial/team.html",
        {
            "trial": trial,
            "members": selectors.team_members(trial),
            "form": form,
            "page": history.get_page(request.GET.get("page")),
        },
    )


@require_http_methods(["GET", "POST"])
def team_member(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = _managed_trial(request, code)
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk, trial=trial)
    initial = {"roles": sorted(roles.roles_of(membership)), "sites": membership.sites.all()}
    form = MembershipForm(
        request.POST if request.method == "POST" else None, trial=trial, initial=initial
    )
    posted = request.method == "POST" and form.is_valid()
    if posted and _apply(request, form, trial, membership.user):
        messages.success(
            request, _("Roles and sites of %(user)s saved.") % {"user": membership.user}
        )
        if not roles.is_trial_manager(request.user, trial):
            return redirect("home")  # they gave up their own manager role: not their page now
        return redirect("trial_team", code=trial.code)
    return render(
        request,
        "trial/team_member.html",
        {
            "trial": trial,
            "membership": membership,
            "form": form,
            "history": selectors.team_history(trial, membership=membership),
        },
    )
