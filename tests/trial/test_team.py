"""The team page: a trial's managers grant and revoke roles and sites for existing accounts of
their trial, every change recorded (who, when, before and after) and shown; accounts
themselves are never touched (issue 15, item 13)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from tests import factories
from trial import roles, services, team
from trial.devtools.demo import build_modic_trial
from trial.models import Membership, Trial
from trial.permissions import manager_permissions


@pytest.fixture
def knee(modic):
    return build_modic_trial(code="KNEE")


@pytest.fixture
def knee_manager(knee):
    return factories.persona("Trial manager", trial=knee, username="mgr-knee")


@pytest.fixture
def newcomer(db):
    """An account with no role anywhere yet (made by an administrator)."""
    return factories.UserFactory(username="newcomer", first_name="New", last_name="Comer")


def team_url(trial) -> str:
    return reverse("trial_team", args=[trial.code])


def member_url(membership) -> str:
    return reverse("trial_team_member", args=[membership.trial.code, membership.pk])


def _membership(user, trial) -> Membership:
    return Membership.objects.get(user=user, trial=trial)


# --- Granting and revoking on the page --------------------------------------------------------


def test_a_manager_adds_an_existing_account_with_roles_and_sites(client, modic, site1, manager,
                                                                 newcomer):  # fmt: skip
    client.force_login(manager)
    response = client.post(
        team_url(modic),
        {"username": "newcomer", "roles": ["Clinician", "Coordinator"], "sites": [site1.pk]},
    )
    assertRedirects(response, team_url(modic))
    fresh = User.objects.get(pk=newcomer.pk)
    assert roles.role_names(fresh, modic) == {"Clinician", "Coordinator"}
    assert roles.membership_site_ids(fresh, modic) == {site1.pk}
    membership = _membership(newcomer, modic)
    (row,) = membership.history.all()
    assert row.history_user == manager
    assert (row.clinician, row.coordinator, row.trial_manager) == (True, True, False)
    assert [s.site_id for s in row.historicalmembership_sites_set.all()] == [site1.pk]


def test_the_team_page_shows_who_changed_what_and_when(client, modic, site1, site2, manager,
                                                       newcomer):  # fmt: skip
    services.membership_change(
        trial=modic, user=newcomer, roles_after=["Clinician"], sites=[site1], by=manager
    )
    membership = _membership(newcomer, modic)
    client.force_login(manager)
    response = client.post(
        member_url(membership), {"roles": ["Coordinator"], "sites": [site1.pk, site2.pk]}
    )
    assertRedirects(response, team_url(modic))
    page = client.get(team_url(modic))
    history = page.context["page"].object_list
    latest, first = history[0], history[1]
    assert (latest.by, latest.user) == (manager, newcomer)
    assert [str(r) for r in latest.granted] == ["Coordinator"]
    assert [str(r) for r in latest.revoked] == ["Clinician"]
    assert (latest.sites_before, latest.sites_after) == (("01",), ("01", "02"))
    assert first.sites_before is None  # added to the team
    assertContains(page, "newcomer")
    assertContains(page, 'id="team-history"')
    # The member's own page shows the same changes.
    own = client.get(member_url(membership))
    assert len(own.context["history"]) == 2


def test_an_unknown_or_deactivated_username_is_refused_next_to_the_field(client, modic,
                                                                         manager):  # fmt: skip
    factories.UserFactory(username="gone", is_active=False)
    client.force_login(manager)
    for username in ("nobody", "gone"):
        response = client.post(team_url(modic), {"username": username, "roles": ["Clinician"]})
        assert response.status_code == 200
        assert "username" in response.context["form"].errors
    assert not Membership.objects.filter(user__username__in=["nobody", "gone"]).exists()


def test_adding_someone_needs_at_least_one_role(client, modic, manager, newcomer):
    client.force_login(manager)
    response = client.post(team_url(modic), {"username": "newcomer"})
    assert "roles" in response.context["form"].errors
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_crafted_post_cannot_make_anyone_staff_or_superuser_or_set_a_password(
    client, modic, manager, newcomer
):
    client.force_login(manager)
    client.post(
        team_url(modic),
        {
            "username": "newcomer",
            "roles": ["Statistician"],
            "is_staff": "on",
            "is_superuser": "on",
            "password": "taken-over-9876",
            "password1": "taken-over-9876",
        },
    )
    newcomer.refresh_from_db()
    assert not newcomer.is_staff and not newcomer.is_superuser
    assert not newcomer.check_password("taken-over-9876")
    assert roles.role_names(newcomer, modic) == {"Statistician"}


def test_the_last_trial_manager_cannot_remove_their_own_role(client, modic, manager):
    client.force_login(manager)
    membership = _membership(manager, modic)
    before = membership.history.count()
    response = client.post(member_url(membership), {"roles": ["Statistician"]})
    assert response.status_code == 200
    assert "roles" in response.context["form"].errors
    assertContains(response, "must keep at least one trial manager")
    assert roles.is_trial_manager(User.objects.get(pk=manager.pk), modic)
    assert membership.history.count() == before  # nothing written


def test_a_manager_may_hand_over_when_another_manager_remains(client, modic, manager, newcomer):
    services.membership_change(
        trial=modic, user=newcomer, roles_after=["Trial manager"], sites=[], by=manager
    )
    client.force_login(manager)
    response = client.post(member_url(_membership(manager, modic)), {"roles": ["Statistician"]})
    assertRedirects(response, reverse("home"), fetch_redirect_response=False)
    fresh = User.objects.get(pk=manager.pk)
    assert roles.role_names(fresh, modic) == {"Statistician"}
    assert client.get(team_url(modic)).status_code == 403


def test_revoking_every_role_ends_access_and_keeps_the_history(client, modic, site1, manager,
                                                               clinician):  # fmt: skip
    client.force_login(manager)
    membership = _membership(clinician, modic)
    before = membership.history.count()
    response = client.post(member_url(membership), {"roles": []})
    assertRedirects(response, team_url(modic))
    client.force_login(clinician)
    assert client.get(reverse("trial_home", args=[modic.code])).status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()
    latest = membership.history.first()
    assert membership.history.count() == before + 1
    assert (latest.clinician, latest.history_user) == (False, manager)


def test_a_membership_of_another_trial_cannot_be_reached_through_this_one(client, modic, manager,
                                                                          knee_manager):  # fmt: skip
    client.force_login(manager)
    foreign = _membership(knee_manager, Trial.objects.get(code="KNEE"))
    url = reverse("trial_team_member", args=[modic.code, foreign.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"roles": []}).status_code == 404
    assert roles.is_trial_manager(User.objects.get(pk=knee_manager.pk), foreign.trial)


def test_the_team_link_is_offered_to_the_trials_managers_only(client, modic, manager,
                                                              coordinator):  # fmt: skip
    client.force_login(manager)
    assertContains(client.get(reverse("worklist", args=[modic.code])), team_url(modic))
    client.force_login(coordinator)
    assertNotContains(client.get(reverse("worklist", args=[modic.code])), team_url(modic))


def test_the_home_page_lists_each_trial_with_the_roles_held_there(client, modic, knee, site1):
    user = factories.persona("Clinician", trial=modic, sites=[site1], username="two-hats")
    factories.add_roles(user, knee, ["Statistician"])
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    rows = {t.code: [str(r) for r in labels] for t, labels in response.context["trials"]}
    assert rows == {"MOD": ["Clinician"], "KNEE": ["Statistician"]}


# --- The service ------------------------------------------------------------------------------


def test_only_a_manager_of_the_trial_may_change_its_team(modic, knee_manager, newcomer):
    with pytest.raises(PermissionDenied):
        services.membership_change(
            trial=modic, user=newcomer, roles_after=["Trial manager"], sites=[], by=knee_manager
        )
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_site_of_another_trial_is_refused(modic, knee, manager, newcomer):
    foreign = knee.sites.first()
    with pytest.raises(ValidationError) as refused:
        services.membership_change(
            trial=modic, user=newcomer, roles_after=["Clinician"], sites=[foreign], by=manager
        )
    assert "sites" in refused.value.message_dict
    assert not Membership.objects.filter(user=newcomer).exists()


def test_each_change_is_one_history_row_and_no_change_writes_none(modic, site1, site2, manager,
                                                                  newcomer):  # fmt: skip
    for _ in range(2):
        services.membership_change(
            trial=modic, user=newcomer, roles_after=["Clinician"], sites=[site1, site2],
            by=manager,
        )  # fmt: skip
    services.membership_change(
        trial=modic, user=newcomer, roles_after=["Clinician"], sites=[site2], by=manager
    )
    history = list(_membership(newcomer, modic).history.order_by("history_id"))
    assert len(history) == 2
    assert [sorted(s.site_id for s in h.historicalmembership_sites_set.all()) for h in history] == [
        sorted([site1.pk, site2.pk]),
        [site2.pk],
    ]


def test_a_superuser_may_change_any_trials_team(modic, newcomer):
    root = factories.UserFactory(username="root", is_superuser=True)
    services.membership_change(
        trial=modic, user=newcomer, roles_after=["Trial manager"], sites=[], by=root
    )
    assert roles.is_trial_manager(User.objects.get(pk=newcomer.pk), modic)


# --- The admin: a trial's creator manages it; no account rights come with a role ---------------


def test_a_trial_added_in_the_admin_by_a_manager_is_managed_by_them(client, knee_manager):
    client.force_login(knee_manager)
    response = client.post(
        reverse("admin:trial_trial_add"),
        {
            "code": "HIP",
            "name": "Hip trial",
            "status": "setup",
            "target_sample_size": "50",
            "recruitment_start": "2024-01-01",
            "time_zone": "Europe/Copenhagen",
            "imbalance_measure": "range",
            "preferred_probability": "0.8",
            "initial_random_allocations": "0",
            **{
                f"{prefix}-{k}": "0"
                for prefix in (
                    "sites", "arms", "criteria", "baseline_variables", "visit_definitions",
                    "consent_documents",
                )
                for k in ("TOTAL_FORMS", "INITIAL_FORMS")
            },
        },
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    hip = Trial.objects.get(code="HIP")
    fresh = User.objects.get(pk=knee_manager.pk)
    assert roles.is_trial_manager(fresh, hip)
    assert _membership(knee_manager, hip).history.get().history_change_reason == (
        "Created the trial"
    )


def test_a_trial_managers_admin_permissions_never_reach_accounts_or_memberships():
    perms = manager_permissions()
    assert "trial.change_trial" in perms and "instruments.change_instrument" in perms
    assert not [p for p in perms if p.startswith("auth.")]
    assert not [p for p in perms if p.endswith("_membership")]
    assert "instruments.view_eq5dvalueset" in perms
    assert "instruments.change_eq5dvalueset" not in perms  # shared by every trial
    assert "participants.change_participant" not in perms


def test_a_statistician_holds_no_admin_permission(modic, statistician):
    assert statistician.get_all_permissions() == set()
    assert not statistician.has_module_perms("trial")


# --- The rule, decided alone ------------------------------------------------------------------

ROLES = frozenset({"A", "B", "M"})


@given(
    before=st.frozensets(st.sampled_from(sorted(ROLES))),
    after=st.frozensets(st.sampled_from(sorted(ROLES))),
    others=st.integers(min_value=0, max_value=3),
)
def test_a_decision_never_leaves_a_trial_without_a_manager(before, after, others):
    decision = team.decide_team_change(
        roles_before=before,
        roles_after=after,
        sites_before=frozenset(),
        sites_after=frozenset(),
        known_roles=ROLES,
        manager_role="M",
        trial_site_ids=frozenset(),
        other_managers=others,
    )
    managers_after = others + ("M" in after)
    managers_before = others + ("M" in before)
    if not decision.refusals:
        assert managers_after >= 1 or managers_before == 0
    else:
        assert decision.refusals == (team.LAST_MANAGER,)
    assert decision.granted == after - before and decision.revoked == before - after


def test_a_decision_refuses_unknown_roles_and_foreign_sites():
    decision = team.decide_team_change(
        roles_before=frozenset(),
        roles_after=frozenset({"Superuser"}),
        sites_before=frozenset(),
        sites_after=frozenset({99}),
        known_roles=ROLES,
        manager_role="M",
        trial_site_ids=frozenset({1, 2}),
        other_managers=1,
    )
    assert set(decision.refusals) == {team.UNKNOWN_ROLE, team.FOREIGN_SITE}


def test_the_team_rule_imports_neither_django_nor_the_project():
    tree = ast.parse(Path(team.__file__).read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [n for n in names if n.split(".")[0] in ("django", "trial", "")] == []
