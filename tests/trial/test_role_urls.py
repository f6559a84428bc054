"""Role × URL: account administration is for superusers only; a trial's team page (its roles
and sites) is for that trial's managers only (issue 15, item 13).

Every role is tried, including the manager of ANOTHER trial: roles are per trial, so managing
KNEE gives nothing in MOD.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from tests import factories
from trial.devtools.demo import build_modic_trial

ROLES = ("clinician", "coordinator", "statistician", "manager", "knee_manager", "superuser")
NOT_SUPERUSERS = tuple(r for r in ROLES if r != "superuser")
TEAM_ALLOWED = ("manager", "superuser")
TEAM_REFUSED = tuple(r for r in ROLES if r not in TEAM_ALLOWED)


@pytest.fixture
def knee(modic):
    return build_modic_trial(code="KNEE")


@pytest.fixture
def knee_manager(knee):
    return factories.persona("Trial manager", trial=knee, username="mgr-knee")


@pytest.fixture
def knee_statistician(knee):
    """The account the audit's manager made a superuser (issue 15, item 13)."""
    return factories.persona("Statistician", trial=knee, username="stat-knee")


@pytest.fixture
def superuser(db):
    return factories.UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def auditors(db):
    return Group.objects.create(name="Auditors")


def _login(request, client, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    return user


def _refused(response) -> bool:
    """403, or sent to the admin's login page (not allowed into the admin at all)."""
    if response.status_code == 403:
        return True
    return response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def _user_admin_urls(victim: User, group: Group) -> list[str]:
    return [
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_user_add"),
        reverse("admin:auth_user_change", args=[victim.pk]),
        reverse("admin:auth_user_password_change", args=[victim.pk]),
        reverse("admin:auth_user_delete", args=[victim.pk]),
        reverse("admin:auth_user_history", args=[victim.pk]),
        reverse("admin:auth_group_changelist"),
        reverse("admin:auth_group_add"),
        reverse("admin:auth_group_change", args=[group.pk]),
    ]


@pytest.mark.parametrize("role", NOT_SUPERUSERS)
def test_user_administration_pages_are_refused_to_everyone_but_superusers(
    request, client, role, knee_statistician, auditors
):
    _login(request, client, role)
    for url in _user_admin_urls(knee_statistician, auditors):
        response = client.get(url)
        assert _refused(response), (role, url, response.status_code)


def test_user_administration_pages_open_for_a_superuser(client, superuser, knee_statistician,
                                                        auditors):  # fmt: skip
    client.force_login(superuser)
    for url in _user_admin_urls(knee_statistician, auditors):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("role", NOT_SUPERUSERS)
def test_nobody_but_a_superuser_can_make_an_account_superuser_or_staff(
    request, client, role, knee_statistician
):
    _login(request, client, role)
    response = client.post(
        reverse("admin:auth_user_change", args=[knee_statistician.pk]),
        {
            "username": knee_statistician.username,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert _refused(response), response.status_code
    knee_statistician.refresh_from_db()
    assert not knee_statistician.is_superuser
    assert not knee_statistician.is_staff


@pytest.mark.parametrize("role", NOT_SUPERUSERS)
def test_nobody_but_a_superuser_can_set_another_users_password(
    request, client, role, knee_statistician
):
    _login(request, client, role)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[knee_statistician.pk]),
        {"password1": "taken-over-9876", "password2": "taken-over-9876", "usable_password": "true"},
    )
    assert _refused(response), response.status_code
    knee_statistician.refresh_from_db()
    assert not knee_statistician.check_password("taken-over-9876")


@pytest.mark.parametrize("role", NOT_SUPERUSERS)
def test_nobody_but_a_superuser_can_create_an_account(request, client, role):
    _login(request, client, role)
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "newcomer", "password1": "new-account-9876", "password2": "new-account-9876",
         "usable_password": "true"},
    )  # fmt: skip
    assert _refused(response), response.status_code
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize("role", ROLES)
def test_the_team_page_is_for_the_trials_managers_only(request, client, role, modic):
    _login(request, client, role)
    url = reverse("trial_team", args=[modic.code])
    response = client.get(url)
    if role in TEAM_ALLOWED:
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", TEAM_REFUSED)
def test_a_role_cannot_be_granted_in_a_trial_the_user_does_not_manage(
    request, client, role, modic, knee_statistician
):
    """Not even a trial manager of KNEE can give someone a role in MOD."""
    _login(request, client, role)
    response = client.post(
        reverse("trial_team", args=[modic.code]),
        {"username": knee_statistician.username, "roles": ["Trial manager"]},
    )
    assert response.status_code == 403
    assert not knee_statistician.trial_memberships.filter(trial=modic).exists()
