"""Logging in, and what a user does with their own password: failed-login throttling
(django-axes, configured in settings), the password change and the reset by e-mail
(Django's views with our templates and the two changes below).

Account administration — creating users, staff and superuser flags, setting someone
else's password — is not here: it is the admin's, for superusers.
"""

from __future__ import annotations

import ipaddress
import math
from functools import partial

from axes.helpers import get_cool_off, get_failure_limit
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string


def client_ip(request: HttpRequest) -> str | None:
    """The address login failures are counted against (AXES_CLIENT_IP_CALLABLE).

    Behind a TLS proxy every request comes from the proxy; the client's address is the last
    one in X-Forwarded-For, the one the proxy appended (addresses to its left were written
    by the client and could be changed at every attempt to escape the lockout). Without a
    declared proxy that header is ignored for the same reason.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass  # no header (a request past the proxy) or not an address: the peer's
    return request.META.get("REMOTE_ADDR")


def locked_out(request: HttpRequest, original_response, credentials: dict | None) -> HttpResponse:
    """The lockout page (AXES_LOCKOUT_CALLABLE): ours, with the wait in whole minutes."""
    minutes = math.ceil(get_cool_off(request).total_seconds() / 60)
    context = {"failure_limit": get_failure_limit(request, credentials), "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form (the same answer whether or not the address belongs to an active
    account), with the mail sent by a Celery task after the commit: an SMTP conversation
    inside the request would make it measurably slower for a known address."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        from trial.tasks import send_account_mail

        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        # robust: a broker outage must not answer differently for a known address; the
        # failure is logged and the user can ask again.
        send = partial(send_account_mail.delay, subject, body, to_email)
        transaction.on_commit(send, robust=True)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Setting a new password from the mailed link also lifts a login lockout: the link
    proves the user holds the account's address, and the lockout most likely came from
    the password they had forgotten."""

    def form_valid(self, form):
        response = super().form_valid(form)
        axes_reset(username=form.user.get_username())
        return response
