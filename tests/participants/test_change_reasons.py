"""Every change of clinical data after randomization needs a reason, kept in the history
(simple-history's change reason): the participant edit page (contact and consent details),
status changes and the visits they close; the baseline cannot change at all; outcome
corrections ask already (tests/outcomes/instruments/test_entry.py); contact attempts are only ever
added; and the admin changes no clinical record."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from participants.models import Participant
from tests.participants.test_followup import randomized, today, visit
from tests.participants.test_views import days_ago, edit_post, url


def latest_history(participant):
    return participant.history.order_by("-history_date", "-history_id").first()


@pytest.fixture
def randomized_10_days_ago(modic, site1, clinician):
    from participants.models import ScreeningRecord
    from tests.participants.test_followup import backdate

    participant = backdate(randomized(modic, site1, clinician), 10)
    ScreeningRecord.objects.filter(pk=participant.screening_id).update(
        screened_on=participant.consent_date - dt.timedelta(days=5)
    )
    return participant


def test_editing_the_consent_date_after_randomization_needs_a_reason_next_to_the_field(
    client, modic, clinician, randomized_10_days_ago
):
    participant = randomized_10_days_ago
    before = Participant.objects.values().get(pk=participant.pk)
    history_rows = participant.history.count()
    client.force_login(clinician)
    page = client.get(url("participant_edit", modic, participant.pk))
    assertContains(page, 'name="reason_for_change"')

    data = edit_post(participant, consent_date=days_ago(modic, 11).isoformat())
    response = client.post(url("participant_edit", modic, participant.pk), data)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["reason_for_change"]
    assertContains(response, "give the reason")
    assert Participant.objects.values().get(pk=participant.pk) == before
    assert participant.history.count() == history_rows

    data["reason_for_change"] = "Transcribed from the signed form: 1 day earlier"
    response = client.post(url("participant_edit", modic, participant.pk), data)
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    participant.refresh_from_db()
    assert participant.consent_date == days_ago(modic, 11)
    latest = latest_history(participant)
    assert latest.history_change_reason == "Transcribed from the signed form: 1 day earlier"
    assert latest.history_user == clinician


@pytest.mark.parametrize(
    ("field", "value"),
    [("phone", "+4529999998"), ("full_name", "Another Name"), ("consent_document", None)],
)
def test_every_detail_changed_after_randomization_needs_a_reason(
    client, modic, clinician, randomized_10_days_ago, field, value
):
    participant = randomized_10_days_ago
    if field == "consent_document":
        from trial.models import ConsentDocument

        value = str(
            ConsentDocument.objects.create(
                trial=modic, version="2.0", effective_from=days_ago(modic, 400)
            ).pk
        )
    client.force_login(clinician)
    response = client.post(
        url("participant_edit", modic, participant.pk), edit_post(participant, **{field: value})
    )
    assert response.status_code == 200
    assert "reason_for_change" in response.context["form"].errors


def test_saving_the_edit_page_unchanged_needs_no_reason_and_writes_no_history(
    client, modic, clinician, randomized_10_days_ago
):
    participant = randomized_10_days_ago
    rows = participant.history.count()
    client.force_login(clinician)
    response = client.post(url("participant_edit", modic, participant.pk), edit_post(participant))
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    assert participant.history.count() == rows


def test_before_randomization_details_change_without_a_reason(client, modic, clinician, enrolled):
    client.force_login(clinician)
    page = client.get(url("participant_edit", modic, enrolled.pk))
    assertNotContains(page, 'name="reason_for_change"')
    response = client.post(
        url("participant_edit", modic, enrolled.pk), edit_post(enrolled, full_name="New Name")
    )
    assertRedirects(response, url("participant_detail", modic, enrolled.pk))
    assert Participant.objects.get(pk=enrolled.pk).full_name == "New Name"


def test_a_reason_that_is_too_long_is_refused_next_to_the_field(
    client, modic, clinician, randomized_10_days_ago
):
    participant = randomized_10_days_ago
    client.force_login(clinician)
    data = edit_post(participant, full_name="Another Name", reason_for_change="x" * 301)
    response = client.post(url("participant_edit", modic, participant.pk), data)
    assert response.status_code == 200
    assert "at most 300" in response.context["form"].errors["reason_for_change"][0]


def test_a_status_change_keeps_its_reason_in_the_history_of_the_participant_and_its_visits(
    modic, site1, clinician
):
    from participants import services

    participant = randomized(modic, site1, clinician)
    services.participant_status_change(
        participant=participant, to_status="deceased", effective_on=today(modic),
        reason="Reported by the GP", by=clinician,
    )  # fmt: skip
    assert latest_history(participant).history_change_reason.endswith("Reported by the GP")
    w10 = visit(participant, "w10")
    last = w10.history.order_by("-history_id").first()
    assert last.outcome == "not_required"
    assert last.history_change_reason.endswith("Reported by the GP")


CLINICAL_APPS = {"participants"}
CLINICAL_OUTCOMES = {"outcomeentry", "inboundmessage", "outboundmessage", "smsweek", "smsanswer"}


def test_no_clinical_record_can_be_added_changed_or_deleted_in_the_admin(rf, manager):
    from django.contrib.auth.models import User

    superuser = User.objects.create_superuser("root", password="pw-for-tests-123")
    checked = []
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        if meta.app_label not in CLINICAL_APPS and meta.model_name not in CLINICAL_OUTCOMES:
            continue
        for user in (manager, superuser):
            request = rf.get("/admin/")
            request.user = user
            assert not model_admin.has_add_permission(request), meta.label
            assert not model_admin.has_change_permission(request), meta.label
            assert not model_admin.has_delete_permission(request), meta.label
        checked.append(meta.model_name)
    assert {"participant", "screeningrecord", "visit", "statuschange", "contactattempt"} <= set(
        checked
    )


def test_a_post_to_a_participants_admin_change_page_changes_nothing(
    client, manager, randomized_10_days_ago
):
    participant = randomized_10_days_ago
    client.force_login(manager)
    path = f"/admin/participants/participant/{participant.pk}/change/"
    response = client.post(path, {"consent_date": "2025-01-01", "full_name": "Admin"})
    assert response.status_code == 403
    assert Participant.objects.get(pk=participant.pk).full_name == participant.full_name
