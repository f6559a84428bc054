"""Failed logins are throttled (django-axes) on both login pages: after LOGIN_FAILURE_LIMIT
wrong passwords for one username from one address, logging in as that user from there is
refused, even with the right password, until LOGIN_COOLOFF_MINUTES pass; every failure is
kept in an audit log that superusers read in the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client, RequestFactory

from tests.trial.test_settings import PRODUCTION, settings_in
from trial import accounts

PASSWORD = "pw-for-tests-123"  # factories.UserFactory's
WRONG = "not-the-password"
PAGES = {
    "site": ("/accounts/login/", "clinician"),
    "admin": ("/admin/login/", "manager"),
}


@pytest.fixture
def people(clinician, manager):
    return {"clinician": clinician, "manager": manager}


def attempt(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password, "next": "/"})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def assert_locked_out(response) -> None:
    assert response.status_code == 429
    # Our page, in the site's layout (the login form rendered first is replaced).
    names = [t.name for t in response.templates]
    assert names[names.index("registration/locked_out.html") + 1] == "base.html"
    assert "Too many failed logins" in response.content.decode()
    minutes = int(django_settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"{minutes} minutes" in response.content.decode()


def lock_out(client: Client, url: str, username: str) -> None:
    limit = django_settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = attempt(client, url, username, WRONG)
        assert response.status_code == 200, "refused before the limit"
        assert not logged_in(client)
    assert_locked_out(attempt(client, url, username, WRONG))


def pass_the_cool_off() -> None:
    """Move every recorded failure back by the cool-off, as if that much time had passed."""
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - django_settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )


@pytest.mark.parametrize("page", PAGES)
def test_the_failure_limit_locks_out_the_next_attempt_even_with_the_right_password(
    client, people, page
):
    url, who = PAGES[page]
    username = people[who].username
    lock_out(client, url, username)

    response = attempt(client, url, username, PASSWORD)

    assert_locked_out(response)
    assert not logged_in(client)


@pytest.mark.parametrize("page", PAGES)
def test_the_cool_off_releases_the_lockout(client, people, page):
    url, who = PAGES[page]
    username = people[who].username
    lock_out(client, url, username)
    assert_locked_out(attempt(client, url, username, PASSWORD))

    pass_the_cool_off()
    response = attempt(client, url, username, PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


def test_below_the_limit_a_right_password_logs_in_and_clears_the_failures(client, clinician):
    for _ in range(django_settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "/accounts/login/", clinician.username, WRONG)
    assert attempt(client, "/accounts/login/", clinician.username, PASSWORD).status_code == 302
    client.logout()
    # A user's typos do not add up across successful logins.
    assert attempt(client, "/accounts/login/", clinician.username, WRONG).status_code == 200


def test_the_lockout_is_per_username_and_address(client, clinician, coordinator):
    """Locking by the pair stops guessing one account from one place without letting
    anyone lock a clinician out of the trial from elsewhere."""
    lock_out(client, "/accounts/login/", clinician.username)

    other_user = Client()
    assert (
        attempt(other_user, "/accounts/login/", coordinator.username, PASSWORD).status_code == 302
    )
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert attempt(elsewhere, "/accounts/login/", clinician.username, PASSWORD).status_code == 302


def test_failures_are_audited_and_shown_to_superusers_only(client, clinician, manager):
    lock_out(client, "/accounts/login/", clinician.username)
    failures = AccessFailureLog.objects.filter(username=clinician.username)
    assert failures.count() == django_settings.AXES_FAILURE_LIMIT
    assert failures.filter(locked_out=True).count() == 1
    assert set(failures.values_list("ip_address", flat=True)) == {"127.0.0.1"}

    admin = User.objects.create_superuser("root", "root@example.org", "pw-for-tests-123")
    client.force_login(admin)
    page = client.get("/admin/axes/accessfailurelog/")
    assert page.status_code == 200
    assert clinician.username in page.content.decode()
    assert client.get("/admin/axes/accessattempt/").status_code == 200

    client.force_login(manager)
    assert client.get("/admin/axes/accessfailurelog/").status_code == 403
    assert client.get("/admin/axes/accessattempt/").status_code == 403


def test_the_client_address_is_the_proxys_last_forwarded_address_only_behind_a_tls_proxy(
    settings,
):
    request = RequestFactory().post(
        "/accounts/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9"
    )
    # Without a proxy a client could write any X-Forwarded-For to escape the lockout.
    settings.BEHIND_TLS_PROXY = False
    assert accounts.client_ip(request) == "10.0.0.2"
    # The proxy appends the address it saw; anything to its left came from the client.
    settings.BEHIND_TLS_PROXY = True
    assert accounts.client_ip(request) == "203.0.113.9"
    assert accounts.client_ip(RequestFactory().post("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"


def test_the_limit_cool_off_and_lockout_key_come_from_the_environment():
    names = "settings.AXES_FAILURE_LIMIT", "settings.AXES_COOLOFF_TIME"
    assert settings_in(PRODUCTION, *names, "settings.AXES_LOCKOUT_PARAMETERS") == [
        "5",
        "datetime.timedelta(seconds=900)",
        "[['username', 'ip_address']]",
    ]
    env = {
        **PRODUCTION,
        "LOGIN_FAILURE_LIMIT": "10",
        "LOGIN_COOLOFF_MINUTES": "60",
        "LOGIN_LOCKOUT_BY": "username,ip_address",
    }
    assert settings_in(env, *names, "settings.AXES_LOCKOUT_PARAMETERS") == [
        "10",
        "datetime.timedelta(seconds=3600)",
        "['username', 'ip_address']",
    ]
