"""The trial's participant list, the allocation page and the balance. The pages of the
clinician's journey that show outcomes (the participant's page and details, baseline with
the baseline instruments, review → randomize) are outcomes.participant_views, a layer up.

Views parse input, check the role and site, call one service, then redirect (POST →
redirect → GET, so refresh and back never resubmit) or re-render with errors.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from participants import access, selectors
from participants.search import fold
from trial import blinding, roles
from trial.models import Trial

PAGE_SIZE = 50


# --- Pages ----------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    trials = list(roles.trials_for(request.user))
    if len(trials) == 1:
        return redirect("trial_home", code=trials[0].code)
    # Roles are per trial: each trial with the roles the user holds in it.
    rows = [(t, roles.role_labels(request.user, t)) for t in trials]
    return render(request, "participants/home.html", {"trials": rows})


def trial_home(request: HttpRequest, code: str) -> HttpResponse:
    trial = get_object_or_404(Trial, code=code)
    if not roles.can_view_participants(request.user, trial):
        if roles.can_view_balance(request.user, trial):
            return redirect("balance", code=code)
        raise PermissionDenied("Your role does not give access to this page.")
    participants = selectors.participants_visible_to(request.user, trial)
    query = request.GET.get("q", "").strip()
    if query:
        # Names are compared in their stored search form (participants.search): "ødeg"
        # finds "Ødegård" on SQLite too, whose LIKE folds ASCII letters only. Numbers
        # are ASCII, so icontains folds them on both databases.
        participants = participants.filter(
            Q(number__icontains=query) | Q(search_name__contains=fold(query))
        )
    page = Paginator(participants.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "participants/participant_list.html",
        {
            "trial": trial,
            "page": page,
            "query": query,
            # A list of arms is a tally of arms: clinicians, who enroll, see each
            # participant's arm only on that participant's page (allocation concealment).
            "show_arms": roles.has_role(
                request.user, roles.COORDINATOR, roles.TRIAL_MANAGER, trial=trial
            )
            and not roles.has_role(request.user, roles.CLINICIAN, trial=trial),
        },
    )


def participant_allocation(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_view_participants)
    participant = access.get_participant(request, trial, pk)
    allocation = getattr(participant, "allocation", None)
    if allocation is None:
        return redirect("participant_detail", code=code, pk=pk)
    return render(
        request,
        "participants/allocation.html",
        {"trial": trial, "participant": participant, "allocation": allocation},
    )


def balance(request: HttpRequest, code: str) -> HttpResponse:
    trial = access.get_trial(request, code, roles.can_view_balance)
    table = selectors.balance_table(trial)
    arms = table.arms
    # Statisticians see neutral arm codes, in code order, until the trial is unblinded.
    view = blinding.arm_view(trial, request.user, arms=arms)
    blinding.record_unblinded_view(user=request.user, trial=trial, what="Allocation balance")
    position = {arm.pk: i for i, arm in enumerate(arms)}
    order = [position[arm.pk] for arm in view.arms]

    def shown(row: selectors.BalanceRow) -> dict:
        """The row with its (observed, expected) cells in the columns' order."""
        cells = [(row.counts[i], row.expected[i]) for i in order]
        return {"factor": row.factor, "level": row.level, "cells": cells, "total": row.total}

    return render(
        request,
        "participants/balance.html",
        {
            "trial": trial,
            "columns": [
                {"label": arm.label, "ratio": table.ratios[position[arm.pk]]} for arm in view.arms
            ],
            "ratio": ":".join(str(table.ratios[i]) for i in order),
            "unequal": table.unequal,
            "blinded": view.blinded,
            "all_randomized": shown(table.all_randomized),
            "rows": [shown(row) for row in table.rows],
        },
    )
