"""The weekly SMS in the admin: trial managers edit the schedule, languages, questions and
their texts; inbound messages, weeks and answers are read-only; nobody else gets in."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertRedirects

from outcomes.sms.models import SmsLanguage, SmsQuestion, SmsSchedule
from tests import factories

EDITABLE = ("smsschedule", "smslanguage", "smsquestion")
READ_ONLY = ("inboundmessage", "smsweek", "smsanswer", "outboundmessage")


def admin_url(model: str, view: str, *args) -> str:
    label = "instruments" if model == "instrument" else "sms"
    return reverse(f"admin:{label}_{model}_{view}", args=args)


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


@pytest.mark.parametrize("model", EDITABLE)
def test_the_manager_can_list_add_and_change_the_sms_configuration(as_manager, modic, model):
    assert as_manager.get(admin_url(model, "changelist")).status_code == 200
    assert as_manager.get(admin_url(model, "add")).status_code == 200
    obj = {
        "smsschedule": SmsSchedule.objects.get(trial=modic),
        "smslanguage": SmsLanguage.objects.get(trial=modic, code="da"),
        "smsquestion": SmsQuestion.objects.get(trial=modic, code="bothersome"),
    }[model]
    response = as_manager.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200
    assertContains(response, 'type="submit"')


def test_question_texts_are_edited_inline_with_the_language_and_the_question(as_manager, modic):
    language = SmsLanguage.objects.get(trial=modic, code="en")
    response = as_manager.get(admin_url("smslanguage", "change", language.pk))
    assertContains(response, 'name="texts-0-text"')
    assertContains(response, "How many days in the past week")
    question = SmsQuestion.objects.get(trial=modic, code="sick_leave")
    response = as_manager.get(admin_url("smsquestion", "change", question.pk))
    assertContains(response, 'name="texts-1-text"')


def test_the_manager_changes_the_send_time(as_manager, modic):
    schedule = SmsSchedule.objects.get(trial=modic)
    response = as_manager.post(
        admin_url("smsschedule", "change", schedule.pk),
        {
            "trial": modic.pk,
            "enabled": "on",
            "weekday": "0",
            "send_time": "09:30",
            "weeks": "62",
            "reminder_after_hours": "24",
            "max_clarifications": "3",
            "default_language": "da",
        },
    )
    assertRedirects(response, admin_url("smsschedule", "changelist"))
    schedule.refresh_from_db()
    assert (schedule.weekday, schedule.send_time.hour, schedule.send_time.minute) == (0, 9, 30)
    assert schedule.history.count() == 2


@pytest.mark.parametrize("model", READ_ONLY)
def test_sms_data_is_read_only_for_the_manager(as_manager, modic, model):
    assert as_manager.get(admin_url(model, "changelist")).status_code == 200
    assert as_manager.get(admin_url(model, "add")).status_code == 403


def test_the_instrument_list_shows_the_baseline_variable(as_manager, modic):
    response = as_manager.get(admin_url("instrument", "changelist"))
    assertContains(response, "Baseline variable")
    instrument = modic.instruments.filter(baseline_variable__isnull=False).first()
    if instrument is not None:
        response = as_manager.get(admin_url("instrument", "change", instrument.pk))
        assertContains(response, 'name="baseline_variable"')


def test_a_statistician_is_staff_for_the_results_but_may_not_open_these(client, statistician):
    client.force_login(statistician)
    for model in EDITABLE + READ_ONLY:
        assert client.get(admin_url(model, "changelist")).status_code == 403


@pytest.mark.parametrize("role", ["clinician", "coordinator"])
def test_other_roles_are_sent_to_the_admin_login(request, client, role):
    client.force_login(request.getfixturevalue(role))
    for model in EDITABLE + READ_ONLY:
        path = admin_url(model, "changelist")
        assertRedirects(
            client.get(path),
            f"{reverse('admin:login')}?next={path}",
            fetch_redirect_response=False,
        )


def test_staff_without_the_managers_permissions_are_refused(client, modic):
    user = factories.UserFactory(username="staff-only", is_staff=True)
    client.force_login(user)
    for model in EDITABLE:
        assert client.get(admin_url(model, "changelist")).status_code == 403
        assert client.get(admin_url(model, "add")).status_code == 403


def test_the_manager_may_edit_the_configuration_and_only_view_sms_data(modic, manager):
    """The admin permissions come with the trial manager's role (trial.permissions)."""
    for model in ("smsschedule", "smslanguage", "smsquestion", "smsquestiontext"):
        for action in ("add", "change", "view"):
            assert manager.has_perm(f"sms.{action}_{model}")
    for model in ("inboundmessage", "smsweek", "smsanswer"):
        assert manager.has_perm(f"sms.view_{model}")
        assert not manager.has_perm(f"sms.change_{model}")
