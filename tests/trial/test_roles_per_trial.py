"""Roles are per trial: a role held in KNEE gives nothing in MOD, in the app, the results and
the admin (issue 15, item 13: roles were global groups, so managing one trial meant managing
every trial and seeing its arm names)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from participants.models import Participant
from tests import factories
from trial import blinding
from trial.devtools.demo import build_modic_trial
from trial.models import Membership


@pytest.fixture
def knee(modic):
    return build_modic_trial(code="KNEE")


@pytest.fixture
def knee_manager(knee):
    return factories.persona("Trial manager", trial=knee, username="mgr-knee")


@pytest.fixture
def mod_participant(modic, site1, clinician):
    return factories.enrolled_participant(modic, site1, clinician)


def test_a_manager_of_another_trial_has_no_access_to_this_one(client, modic, knee_manager):
    client.force_login(knee_manager)
    for name in ("trial_home", "screening_new", "worklist", "balance", "followup_summary"):
        assert client.get(reverse(name, args=[modic.code])).status_code == 403, name
    assert client.get(reverse("trial_results", args=[modic.code])).status_code == 404


def test_a_manager_of_another_trial_sees_only_that_trial_at_home(client, modic, knee,
                                                                 knee_manager):  # fmt: skip
    client.force_login(knee_manager)
    response = client.get(reverse("home"))
    # One trial: straight to it.
    assert response.status_code == 302
    assert response["Location"] == reverse("trial_home", args=[knee.code])


def test_a_manager_in_one_trial_and_statistician_in_another_is_blinded_in_the_second(
    client, modic, knee, knee_manager
):
    Membership.objects.filter(user=knee_manager, trial=modic).delete()
    factories.add_roles(knee_manager, modic, ["Statistician"])
    assert not blinding.is_blinded(knee_manager, knee)
    assert blinding.is_blinded(knee_manager, modic)
    client.force_login(knee_manager)
    response = client.get(reverse("balance", args=[modic.code]))
    assert response.status_code == 200
    html = response.content.decode()
    for arm in modic.arms.all():
        assert f">{arm.name}<" not in html
        assert f"Arm {arm.blind_code}" in html
    # and no unblinding of a trial they do not manage
    response = client.post(
        reverse("trial_unblind", args=[modic.code]), {"reason": "curious", "confirm": "on"}
    )
    assert response.status_code == 403
    modic.refresh_from_db()
    assert modic.unblinded_at is None


def test_a_clinician_in_one_trial_and_coordinator_in_another_enrolls_only_in_the_first(
    client, modic, knee
):
    user = factories.persona("Clinician", trial=knee, username="two-hats")
    factories.add_roles(user, modic, ["Coordinator"])
    client.force_login(user)
    assert client.get(reverse("screening_new", args=[knee.code])).status_code == 200
    assert client.get(reverse("screening_new", args=[modic.code])).status_code == 403
    assert client.get(reverse("worklist", args=[modic.code])).status_code == 200
    assert client.get(reverse("worklist", args=[knee.code])).status_code == 200  # clinicians too


def test_two_roles_in_one_trial_add_up(client, modic, site1):
    user = factories.persona(("Clinician", "Statistician"), trial=modic, sites=[site1],
                             username="both")  # fmt: skip
    client.force_login(user)
    assert client.get(reverse("screening_new", args=[modic.code])).status_code == 200
    assert client.get(reverse("balance", args=[modic.code])).status_code == 200


# --- The admin: a trial manager's configuration pages list and change only their trials ---------


def test_the_admin_lists_only_the_trials_a_manager_manages(client, modic, knee, knee_manager):
    client.force_login(knee_manager)
    response = client.get(reverse("admin:trial_trial_changelist"))
    assert response.status_code == 200
    assertContains(response, reverse("admin:trial_trial_change", args=[knee.pk]))
    assertNotContains(response, reverse("admin:trial_trial_change", args=[modic.pk]))


def test_a_manager_cannot_open_or_change_another_trials_configuration(client, modic, knee_manager):
    client.force_login(knee_manager)
    change = reverse("admin:trial_trial_change", args=[modic.pk])
    response = client.get(change)
    assert response.status_code in (302, 403, 404)
    assert response.status_code != 200
    response = client.post(change, {"name": "Taken over", "target_sample_size": "5"})
    assert response.status_code != 200
    modic.refresh_from_db()
    assert modic.name != "Taken over"
    factor = modic.factors.first()
    response = client.get(reverse("admin:trial_minimizationfactor_change", args=[factor.pk]))
    assert response.status_code != 200


def test_a_manager_sees_no_participant_of_another_trial_in_the_admin(
    client, modic, knee_manager, mod_participant
):
    client.force_login(knee_manager)
    response = client.get(reverse("admin:participants_participant_changelist"))
    assert response.status_code == 200
    assertNotContains(response, mod_participant.full_name)
    assertNotContains(response, f"Enrolled #{mod_participant.pk}")
    url = reverse("admin:participants_participant_change", args=[mod_participant.pk])
    assert client.get(url).status_code != 200
    url = reverse("admin:participants_participant_history", args=[mod_participant.pk])
    assert client.get(url).status_code != 200
    assert Participant.objects.filter(pk=mod_participant.pk).exists()


def test_a_managers_pickers_offer_only_the_trials_they_manage(client, modic, knee, knee_manager):
    client.force_login(knee_manager)
    response = client.get(reverse("admin:trial_minimizationfactor_add"))
    assert response.status_code == 200
    field = response.context["adminform"].form.fields["trial"]
    assert list(field.queryset) == [knee]
    response = client.get(reverse("admin:instruments_instrument_add"))
    form = response.context["adminform"].form
    assert list(form.fields["trial"].queryset) == [knee]
    assert {v.trial_id for v in form.fields["visits"].queryset} == {knee.pk}


def test_the_admins_trial_filter_names_only_the_managers_trials(client, modic, knee,
                                                                knee_manager):  # fmt: skip
    client.force_login(knee_manager)
    response = client.get(reverse("admin:participants_participant_changelist"))
    assertNotContains(response, f"trial__id__exact={modic.pk}")
    assertNotContains(response, modic.name)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("statistician", True), ("manager", True), ("clinician", False), ("coordinator", False)],
)
def test_the_admin_login_lets_in_the_roles_whose_work_is_there_without_the_staff_flag(
    client, request, who, allowed
):
    user = request.getfixturevalue(who)
    assert not user.is_staff
    response = client.post(
        reverse("admin:login"),
        {"username": user.username, "password": "pw-for-tests-123", "next": "/admin/"},
    )
    if allowed:
        assert response.status_code == 302 and response["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200
    else:
        assert response.status_code == 200
        assert response.context["form"].errors
        assert client.get("/admin/").status_code == 302
