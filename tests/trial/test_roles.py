"""trial.roles: who belongs to a trial and works at which of its sites."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from tests import factories
from trial import roles
from trial.devtools.demo import build_modic_trial
from trial.models import Membership, Site


def _fresh(user) -> User:
    """The same user without the per-request caches roles keeps on the object."""
    return User.objects.get(pk=user.pk)


def test_a_clinician_listed_at_one_site_works_there_only(modic, site1, site2, clinician):
    assert roles.belongs_to(clinician, modic)
    assert roles.works_at(clinician, modic, site1.pk)
    assert not roles.works_at(clinician, modic, site2.pk)
    assert list(roles.sites_for(clinician, modic)) == [site1]


def test_a_membership_without_sites_means_every_site(modic, site1, site2, coordinator):
    assert roles.membership_site_ids(coordinator, modic) == frozenset()
    assert roles.works_at(coordinator, modic, site1.pk)
    assert roles.works_at(coordinator, modic, site2.pk)
    assert set(roles.sites_for(coordinator, modic)) == {site1, site2}


def test_no_membership_means_no_trial_and_no_site(modic, site1, outsider):
    assert roles.membership_site_ids(outsider, modic) is None
    assert not roles.belongs_to(outsider, modic)
    assert not roles.works_at(outsider, modic, site1.pk)
    assert list(roles.sites_for(outsider, modic)) == []


def test_a_trial_manager_manages_only_the_trials_they_hold_the_role_in(modic, site2, manager):
    other = build_modic_trial(code="OTHER")
    assert roles.is_trial_manager(manager, modic)
    assert roles.works_at(manager, modic, site2.pk)
    assert not roles.is_trial_manager(manager, other)
    assert not roles.belongs_to(manager, other)
    assert list(roles.sites_for(manager, other)) == []
    assert list(roles.trials_for(manager)) == [modic]


def test_a_superuser_manages_every_trial_without_a_membership(modic, site2):
    other = build_modic_trial(code="OTHER")
    root = factories.UserFactory(username="root", is_superuser=True)
    for trial in (modic, other):
        assert roles.is_trial_manager(root, trial)
        assert roles.belongs_to(root, trial)
        assert roles.can_view_balance(root, trial)
    assert roles.works_at(root, modic, site2.pk)
    assert set(roles.trials_for(root)) == {modic, other}


def test_roles_are_answered_for_the_trial_asked_about(modic, site1):
    other = build_modic_trial(code="OTHER")
    user = factories.persona("Clinician", trial=other, username="two-hats")
    factories.add_roles(user, modic, ["Coordinator"], sites=[site1])
    user = _fresh(user)
    assert roles.role_names(user, other) == {"Clinician"}
    assert roles.role_names(user, modic) == {"Coordinator"}
    assert roles.can_enroll(user, other) and not roles.can_enroll(user, modic)
    assert roles.can_follow_up(user, modic)
    assert not roles.can_view_balance(user, modic) and not roles.can_view_balance(user, other)
    # Without a trial: "in any trial", for navigation only.
    assert roles.role_names(user) == {"Clinician", "Coordinator"}
    assert roles.can_enroll(user)
    assert list(roles.trials_for(user, roles.can_enroll)) == [other]
    assert roles.membership_site_ids(user, modic) == {site1.pk}
    assert roles.membership_site_ids(user, other) == frozenset()


def test_several_roles_in_one_trial_add_up(modic):
    user = factories.persona(("Clinician", "Statistician"), trial=modic, username="both")
    assert roles.role_names(_fresh(user), modic) == {"Clinician", "Statistician"}
    assert roles.can_enroll(user, modic) and roles.can_view_balance(user, modic)


def test_a_membership_without_a_role_grants_nothing(modic, site1):
    user = factories.UserFactory(username="former")
    Membership.objects.create(user=user, trial=modic)
    assert roles.role_names(user, modic) == frozenset()
    assert not roles.belongs_to(user, modic)
    assert roles.membership_site_ids(user, modic) is None
    assert not roles.works_at(user, modic, site1.pk)
    assert list(roles.trials_for(user)) == []


@pytest.mark.parametrize(
    ("role", "staff", "allowed"),
    [
        ("Clinician", False, False),
        ("Coordinator", False, False),
        ("Statistician", False, True),
        ("Trial manager", False, True),
        ("Clinician", True, True),  # staff is an account setting a superuser gave
    ],
)
def test_the_admin_opens_for_the_roles_whose_work_is_there(modic, role, staff, allowed):
    user = factories.persona(role, trial=modic, username="u", staff=staff)
    assert roles.may_use_admin(_fresh(user)) is allowed


def test_a_site_of_another_trial_cannot_be_listed_in_a_membership(modic, site2):
    other = build_modic_trial(code="OTHER")
    foreign = Site.objects.filter(trial=other).first()
    user = factories.persona("Clinician", trial=modic, sites=[site2], username="mixed")
    membership = Membership.objects.get(user=user, trial=modic)
    # The database refuses the link (trial.same_trial), whatever the caller checked.
    with pytest.raises(IntegrityError), transaction.atomic():
        membership.sites.add(foreign)
    assert list(membership.sites.all()) == [site2]
    assert list(roles.sites_for(_fresh(user), modic)) == [site2]


def test_roles_and_sites_are_read_once_per_request(modic, site1, clinician,
                                                  django_assert_num_queries):  # fmt: skip
    user = _fresh(clinician)
    with django_assert_num_queries(1):
        for _ in range(3):
            assert roles.belongs_to(user, modic)
            assert roles.works_at(user, modic, site1.pk)
            assert roles.can_enroll(user, modic)
            assert roles.can_enroll(user)


@pytest.mark.parametrize("sites", [[], ["01"], ["01", "02"]])
def test_works_at_agrees_with_sites_for(modic, sites):
    chosen = [modic.sites.get(code=c) for c in sites]
    user = factories.persona("Coordinator", trial=modic, sites=chosen, username="c")
    listed = set(roles.sites_for(_fresh(user), modic).values_list("pk", flat=True))
    fresh = _fresh(user)
    assert {s.pk for s in modic.sites.all() if roles.works_at(fresh, modic, s.pk)} == listed
    assert Membership.objects.filter(user=user).count() == 1
