"""Who may open a trial's, a participant's or a visit's page: the checks every page of the
participants and outcomes apps starts with, and the small parsing helpers they share.

Each returns the row (404 when there is none in this trial) or raises PermissionDenied when
the user's role or sites do not give access to it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from participants.models import Participant, Visit
from trial import roles
from trial.models import Trial

PARTICIPANT_RELATED = ("site", "consent_document", "screening")


def get_trial(request: HttpRequest, code: str, allowed) -> Trial:
    """The trial, if the user holds a role in it for which `allowed(user, trial)` is true."""
    trial = get_object_or_404(Trial, code=code)
    if not allowed(request.user, trial):
        raise PermissionDenied("Your role does not give access to this page.")
    return trial


def get_participant(
    request: HttpRequest, trial: Trial, pk: int, related=PARTICIPANT_RELATED
) -> Participant:
    """The participant, if the user works at its site; `related` are joined in (pages
    show them; an action that only checks and hands over to a service needs none)."""
    participant = get_object_or_404(
        Participant.objects.select_related(*related) if related else Participant.objects,
        pk=pk,
        trial=trial,
    )
    participant.trial = trial  # the row just checked, not a second copy from a join
    if not roles.works_at(request.user, trial, participant.site_id):
        raise PermissionDenied("This participant belongs to a site you do not work at.")
    return participant


def get_visit(request: HttpRequest, trial, pk: int) -> Visit:
    """The visit, if the user works at its site."""
    visit = get_object_or_404(
        Visit.objects.select_related("participant", "definition"), pk=pk, trial=trial
    )
    if not roles.works_at(request.user, trial, visit.site_id):
        raise PermissionDenied("This visit belongs to a site you do not work at.")
    return visit


def add_service_errors(form, exc: ValidationError) -> None:
    """Put a service's errors next to the fields they name, the rest above the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def int_or_none(value: str | None) -> int | None:
    """A small positive integer from a query string, or None for anything else (so a
    garbage or huge value filters nothing instead of overflowing the database)."""
    if not value or not value.isdigit() or len(value) > 9:
        return None
    return int(value)
