"""Every user changes their own password, and resets a forgotten one by e-mail: Django's
views with our templates. The reset is tested over a real SMTP listener on loopback."""

from __future__ import annotations

import email
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.pgcluster import free_port

OLD = "pw-for-tests-123"  # factories.UserFactory's
NEW = "a-new-long-passphrase-for-2025"
RESET_LINK = re.compile(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)")


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages: list[tuple[list[str], Message]] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        self.arrived.set()
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(settings) -> Iterator[Inbox]:
    """A real SMTP server on a loopback port, and Django's SMTP backend pointed at it."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield inbox
    finally:
        controller.stop()


def can_log_in(username: str, password: str) -> bool:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


@pytest.fixture
def clinician_with_email(clinician):
    clinician.email = "clinician@example.org"
    clinician.save()
    return clinician


# --- Change -----------------------------------------------------------------------------


def test_a_clinician_changes_their_own_password(client, clinician):
    client.force_login(clinician)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200
    assert [t.name for t in page.templates][:2] == [
        "registration/password_change.html",
        "base.html",
    ]

    response = client.post(
        "/accounts/password_change/",
        {"old_password": OLD, "new_password1": NEW, "new_password2": NEW},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert client.get(response["Location"]).status_code == 200
    clinician.refresh_from_db()
    assert clinician.check_password(NEW)
    # The session that changed it stays logged in; the old password no longer works.
    assert client.get(reverse("home"), follow=True).status_code == 200
    assert "_auth_user_id" in client.session
    assert not can_log_in(clinician.username, OLD)


def test_a_wrong_current_password_changes_nothing_and_says_why(client, clinician):
    client.force_login(clinician)
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    clinician.refresh_from_db()
    assert clinician.check_password(OLD)


def test_the_navigation_links_to_the_password_change_and_the_login_page_to_the_reset(
    client, clinician
):
    assert reverse("password_reset") in client.get(reverse("login")).content.decode()
    client.force_login(clinician)
    page = client.get(reverse("home"), follow=True)
    assert reverse("password_change") in page.content.decode()


# --- Reset by e-mail --------------------------------------------------------------------------


def request_reset(client: Client, address: str, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("password_reset"), {"email": address})


def test_a_password_reset_mail_arrives_over_smtp_and_its_link_sets_a_new_password(
    client, settings, clinician_with_email, django_capture_on_commit_callbacks
):
    with smtp_server(settings) as inbox:
        response = request_reset(
            client, clinician_with_email.email, django_capture_on_commit_callbacks
        )
        assert inbox.arrived.wait(10), "no mail arrived"

    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    [(recipients, message)] = inbox.messages
    assert recipients == [clinician_with_email.email]
    assert message["From"] == django_settings.DEFAULT_FROM_EMAIL
    body = message.get_payload(decode=True).decode()
    assert clinician_with_email.username in body
    link = RESET_LINK.search(body).group(1)

    form = client.get(link, follow=True)
    assert form.status_code == 200
    assert [t.name for t in form.templates][:2] == [
        "registration/password_reset_new.html",
        "base.html",
    ]
    set_password_url = form.redirect_chain[-1][0]
    done = client.post(set_password_url, {"new_password1": NEW, "new_password2": NEW})

    assert done.status_code == 302
    assert done["Location"] == reverse("password_reset_complete")
    assert client.get(done["Location"]).status_code == 200
    assert can_log_in(clinician_with_email.username, NEW)
    assert not can_log_in(clinician_with_email.username, OLD)
    spent = client.get(link)
    assert spent.status_code == 200 and spent.context["validlink"] is False


def test_a_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(
    client, settings, clinician_with_email, django_capture_on_commit_callbacks
):
    with smtp_server(settings) as inbox:
        known = request_reset(
            client, clinician_with_email.email, django_capture_on_commit_callbacks
        )
        assert inbox.arrived.wait(10)
        unknown = request_reset(client, "nobody@example.org", django_capture_on_commit_callbacks)

    assert len(inbox.messages) == 1
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    sent_page = client.get(known["Location"])
    assert [t.name for t in sent_page.templates][:2] == [
        "registration/password_reset_sent.html",
        "base.html",
    ]
    assert "If an account" in sent_page.content.decode()


def test_a_completed_reset_lifts_a_login_lockout(
    client, clinician_with_email, django_capture_on_commit_callbacks, mailoutbox
):
    """The mail proves the user holds the account's address; they should not then wait
    out the cool-off caused by the forgotten password."""
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": clinician_with_email.username, "password": "x"})
    assert not can_log_in(clinician_with_email.username, OLD)

    request_reset(client, clinician_with_email.email, django_capture_on_commit_callbacks)
    link = RESET_LINK.search(mailoutbox[0].body).group(1)
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})

    assert can_log_in(clinician_with_email.username, NEW)


def test_inactive_accounts_get_no_reset_mail(
    client, clinician_with_email, django_capture_on_commit_callbacks, mailoutbox
):
    User.objects.filter(pk=clinician_with_email.pk).update(is_active=False)
    response = request_reset(client, clinician_with_email.email, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert mailoutbox == []
