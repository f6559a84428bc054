"""A trial without SMS shows no SMS pages and asks no mobile number (issue 15, item 10c):
one rule (outcomes.sms.sms_use), its booleans handed to the templates."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from outcomes.sms.models import SmsLanguage, SmsQuestion, SmsQuestionText, SmsSchedule
from outcomes.sms.sms_use import SmsUse, sms_use
from participants import services
from participants.models import Participant
from tests import factories
from tests.participants.test_views import BASELINE_POST
from trial.devtools.demo import build_modic_trial
from trial.models import Trial


def without_sms(trial: Trial, *, reminders: bool = False) -> Trial:
    SmsQuestionText.objects.filter(question__trial=trial).delete()
    SmsQuestion.objects.filter(trial=trial).delete()
    SmsSchedule.objects.filter(trial=trial).delete()
    SmsLanguage.objects.filter(trial=trial).delete()
    Trial.objects.filter(pk=trial.pk).update(visit_reminder_days=3 if reminders else None)
    return Trial.objects.get(pk=trial.pk)


@pytest.fixture
def quiet(modic):
    """A second trial like the demo, with no weekly SMS and no visit reminders."""
    return without_sms(build_modic_trial(code="KNEE"))


@pytest.fixture
def quiet_coordinator(quiet):
    return factories.persona("Coordinator", trial=quiet, username="kneecoord")


def test_the_rule_weekly_pages_with_a_schedule_and_a_phone_when_anything_is_sent(modic):
    assert sms_use(modic) == SmsUse(weekly=True, phone_required=True)
    SmsSchedule.objects.filter(trial=modic).update(enabled=False)
    assert sms_use(modic) == SmsUse(weekly=True, phone_required=True)  # reminders still go
    Trial.objects.filter(pk=modic.pk).update(visit_reminder_days=None)
    modic.refresh_from_db()
    assert sms_use(modic) == SmsUse(weekly=True, phone_required=False)  # paused, history
    quiet = without_sms(modic)
    assert sms_use(quiet) == SmsUse(weekly=False, phone_required=False)
    assert sms_use(without_sms(quiet, reminders=True)) == SmsUse(False, True)


def test_a_trial_without_sms_shows_no_weekly_sms_in_the_navigation(
    client, quiet, quiet_coordinator, modic, coordinator
):
    client.force_login(quiet_coordinator)
    page = client.get(reverse("worklist", args=[quiet.code]))
    assert page.status_code == 200
    assertNotContains(page, "Weekly SMS")
    assertNotContains(page, reverse("sms_grid", args=[quiet.code]))
    client.force_login(coordinator)
    assertContains(client.get(reverse("worklist", args=[modic.code])), "Weekly SMS")


def test_the_sms_pages_of_a_trial_without_sms_are_not_found(client, quiet, quiet_coordinator):
    site = quiet.sites.first()
    participant = factories.enrolled_participant(quiet, site, quiet_coordinator)
    client.force_login(quiet_coordinator)
    assert client.get(reverse("sms_grid", args=[quiet.code])).status_code == 404
    for name in ("participant_sms", "participant_sms_consent"):
        path = reverse(name, kwargs={"code": quiet.code, "pk": participant.pk})
        assert client.get(path).status_code == 404, name


def test_a_trial_without_sms_takes_the_baseline_without_a_mobile_number(client, quiet):
    site = quiet.sites.first()
    clinician = factories.persona("Clinician", trial=quiet, sites=[site], username="kneeclin")
    enrolled = factories.enrolled_participant(quiet, site, clinician, baseline=False)
    client.force_login(clinician)
    path = reverse("participant_baseline", kwargs={"code": quiet.code, "pk": enrolled.pk})
    page = client.get(path)
    assert page.context["form"].fields["phone"].required is False
    assertContains(page, "this trial sends no SMS")
    response = client.post(path, {**BASELINE_POST, "phone": ""})
    assertRedirects(
        response, reverse("participant_review", kwargs={"code": quiet.code, "pk": enrolled.pk})
    )
    enrolled.refresh_from_db()
    assert enrolled.phone == "" and enrolled.baseline_complete
    # A number given is still checked.
    other = factories.enrolled_participant(quiet, site, clinician, baseline=False)
    path = reverse("participant_baseline", kwargs={"code": quiet.code, "pk": other.pk})
    response = client.post(path, {**BASELINE_POST, "phone": "+4512"})
    assert "phone" in response.context["form"].errors


def test_a_trial_with_sms_still_needs_the_mobile_number(client, modic, clinician, enrolled):
    Participant.objects.filter(pk=enrolled.pk).update(baseline_completed_at=None)
    client.force_login(clinician)
    path = reverse("participant_baseline", kwargs={"code": modic.code, "pk": enrolled.pk})
    response = client.post(path, {**BASELINE_POST, "phone": ""})
    assert response.status_code == 200
    assert "phone" in response.context["form"].errors


def test_the_participant_page_of_a_trial_without_sms_has_no_sms_section(client, quiet):
    site = quiet.sites.first()
    manager = factories.persona("Trial manager", trial=quiet, username="kneemgr", staff=True)
    participant = factories.enrolled_participant(quiet, site, manager)
    services.participant_randomize(participant=participant, by=manager)
    client.force_login(manager)
    page = client.get(
        reverse("participant_detail", kwargs={"code": quiet.code, "pk": participant.pk})
    )
    assert page.status_code == 200
    assert page.context["sms_status"] is None
    assertNotContains(page, 'id="sms-summary"')
