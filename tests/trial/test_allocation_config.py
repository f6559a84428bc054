"""Allocation-shaping configuration: p against the bound for the arms' allocation ratios
(issue 15, item 2), unequal allocation ratios and the site factor (item 3), in the models,
the database and the admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from participants import services
from participants.models import Allocation
from tests import factories
from tests.trial.test_admin import BrowserForm, factor_change_url, trial_change_url
from trial.models import (
    LOCKED_REASON,
    Arm,
    ConfigurationLocked,
    FactorLevel,
    MinimizationFactor,
    Site,
    Trial,
)


@pytest.fixture
def admin_client_for_manager(client, manager):
    client.force_login(manager)
    return client


def sham(trial, ratio: int = 1) -> Arm:
    return Arm(trial=trial, code="sham", name="Sham", order=3, allocation_ratio=ratio)


# --- Item 2: p and the number of arms ------------------------------------------------------


def test_a_three_arm_trial_refuses_p_below_two_thirds_naming_the_bound(modic):
    sham(modic).save()
    modic.preferred_probability = Decimal("0.6")
    with pytest.raises(ValidationError) as caught:
        modic.full_clean()
    (message,) = caught.value.message_dict["preferred_probability"]
    assert "With 3 arms" in message and "at least 2/3 (0.667), not 0.6" in message
    modic.preferred_probability = Decimal("0.667")
    modic.full_clean()


def test_adding_an_arm_that_would_put_p_below_the_bound_is_refused_and_nothing_is_saved(modic):
    Trial.objects.filter(pk=modic.pk).update(preferred_probability=Decimal("0.6"))
    with pytest.raises(ValidationError, match=r"With 3 arms.*at least 2/3 \(0\.667\)"):
        sham(modic).save()
    assert list(modic.arms.values_list("code", flat=True)) == ["rest", "exercise"]


def test_unequal_ratios_name_the_bound_for_their_slots(modic):
    factories.three_arm_site_design(modic)  # 2:2:1 at p = 0.8, the bound
    modic.preferred_probability = Decimal("0.75")
    with pytest.raises(ValidationError) as caught:
        modic.full_clean()
    (message,) = caught.value.message_dict["preferred_probability"]
    assert "ratios 2:2:1 (5 slots)" in message and "at least 4/5 (0.800)" in message


def test_ratios_with_a_common_factor_are_refused(modic):
    Arm.objects.filter(trial=modic).update(allocation_ratio=2)
    with pytest.raises(ValidationError, match=r"common factor 2.*lowest terms \(1:1\)"):
        modic.full_clean()


def test_the_database_keeps_ratios_between_one_and_ten(modic):
    for bad in (0, 11):
        with pytest.raises(IntegrityError), transaction.atomic():
            Arm.objects.filter(trial=modic, code="rest").update(allocation_ratio=bad)


def test_the_admin_refuses_a_third_arm_that_p_does_not_allow_and_saves_nothing(
    admin_client_for_manager, modic
):
    page = admin_client_for_manager.get(trial_change_url(modic))
    data = BrowserForm.of(page, "trial_form")
    data["preferred_probability"] = ["0.6"]
    data["arms-TOTAL_FORMS"] = ["3"]
    data.update(
        {
            "arms-2-trial": [str(modic.pk)],
            "arms-2-order": ["3"],
            "arms-2-code": ["sham"],
            "arms-2-name": ["Sham"],
            "arms-2-allocation_ratio": ["1"],
        }
    )
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assert response.status_code == 200
    assertContains(response, "With 3 arms, the probability of the preferred arm must be at least")
    modic.refresh_from_db()
    assert modic.preferred_probability == Decimal("0.800")
    assert modic.arms.count() == 2
    # With p at the bound the same arms save.
    data["preferred_probability"] = ["0.667"]
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assertRedirects(response, reverse("admin:trial_trial_changelist"))
    assert modic.arms.count() == 3


def test_the_admin_edits_allocation_ratios_and_checks_them_as_a_set(
    admin_client_for_manager, modic
):
    page = admin_client_for_manager.get(trial_change_url(modic))
    assertContains(page, 'name="arms-0-allocation_ratio"')
    data = BrowserForm.of(page, "trial_form")
    data["arms-0-allocation_ratio"] = ["2"]
    data["preferred_probability"] = ["0.6"]  # 2:1 needs 2/3
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assert response.status_code == 200
    assertContains(response, "With allocation ratios 2:1 (3 slots)")
    data["preferred_probability"] = ["0.7"]
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assertRedirects(response, reverse("admin:trial_trial_changelist"))
    assert modic.allocation_ratios() == {"rest": 2, "exercise": 1}


def test_after_a_randomization_the_ratio_is_shown_but_frozen(
    admin_client_for_manager, modic, enrolled, clinician
):
    services.participant_randomize(participant=enrolled, by=clinician)
    response = admin_client_for_manager.get(trial_change_url(modic))
    assertContains(response, LOCKED_REASON)
    assertContains(response, "Allocation ratio")  # the read-only inline's column
    assertNotContains(response, 'name="arms-0-allocation_ratio"')
    arm = Arm.objects.get(trial=modic, code="rest")
    arm.allocation_ratio = 2
    with pytest.raises(ConfigurationLocked):
        arm.save()


def test_a_trial_v1_accepted_with_a_low_p_is_refused_at_randomization_with_the_bound(
    modic, site1, clinician
):
    sham(modic).save()
    participant = factories.enrolled_participant(modic, site1, clinician)
    Trial.objects.filter(pk=modic.pk).update(preferred_probability=Decimal("0.6"))
    with pytest.raises(ValidationError, match=r"at least 2/3 \(0\.667\)"):
        services.participant_randomize(participant=participant, by=clinician)
    assert not Allocation.objects.exists()
    assert not participant.visits.exists()


def test_a_trial_below_the_bound_screens_and_enrolls_nobody_it_could_not_randomize(
    modic, site1, clinician
):
    # Enrolling and consenting patients the trial cannot randomize would be worse than
    # refusing them at the door: the same message, at screening.
    sham(modic).save()
    Trial.objects.filter(pk=modic.pk).update(preferred_probability=Decimal("0.6"))
    modic.refresh_from_db()
    with pytest.raises(ValidationError, match=r"at least 2/3 \(0\.667\).*paused"):
        factories.screened(modic, site1, clinician)


def test_the_trial_page_checks_p_against_the_arms_it_leaves(admin_client_for_manager, modic):
    # Three arms stored; the page removes one and lowers p to what two arms allow.
    sham(modic).save()
    Trial.objects.filter(pk=modic.pk).update(preferred_probability=Decimal("0.7"))
    page = admin_client_for_manager.get(trial_change_url(modic))
    data = BrowserForm.of(page, "trial_form")
    third = next(k for k, v in data.items() if k.endswith("-code") and v == ["sham"])
    data[third.replace("-code", "-DELETE")] = ["on"]
    data["preferred_probability"] = ["0.55"]
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assertRedirects(response, reverse("admin:trial_trial_changelist"))
    modic.refresh_from_db()
    assert modic.preferred_probability == Decimal("0.550")
    assert modic.arms.count() == 2


# --- Item 3: the site factor ----------------------------------------------------------------


def test_a_site_factor_gets_one_level_per_site_without_cut_points(modic):
    factor = MinimizationFactor.objects.create(trial=modic, code="site", name="Site", kind="site")
    levels = list(factor.levels.order_by("order").values_list("code", "label", "site__code"))
    assert levels == [
        ("01", "Spine Centre, Middelfart (demo)", "01"),
        ("02", "Back Clinic, Odense (demo)", "02"),
    ]
    assert not factor.levels.filter(lower__isnull=False).exists()
    assert not factor.levels.filter(upper__isnull=False).exists()


def test_a_trial_has_at_most_one_site_factor(modic):
    MinimizationFactor.objects.create(trial=modic, code="site", name="Site", kind="site")
    second = MinimizationFactor(trial=modic, code="centre", name="Centre", kind="site")
    with pytest.raises(ValidationError, match="already has a site factor"):
        second.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_a_site_factor_uses_no_variable_and_its_levels_no_cut_points(modic):
    age = modic.baseline_variables.get(code="age")
    factor = MinimizationFactor(trial=modic, code="site", name="Site", kind="site", variable=age)
    with pytest.raises(ValidationError, match="uses no variable"):
        factor.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        factor.save()
    factor = MinimizationFactor.objects.create(trial=modic, code="site", name="Site", kind="site")
    with pytest.raises(IntegrityError), transaction.atomic():
        factor.levels.filter(code="01").update(lower=1)
    manual = FactorLevel(factor=factor, code="x", label="X")
    with pytest.raises(ValidationError, match="made from the trial's sites"):
        manual.full_clean()


def test_a_factor_with_entered_levels_cannot_become_a_site_factor(modic):
    sex = modic.factors.get(code="sex")
    sex.kind = "site"
    with pytest.raises(ValidationError, match="Delete this factor's levels first"):
        sex.full_clean()


def test_the_baseline_takes_the_site_level_with_nothing_to_choose(modic, site2, clinician):
    MinimizationFactor.objects.create(trial=modic, code="site", name="Site", kind="site")
    participant = factories.enrolled_participant(modic, site2, clinician)
    assert participant.factor_levels["site"] == "02"


def test_a_site_opened_after_randomization_started_gets_its_level_and_nothing_else_unfreezes(
    modic, site1, clinician
):
    factories.three_arm_site_design(modic)
    first = factories.enrolled_participant(modic, site1, clinician)
    services.participant_randomize(participant=first, by=clinician)
    modic.refresh_from_db()
    assert modic.is_locked

    site3 = Site.objects.create(trial=modic, code="03", name="New Centre")
    level = FactorLevel.objects.get(site=site3)
    assert (level.factor.code, level.code, level.label) == ("site", "03", "New Centre")
    # The rest of the allocation-shaping configuration is still frozen.
    with pytest.raises(ConfigurationLocked):
        FactorLevel(factor=modic.factors.get(code="sex"), code="other", label="Other").save()
    with pytest.raises(ConfigurationLocked):
        level.label = "Renamed"
        level.save()
    with pytest.raises(ConfigurationLocked):
        sham(modic).delete()

    newcomer = factories.enrolled_participant(modic, site3, clinician)
    allocation, _ = services.participant_randomize(participant=newcomer, by=clinician)
    assert allocation.factor_levels["site"] == "03"
    assert allocation.counts_seen["site"] == {"rest": [0, 0], "exercise": [0, 0], "sham": 0}


def test_a_site_renamed_before_randomization_renames_its_level(modic, site1):
    MinimizationFactor.objects.create(trial=modic, code="site", name="Site", kind="site")
    site1.name = "Middelfart"
    site1.save()
    assert FactorLevel.objects.get(site=site1).label == "Middelfart"


def test_the_manager_adds_a_site_factor_in_the_admin_and_its_levels_are_read_only(
    admin_client_for_manager, modic
):
    response = admin_client_for_manager.post(
        reverse("admin:trial_minimizationfactor_add"),
        {
            "trial": modic.pk,
            "code": "site",
            "name": "Site",
            "kind": "site",
            "weight": "1",
            "order": "5",
            "levels-TOTAL_FORMS": "0",
            "levels-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    factor = MinimizationFactor.objects.get(trial=modic, kind="site")
    assert factor.levels.count() == 2
    page = admin_client_for_manager.get(factor_change_url(factor))
    assertContains(page, "Spine Centre, Middelfart (demo)")
    assertNotContains(page, 'name="levels-0-code"')
    assertNotContains(page, "levels-__prefix__")


def test_the_factor_admin_offers_the_site_kind(admin_client_for_manager, modic):
    page = admin_client_for_manager.get(reverse("admin:trial_minimizationfactor_add"))
    assertContains(page, '<option value="site">Level is the participant&#x27;s site</option>')


def test_a_recruiting_trial_keeps_the_two_sites_its_site_factor_needs(
    admin_client_for_manager, modic
):
    # Deleting a site deletes its level: the site factor would balance nothing.
    MinimizationFactor.objects.create(
        trial=modic, code="site", name="Site", kind=MinimizationFactor.Kind.SITE, order=9
    )
    page = admin_client_for_manager.get(trial_change_url(modic))
    data = BrowserForm.of(page, "trial_form")
    second = next(k for k, v in data.items() if k.startswith("sites-") and v == ["02"])
    data[second.replace("-code", "-DELETE")] = ["on"]
    response = admin_client_for_manager.post(trial_change_url(modic), data)
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["status"]
    assert "a second site: the minimization factor “Site” takes its levels from the sites" in (
        message
    )
    assert modic.sites.count() == 2

