"""Requests the server refuses as malformed: 400 with a message saying what was wrong.

`BadInput` is a `BadRequest` whose message is written for the user; Django turns it into a
400 through `bad_request` (the URLconf's handler400), which shows that message. Other
malformed requests Django refuses itself (a suspicious operation, too many fields) get a
general one.

`RejectNulMiddleware` refuses a NUL character (U+0000) in the path, a query or form parameter
(name or value), an uploaded file's name or a cookie, before any view or database query sees
it: PostgreSQL's text types cannot hold NUL, so a query comparing a column with such a value
fails on the server (the driver refuses it), while SQLite would store or compare it — the
same request must mean the same on both. No field of the system accepts NUL: it is never
typed, only pasted from binary data or sent by a probe. The SMS gateway's webhooks opt out
with `nul_characters_allowed`: they must never lose a participant's message, and replace NUL
by U+FFFD themselves (outcomes.sms.webhooks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django import forms
from django.core.exceptions import BadRequest, ValidationError
from django.db import connection, models
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template import loader
from django.utils.translation import gettext as _

NUL = "\x00"


class BadInput(BadRequest):
    """A malformed request, with a message for the user (shown on the 400 page) and,
    optionally, the address of the page without the bad input."""

    def __init__(self, message: str, *, back_url: str | None = None):
        super().__init__(message)
        self.message = message
        self.back_url = back_url


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 400 page (handler400). Rendered without the request's context processors: the
    request may be refused before its session or user are known, and reading them with a
    malformed cookie is what must not happen."""
    if isinstance(exception, BadInput):
        message, back_url = exception.message, exception.back_url
    else:
        message = _("The request was malformed and could not be handled. Go back and try again.")
        back_url = None
    html = loader.render_to_string("400.html", {"message": message, "back_url": back_url})
    return HttpResponseBadRequest(html)


def nul_characters_allowed(view: Callable) -> Callable:
    """Let a view receive NUL characters in its form data; it must make them safe itself."""
    view.nul_characters_allowed = True
    return view


def _has_nul(values: Iterable[str]) -> bool:
    return any(NUL in value for value in values)


def _refuse() -> BadInput:
    return BadInput(
        _(
            "The address, a form field or a cookie of this request contains a NUL character "
            "(character code 0), which no field accepts. Remove it and try again."
        )
    )


class RejectNulMiddleware:
    """Refuse a NUL character anywhere in a request with 400 (see the module docstring).

    The path, query string and cookies are checked before anything else runs (a session
    cookie with NUL would otherwise reach the session table); form data once the view is
    known, so a view may opt out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            NUL in request.path_info
            or _has_nul(request.COOKIES)
            or _has_nul(request.COOKIES.values())
            or _has_nul(request.GET)
            or any(_has_nul(values) for _, values in request.GET.lists())
        ):
            raise _refuse()
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "nul_characters_allowed", False):
            return None
        if (
            _has_nul(request.POST)
            or any(_has_nul(values) for _, values in request.POST.lists())
            or _has_nul(request.FILES)
            or any(_has_nul(f.name or "" for f in files) for _, files in request.FILES.lists())
        ):
            raise _refuse()
        return None


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """A multiple choice of objects that refuses, as an invalid choice, an id its key column
    cannot hold. Django looks the chosen ids up with one `IN` query and passes the values
    on: an id past the column's range (a 40-digit number) made SQLite's driver raise
    OverflowError and PostgreSQL refuse the statement — a server error for bad input."""

    def _check_values(self, value):
        meta = self.queryset.model._meta
        field = meta.get_field(self.to_field_name) if self.to_field_name else meta.pk
        if isinstance(field, models.IntegerField | models.AutoField):
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            for item in value:
                try:
                    number = int(str(item))
                except ValueError:
                    continue  # Django's own check refuses it as not a whole number
                if (low is not None and number < low) or (high is not None and number > high):
                    raise ValidationError(
                        self.error_messages["invalid_choice"],
                        code="invalid_choice",
                        params={"value": item},
                    )
        return super()._check_values(value)
