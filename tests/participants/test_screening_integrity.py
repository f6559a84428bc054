"""The screening log's integrity: one record per submitted form (a one-time form token,
unique in the database, even under a race on PostgreSQL), voiding a record entered in
error (trial managers, with a reason, audited, left out of CONSORT), and no screening dates
before the trial's recruitment started."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from participants import services
from participants.models import ScreeningRecord
from tests import factories
from tests.participants.test_views import days_ago, screening_post, today, url
from trial.models import Trial

TOKEN = re.compile(r'name="form_token" value="([A-Za-z0-9_-]+)"')


def form_token(response) -> str:
    match = TOKEN.search(response.content.decode())
    assert match, "the screening form carries no form token"
    return match.group(1)


def record(trial, site, by, *, token: str | None = None, screened_on=None, initials="AB"):
    return services.screening_record(
        trial=trial,
        site=site,
        initials=initials,
        screened_on=screened_on or days_ago(trial, 1),
        answers=factories.eligible_answers(trial),
        by=by,
        form_token=token,
    )


# --- One record per submitted form -------------------------------------------------------------


def test_the_screening_form_get_writes_nothing_and_issues_a_new_token_each_time(
    client, modic, clinician
):
    client.force_login(clinician)
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url("screening_new", modic))
    second = client.get(url("screening_new", modic))
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "django_session" not in q["sql"]
    ]
    assert writes == []
    assert form_token(first) != form_token(second)
    assert len(form_token(first)) >= 32
    assert not ScreeningRecord.objects.exists()


def test_screening_resubmitted_creates_one_record(client, modic, site1, clinician):
    client.force_login(clinician)
    token = form_token(client.get(url("screening_new", modic)))
    data = {**screening_post(modic, site1, screened_on=days_ago(modic, 1)), "form_token": token}

    first = client.post(url("screening_new", modic), data)
    screening = ScreeningRecord.objects.get()
    assertRedirects(first, url("screening_consent", modic, screening.pk))

    # Back and submit again, even with an answer changed: the first record is the answer.
    changed = {**data, "initials": "XY"}
    second = client.post(url("screening_new", modic), changed, follow=True)
    assertRedirects(second, url("screening_consent", modic, screening.pk))
    assertContains(second, "This screening was already recorded")
    assert ScreeningRecord.objects.count() == 1
    assert ScreeningRecord.objects.get().initials == "AB"


def test_a_resubmitted_ineligible_screening_goes_to_the_first_record(
    client, modic, site1, clinician
):
    client.force_login(clinician)
    token = form_token(client.get(url("screening_new", modic)))
    data = {
        **screening_post(modic, site1, screened_on=days_ago(modic, 1), eligible=False),
        "form_token": token,
    }
    client.post(url("screening_new", modic), data)
    screening = ScreeningRecord.objects.get()
    response = client.post(url("screening_new", modic), data)
    assertRedirects(response, url("screening_detail", modic, screening.pk))
    assert ScreeningRecord.objects.count() == 1


def test_a_new_form_after_a_submission_records_a_new_patient(client, modic, site1, clinician):
    client.force_login(clinician)
    for _ in range(2):
        token = form_token(client.get(url("screening_new", modic)))
        data = screening_post(modic, site1, screened_on=days_ago(modic, 1))
        client.post(url("screening_new", modic), {**data, "form_token": token})
    assert ScreeningRecord.objects.count() == 2


@pytest.mark.parametrize("token", ["", "short", "x" * 65, "not a token!" * 4])
def test_a_screening_post_without_a_valid_form_token_is_refused_and_saves_nothing(
    client, modic, site1, clinician, token
):
    client.force_login(clinician)
    data = {**screening_post(modic, site1, screened_on=today(modic)), "form_token": token}
    response = client.post(url("screening_new", modic), data)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assertContains(response, "reload the page")
    assert not ScreeningRecord.objects.exists()


def test_the_service_returns_the_first_record_for_a_token_already_used(modic, site1, clinician):
    token = "t" * 43
    first, created = record(modic, site1, clinician, token=token)
    again, created_again = record(modic, site1, clinician, token=token, initials="XY")
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.initials == "AB"
    assert ScreeningRecord.objects.count() == 1


def test_the_database_refuses_a_second_record_with_the_same_form_token(modic, site1, clinician):
    first, _ = record(modic, site1, clinician, token="u" * 43)
    copy = ScreeningRecord.objects.values().get(pk=first.pk)
    copy.pop("id")
    with pytest.raises(IntegrityError), transaction.atomic():
        ScreeningRecord.objects.create(**copy)


def test_a_token_of_another_trial_is_refused(modic, site1, clinician, manager):
    from trial.devtools.demo import build_modic_trial

    other = build_modic_trial(code="OTH")
    record(other, other.sites.get(code="01"), manager, token="v" * 43)
    with pytest.raises(ValidationError, match="reload the page"):
        record(modic, site1, clinician, token="v" * 43)
    assert ScreeningRecord.objects.filter(trial=modic).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submissions_of_one_form_create_one_record(modic, site1, clinician):
    """The first transaction has inserted the record and not committed; the second finds
    nothing yet, inserts, waits on the unique index, and must then return the first."""
    token = "w" * 43
    inserted, release = threading.Event(), threading.Event()
    results, errors = [], []

    def first():
        try:
            with transaction.atomic():
                results.append(record(modic, site1, clinician, token=token))
                inserted.set()
                assert release.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            inserted.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert inserted.wait(timeout=30)
    # Commit the first once the second is (very likely) waiting on the index entry.
    timer = threading.Timer(0.5, release.set)
    timer.start()
    try:
        second, created = record(modic, site1, clinician, token=token, initials="XY")
    finally:
        release.set()
        thread.join(timeout=30)
        timer.cancel()
    assert not errors, errors
    (first_record, first_created) = results[0]
    assert first_created and not created
    assert second.pk == first_record.pk
    assert ScreeningRecord.objects.count() == 1


# --- Voiding a record entered in error ---------------------------------------------------------


def test_a_trial_manager_voids_a_screening_with_a_reason_kept_in_its_history(
    client, modic, site1, clinician, manager
):
    screening, _ = record(modic, site1, clinician)
    client.force_login(manager)
    page = client.get(url("screening_void", modic, screening.pk))
    assertContains(page, "Void this screening record")
    response = client.post(
        url("screening_void", modic, screening.pk), {"reason": "Entered twice (same patient)"}
    )
    assertRedirects(response, url("screening_detail", modic, screening.pk))
    screening.refresh_from_db()
    assert screening.voided_at is not None
    assert screening.voided_by == manager
    assert screening.void_reason == "Entered twice (same patient)"
    latest = screening.history.order_by("-history_id").first()
    assert latest.history_user == manager
    assert latest.history_change_reason == "Voided: Entered twice (same patient)"
    assert latest.voided_at is not None

    detail = client.get(url("screening_detail", modic, screening.pk))
    assertContains(detail, "Voided")
    assertContains(detail, "Entered twice (same patient)")
    assertNotContains(detail, url("screening_consent", modic, screening.pk))


def test_voiding_needs_a_reason_shown_next_to_the_field(client, modic, site1, clinician, manager):
    screening, _ = record(modic, site1, clinician)
    client.force_login(manager)
    response = client.post(url("screening_void", modic, screening.pk), {"reason": "   "})
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    screening.refresh_from_db()
    assert screening.voided_at is None


@pytest.mark.parametrize("role", ["clinician", "coordinator", "statistician", "clinician_site2"])
def test_only_a_trial_manager_may_void_a_screening(request, client, modic, site1, clinician, role):
    screening, _ = record(modic, site1, clinician)
    client.force_login(request.getfixturevalue(role))
    response = client.post(url("screening_void", modic, screening.pk), {"reason": "Error"})
    assert response.status_code == 403
    screening.refresh_from_db()
    assert screening.voided_at is None


def test_a_screening_that_enrolled_a_participant_cannot_be_voided(modic, site1, clinician, manager):
    participant = factories.enrolled_participant(modic, site1, clinician, baseline=False)
    with pytest.raises(ValidationError, match="enrolled"):
        services.screening_void(screening=participant.screening, reason="Error", by=manager)
    participant.screening.refresh_from_db()
    assert participant.screening.voided_at is None


def test_the_database_refuses_a_voided_enrolled_screening(modic, site1, clinician, manager):
    participant = factories.enrolled_participant(modic, site1, clinician, baseline=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        ScreeningRecord.objects.filter(pk=participant.screening_id).update(
            voided_at=dt.datetime.now(dt.UTC), voided_by=manager, void_reason="Error"
        )


def test_a_screening_is_voided_once(modic, site1, clinician, manager):
    screening, _ = record(modic, site1, clinician)
    services.screening_void(screening=screening, reason="Duplicate", by=manager)
    with pytest.raises(ValidationError, match="already voided"):
        services.screening_void(screening=screening, reason="Again", by=manager)


def test_a_voided_screening_cannot_be_consented(client, modic, site1, clinician, manager):
    screening, _ = record(modic, site1, clinician)
    services.screening_void(screening=screening, reason="Duplicate", by=manager)
    with pytest.raises(ValidationError, match="voided"):
        services.participant_enroll(
            screening=screening,
            consent_date=today(modic),
            consent_document=modic.consent_documents.get(),
            by=clinician,
        )
    client.force_login(clinician)
    response = client.get(url("screening_consent", modic, screening.pk))
    assertRedirects(response, url("screening_detail", modic, screening.pk))


def test_the_screening_log_shows_a_voided_record_as_voided(
    client, modic, site1, clinician, manager
):
    kept, _ = record(modic, site1, clinician, initials="KE")
    voided, _ = record(modic, site1, clinician, initials="VO")
    services.screening_void(screening=voided, reason="Duplicate of KE", by=manager)
    client.force_login(clinician)
    response = client.get(url("screening_log", modic))
    html = response.content.decode()
    rows = dict(re.findall(r'<tr id="screening-(\d+)"[^>]*>(.*?)</tr>', html, re.S))
    assert "Voided" in rows[str(voided.pk)] and "Duplicate of KE" in rows[str(voided.pk)]
    assert "Voided" not in rows[str(kept.pk)]


# --- No screening before recruitment started ---------------------------------------------------


def test_a_screening_date_before_the_trials_recruitment_start_is_refused_next_to_the_field(
    client, modic, site1, clinician
):
    client.force_login(clinician)
    token = form_token(client.get(url("screening_new", modic)))
    data = {
        **screening_post(modic, site1, screened_on=dt.date(1900, 1, 1)),
        "form_token": token,
    }
    response = client.post(url("screening_new", modic), data)
    assert response.status_code == 200
    assert response.context["form"].errors["screened_on"] == [
        "The screening date cannot precede the trial's recruitment start (1 Jan 2024)."
    ]
    assertContains(response, "cannot precede the trial&#x27;s recruitment start (1 Jan 2024)")
    assert not ScreeningRecord.objects.exists()


def test_the_service_refuses_a_screening_before_recruitment_start(modic, site1, clinician):
    with pytest.raises(ValidationError) as err:
        record(modic, site1, clinician, screened_on=modic.recruitment_start - dt.timedelta(days=1))
    assert "screened_on" in err.value.message_dict
    screening, _ = record(modic, site1, clinician, screened_on=modic.recruitment_start)
    assert screening.screened_on == modic.recruitment_start


def test_recruitment_start_cannot_move_after_a_screening_already_recorded(modic, site1, clinician):
    screening, _ = record(modic, site1, clinician, screened_on=days_ago(modic, 30))
    modic.recruitment_start = days_ago(modic, 10)
    with pytest.raises(ValidationError) as err:
        modic.full_clean()
    assert "recruitment_start" in err.value.message_dict
    modic.recruitment_start = screening.screened_on
    modic.full_clean()


def test_the_demo_trial_recruits_from_a_date_before_every_demo_screening(db):
    from django.contrib.auth.models import User

    from trial.devtools.demo import build_modic_trial, create_demo_users
    from trial.devtools.demo_participants import (
        enroll_and_randomize_demo_participants,
        screen_demo_non_participants,
    )

    trial = build_modic_trial()
    create_demo_users(trial)
    enroll_and_randomize_demo_participants(trial, 10)
    screen_demo_non_participants(trial)
    trial = Trial.objects.get(pk=trial.pk)
    earliest = min(trial.screenings.values_list("screened_on", flat=True))
    assert trial.recruitment_start <= earliest
    # The demo shows a voided duplicate in its screening log.
    voided = trial.screenings.filter(voided_at__isnull=False)
    assert voided.count() == 1
    assert voided.get().voided_by == User.objects.get(username="manager")
