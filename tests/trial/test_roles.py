"""trial.roles: who belongs to a trial and works at which of its sites."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from tests import factories
from trial import roles
from trial.demo import build_modic_trial
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


def test_trial_managers_belong_to_every_trial_and_work_at_every_site(modic, site2, manager):
    other = build_modic_trial(code="OTHER")
    assert roles.belongs_to(manager, other)
    assert roles.works_at(manager, modic, site2.pk)


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


def test_membership_is_read_once_per_request(modic, site1, clinician,
                                             django_assert_num_queries):  # fmt: skip
    user = _fresh(clinician)
    roles.role_names(user)  # the groups: a query of its own, once
    with django_assert_num_queries(1):
        for _ in range(3):
            assert roles.belongs_to(user, modic)
            assert roles.works_at(user, modic, site1.pk)


@pytest.mark.parametrize("sites", [[], ["01"], ["01", "02"]])
def test_works_at_agrees_with_sites_for(modic, sites):
    chosen = [modic.sites.get(code=c) for c in sites]
    user = factories.persona("Coordinator", trial=modic, sites=chosen, username="c")
    listed = set(roles.sites_for(_fresh(user), modic).values_list("pk", flat=True))
    fresh = _fresh(user)
    assert {s.pk for s in modic.sites.all() if roles.works_at(fresh, modic, s.pk)} == listed
    assert Membership.objects.filter(user=user).count() == 1
