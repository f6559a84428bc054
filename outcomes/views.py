"""Outcome entry for a visit: every instrument due at it on one page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from outcomes.entry import visit_record_outcomes
from outcomes.forms import FORM_FOR_KIND, VisitOutcomesForm
from outcomes.models import Instrument, OutcomeEntry
from participants.views.enrollment import _add_service_errors, _trial
from participants.views.followup import _visit
from trial import roles


@require_http_methods(["GET", "POST"])
def visit_outcomes(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    trial = _trial(request, code, roles.can_follow_up)
    visit = _visit(request, trial, pk)
    instruments = list(
        Instrument.objects.filter(visits=visit.definition_id).select_related("value_set")
    )
    entries = {e.instrument_id: e for e in OutcomeEntry.objects.filter(visit=visit)}
    data = request.POST if request.method == "POST" else None
    visit_form = VisitOutcomesForm(data, trial=trial, visit=visit)
    forms = [
        FORM_FOR_KIND[i.kind](data, instrument=i, entry=entries.get(i.pk)) for i in instruments
    ]
    if request.method == "POST":
        valid = visit_form.is_valid() & all([f.is_valid() for f in forms])  # validate all
        if valid:
            try:
                visit = visit_record_outcomes(
                    visit=visit,
                    entries=[f.entry_input() for f in forms],
                    attended_on=visit_form.cleaned_data["attended_on"],
                    reason_for_change=visit_form.cleaned_data["reason_for_change"],
                    by=request.user,
                )
            except ValidationError as exc:
                _add_service_errors(visit_form, exc)
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
