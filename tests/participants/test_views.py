"""The clinician's pages through the Django test client: access per role and site, the whole
screen → consent → baseline → review → randomize journey, errors next to their fields, and a
constant number of queries on the participant list."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from outcomes import urls as outcome_urls
from outcomes.instruments.models import OutcomeEntry
from participants import selectors, services
from participants import urls as participant_urls
from participants.models import Allocation, Participant, ScreeningRecord
from tests import factories
from trial.models import Trial

LOGIN_URL = "/accounts/login/"

BASELINE_POST = {
    "full_name": "Jens Jensen",
    "phone": "+4520123456",
    "sms_language": "da",
    "age": "45",
    "factor_modic": "type1",
    "factor_sex": "female",
    # The baseline instruments; the pain rating is the baseline variable "pain".
    "pain-value": "7",
    **{f"rmdq-item_{n}": "yes" if n <= 7 else "no" for n in range(1, 24)},
    **{
        f"eq5d-{dim}": level
        for dim, level in zip(("MO", "SC", "UA", "PD", "AD"), "11221", strict=True)
    },
    "eq5d-vas": "60",
}


# --- Helpers --------------------------------------------------------------------------------


def today(trial: Trial) -> dt.date:
    return services.trial_today(trial)


def days_ago(trial: Trial, n: int) -> dt.date:
    return today(trial) - dt.timedelta(days=n)


def screening_post(trial: Trial, site, *, screened_on: dt.date, eligible: bool = True) -> dict:
    """The screening form as a browser posts it (with a fresh one-time form token);
    ineligible answers 'no' to the age question."""
    data = {
        "site": str(site.pk),
        "initials": "ab",
        "screened_on": screened_on.isoformat(),
        "form_token": secrets.token_urlsafe(32),
    }
    for criterion in trial.criteria.all():
        eligible_answer = not criterion.ineligible_answer
        data[f"criterion_{criterion.pk}"] = "yes" if eligible_answer else "no"
    if not eligible:
        age = trial.criteria.get(question__startswith="Aged 18")
        data[f"criterion_{age.pk}"] = "no"
    return data


def consent_post(trial: Trial, *, consent_date: dt.date) -> dict:
    return {
        "decision": "consented",
        "consent_date": consent_date.isoformat(),
        "consent_document": str(trial.consent_documents.get().pk),
    }


def edit_post(participant: Participant, **changes) -> dict:
    data = {
        "full_name": participant.full_name,
        "phone": participant.phone,
        "consent_date": participant.consent_date.isoformat(),
        "consent_document": str(participant.consent_document_id),
    }
    data.update(changes)
    return data


def url(name: str, trial: Trial, pk: int | None = None) -> str:
    kwargs = {"code": trial.code}
    if pk is not None:
        kwargs["pk"] = pk
    return reverse(name, kwargs=kwargs)


def randomized_participant(trial, site, by, **kwargs) -> Participant:
    participant = factories.enrolled_participant(trial, site, by, **kwargs)
    services.participant_randomize(participant=participant, by=by)
    participant.refresh_from_db()
    return participant


def participant_screened_days_ago(trial, site, by, n: int) -> Participant:
    """An enrolled participant with complete baseline, screened and consented n days ago."""
    screening, _ = services.screening_record(
        trial=trial,
        site=site,
        initials="XY",
        screened_on=days_ago(trial, n),
        answers=factories.eligible_answers(trial),
        by=by,
    )
    participant = services.participant_enroll(
        screening=screening,
        consent_date=screening.screened_on,
        consent_document=trial.consent_documents.get(),
        by=by,
    )
    return services.participant_record_baseline(
        participant=participant,
        full_name="Early Bird",
        phone="+4520123456",
        values={"age": 45, "pain": 7},
        chosen_levels={"modic": "type1", "sex": "female"},
        by=by,
    )


# --- 1. Login ------------------------------------------------------------------------------


def _every_participant_url() -> list[tuple[str, str]]:
    """(name, path) for every pattern in participants/urls.py and outcomes/urls.py (the
    outcome pages of a participant), with placeholder arguments."""
    found = []
    for pattern in participant_urls.urlpatterns + outcome_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {}
        for name in pattern.pattern.converters:
            kwargs[name] = "MOD" if name == "code" else 1
        found.append((pattern.name, reverse(pattern.name, kwargs=kwargs)))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path"), _every_participant_url(), ids=lambda v: str(v))
def test_an_anonymous_visitor_is_sent_to_the_login_page_from_every_page(client, name, path):
    response = client.get(path)
    assertRedirects(response, f"{LOGIN_URL}?next={path}", fetch_redirect_response=False)


@pytest.mark.django_db
def test_an_anonymous_post_to_the_review_page_randomizes_nobody(client, enrolled):
    path = url("participant_review", enrolled.trial, enrolled.pk)
    response = client.post(path, {"confirm": "on"})
    assertRedirects(response, f"{LOGIN_URL}?next={path}", fetch_redirect_response=False)
    assert not Allocation.objects.exists()


# --- 2. Roles and sites ----------------------------------------------------------------------

# page: (url name, which object the url needs)
PAGES = {
    "home": ("home", None),
    "participant list": ("trial_home", "trial"),
    "balance": ("balance", "trial"),
    "screening log": ("screening_log", "trial"),
    "screening form": ("screening_new", "trial"),
    "screening detail": ("screening_detail", "screening"),
    "screening void": ("screening_void", "screening"),
    "consent": ("screening_consent", "screening"),
    "participant detail": ("participant_detail", "enrolled"),
    "baseline": ("participant_baseline", "enrolled"),
    "edit": ("participant_edit", "enrolled"),
    "review": ("participant_review", "enrolled"),
    "allocation": ("participant_allocation", "randomized"),
    "worklist": ("worklist", "trial"),
    "follow-up summary": ("followup_summary", "trial"),
    "visit attended": ("visit_attended", "visit"),
    "visit missed": ("visit_missed", "visit"),
    "visit outcomes": ("visit_outcomes", "visit"),
    "contact": ("contact_log", "randomized"),
    "status": ("participant_status", "randomized"),
    "status reversal": ("status_change_reverse", "randomized"),
    "sms conversation": ("participant_sms", "randomized"),
    "sms opt-out": ("participant_sms_consent", "randomized"),
    "sms grid": ("sms_grid", "trial"),
}

OK = 200
FORBIDDEN = 403
TO_TRIAL = "redirect:trial_home"
TO_BALANCE = "redirect:balance"

# Every role × every page. Site-01 objects throughout; clinician_site2 works at site 02 only.
EXPECTED = {
    "clinician": {
        "home": TO_TRIAL,
        "participant list": OK,
        "balance": FORBIDDEN,
        "screening log": OK,
        "screening form": OK,
        "screening detail": OK,
        "screening void": FORBIDDEN,
        "consent": OK,
        "participant detail": OK,
        "baseline": OK,
        "edit": OK,
        "review": OK,
        "allocation": OK,
        "worklist": OK,
        "follow-up summary": FORBIDDEN,
        "visit attended": OK,
        "visit missed": OK,
        "visit outcomes": OK,
        "contact": OK,
        "status": OK,
        "status reversal": OK,
        "sms conversation": OK,
        "sms opt-out": FORBIDDEN,
        "sms grid": OK,
    },
    "manager": {
        "home": TO_TRIAL,
        "participant list": OK,
        "balance": OK,
        "screening log": OK,
        "screening form": OK,
        "screening detail": OK,
        "screening void": OK,
        "consent": OK,
        "participant detail": OK,
        "baseline": OK,
        "edit": OK,
        "review": OK,
        "allocation": OK,
        "worklist": OK,
        "follow-up summary": OK,
        "visit attended": OK,
        "visit missed": OK,
        "visit outcomes": OK,
        "contact": OK,
        "status": OK,
        "status reversal": OK,
        "sms conversation": OK,
        "sms opt-out": OK,
        "sms grid": OK,
    },
    "coordinator": {
        "home": TO_TRIAL,
        "participant list": OK,
        "balance": FORBIDDEN,
        "screening log": FORBIDDEN,
        "screening form": FORBIDDEN,
        "screening detail": FORBIDDEN,
        "screening void": FORBIDDEN,
        "consent": FORBIDDEN,
        "participant detail": OK,
        "baseline": FORBIDDEN,
        "edit": FORBIDDEN,
        "review": FORBIDDEN,
        "allocation": OK,
        "worklist": OK,
        "follow-up summary": OK,
        "visit attended": OK,
        "visit missed": OK,
        "visit outcomes": OK,
        "contact": OK,
        "status": OK,
        "status reversal": OK,
        "sms conversation": OK,
        "sms opt-out": OK,
        "sms grid": OK,
    },
    "statistician": {
        "home": TO_TRIAL,
        # The statistician's start page is the balance; never the participant list.
        "participant list": TO_BALANCE,
        "balance": OK,
        "screening log": FORBIDDEN,
        "screening form": FORBIDDEN,
        "screening detail": FORBIDDEN,
        "screening void": FORBIDDEN,
        "consent": FORBIDDEN,
        "participant detail": FORBIDDEN,
        "baseline": FORBIDDEN,
        "edit": FORBIDDEN,
        "review": FORBIDDEN,
        "allocation": FORBIDDEN,
        "worklist": FORBIDDEN,
        "follow-up summary": OK,
        "visit attended": FORBIDDEN,
        "visit missed": FORBIDDEN,
        "visit outcomes": FORBIDDEN,
        "contact": FORBIDDEN,
        "status": FORBIDDEN,
        "status reversal": FORBIDDEN,
        "sms conversation": FORBIDDEN,
        "sms opt-out": FORBIDDEN,
        "sms grid": FORBIDDEN,
    },
    "outsider": {
        "home": OK,  # "You are not a member of any trial yet."
        "participant list": FORBIDDEN,
        "balance": FORBIDDEN,
        "screening log": FORBIDDEN,
        "screening form": FORBIDDEN,
        "screening detail": FORBIDDEN,
        "screening void": FORBIDDEN,
        "consent": FORBIDDEN,
        "participant detail": FORBIDDEN,
        "baseline": FORBIDDEN,
        "edit": FORBIDDEN,
        "review": FORBIDDEN,
        "allocation": FORBIDDEN,
        "worklist": FORBIDDEN,
        "follow-up summary": FORBIDDEN,
        "visit attended": FORBIDDEN,
        "visit missed": FORBIDDEN,
        "visit outcomes": FORBIDDEN,
        "contact": FORBIDDEN,
        "status": FORBIDDEN,
        "status reversal": FORBIDDEN,
        "sms conversation": FORBIDDEN,
        "sms opt-out": FORBIDDEN,
        "sms grid": FORBIDDEN,
    },
    "clinician_site2": {
        "home": TO_TRIAL,
        "participant list": OK,
        "balance": FORBIDDEN,
        "screening log": OK,
        "screening form": OK,
        "screening detail": FORBIDDEN,
        "screening void": FORBIDDEN,
        "consent": FORBIDDEN,
        "participant detail": FORBIDDEN,
        "baseline": FORBIDDEN,
        "edit": FORBIDDEN,
        "review": FORBIDDEN,
        "allocation": FORBIDDEN,
        "worklist": OK,
        "follow-up summary": FORBIDDEN,
        "visit attended": FORBIDDEN,
        "visit missed": FORBIDDEN,
        "visit outcomes": FORBIDDEN,
        "contact": FORBIDDEN,
        "status": FORBIDDEN,
        "status reversal": FORBIDDEN,
        "sms conversation": FORBIDDEN,
        "sms opt-out": FORBIDDEN,
        # the grid of their own site: the site-01 participant is not on it
        "sms grid": OK,
    },
}

ROLE_PAGE_CASES = [
    pytest.param(role, page, expected, id=f"{role} on {page} gets {expected}")
    for role, pages in EXPECTED.items()
    for page, expected in pages.items()
]


def test_the_role_table_covers_every_page_for_every_role():
    page_urls = {name for name, _ in PAGES.values()}
    assert page_urls == {p.name for p in participant_urls.urlpatterns + outcome_urls.urlpatterns}
    for pages in EXPECTED.values():
        assert set(pages) == set(PAGES)


@pytest.fixture
def site1_objects(modic, site1, clinician, enrolled):
    """One site-01 object of each kind a page needs."""
    return {
        "trial": None,
        "screening": factories.screened(modic, site1, clinician),
        "enrolled": enrolled,
        "randomized": (randomized := randomized_participant(modic, site1, clinician)),
        "visit": randomized.visits.get(definition__code="w10"),
    }


def page_url(page: str, trial: Trial, objects: dict) -> str:
    name, needs = PAGES[page]
    if needs is None:
        return reverse(name)
    obj = objects[needs]
    return url(name, trial, obj.pk if obj is not None else None)


@pytest.mark.parametrize(("role", "page", "expected"), ROLE_PAGE_CASES)
def test_each_role_gets_the_expected_answer_on_each_page(
    request, client, modic, site1_objects, role, page, expected
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    response = client.get(page_url(page, modic, site1_objects))
    if expected == TO_TRIAL:
        assertRedirects(response, url("trial_home", modic), fetch_redirect_response=False)
    elif expected == TO_BALANCE:
        assertRedirects(response, url("balance", modic), fetch_redirect_response=False)
    else:
        assert response.status_code == expected, response.content.decode()[:500]
    if expected == FORBIDDEN:
        assertContains(response, "You do not have access to this page", status_code=403)


FORBIDDEN_POSTS = [
    pytest.param(role, page, id=f"{role} may not post to {page}")
    for role in ("coordinator", "statistician", "outsider", "clinician_site2")
    for page in ("review", "baseline", "edit")
]


@pytest.mark.parametrize(("role", "page"), FORBIDDEN_POSTS)
def test_a_forbidden_post_answers_403_and_changes_nothing(
    request, client, modic, enrolled, role, page
):
    client.force_login(request.getfixturevalue(role))
    before = Participant.objects.values().get(pk=enrolled.pk)
    data = {
        "review": {"confirm": "on"},
        "baseline": {**BASELINE_POST, "age": "30"},
        "edit": edit_post(enrolled, full_name="Changed By Intruder"),
    }[page]
    response = client.post(page_url(page, modic, {"enrolled": enrolled}), data)
    assert response.status_code == 403
    assert not Allocation.objects.exists()
    assert Participant.objects.values().get(pk=enrolled.pk) == before


@pytest.mark.parametrize("role", ["coordinator", "statistician", "outsider"])
def test_roles_that_may_not_screen_cannot_post_a_screening(request, client, modic, site1, role):
    client.force_login(request.getfixturevalue(role))
    data = screening_post(modic, site1, screened_on=today(modic))
    response = client.post(url("screening_new", modic), data)
    assert response.status_code == 403
    assert not ScreeningRecord.objects.exists()


def test_a_clinician_of_site_02_cannot_consent_a_site_01_screening(
    client, modic, site1, clinician, clinician_site2
):
    screening = factories.screened(modic, site1, clinician)
    client.force_login(clinician_site2)
    response = client.post(
        url("screening_consent", modic, screening.pk),
        consent_post(modic, consent_date=today(modic)),
    )
    assert response.status_code == 403
    assert not Participant.objects.exists()


def test_a_clinician_of_site_02_cannot_screen_at_site_01(client, modic, site1, clinician_site2):
    client.force_login(clinician_site2)
    response = client.post(
        url("screening_new", modic), screening_post(modic, site1, screened_on=today(modic))
    )
    assert response.status_code == 200
    assert "site" in response.context["form"].errors
    assert not ScreeningRecord.objects.exists()


def test_the_participant_list_shows_only_participants_of_the_clinicians_sites(
    client, modic, site2, clinician_site2, enrolled
):
    other = factories.enrolled_participant(modic, site2, clinician_site2)
    client.force_login(clinician_site2)
    response = client.get(url("trial_home", modic))
    assertContains(response, url("participant_detail", modic, other.pk))
    assertNotContains(response, url("participant_detail", modic, enrolled.pk))


def test_the_screening_log_shows_only_screenings_of_the_clinicians_sites(
    client, modic, site1, site2, clinician, clinician_site2
):
    own = factories.screened(modic, site2, clinician_site2)
    other = factories.screened(modic, site1, clinician)
    client.force_login(clinician_site2)
    response = client.get(url("screening_log", modic))
    assertContains(response, url("screening_detail", modic, own.pk))
    assertNotContains(response, url("screening_detail", modic, other.pk))


def test_the_participant_list_never_shows_a_clinician_arm_totals_or_balance(
    client, modic, site1, clinician
):
    for _ in range(3):
        randomized_participant(modic, site1, clinician)
    client.force_login(clinician)
    response = client.get(url("trial_home", modic))
    assert response.status_code == 200
    for key in ("arms", "totals", "rows", "grand_total"):
        assert key not in response.context
    assertNotContains(response, "table-balance")
    assertNotContains(response, "Allocation balance")
    assertNotContains(response, "All randomized")
    assertNotContains(response, url("balance", modic))


def test_the_balance_page_shows_the_statistician_arm_totals(
    client, modic, site1, clinician, statistician
):
    for _ in range(3):
        randomized_participant(modic, site1, clinician)
    client.force_login(statistician)
    response = client.get(url("balance", modic))
    assertContains(response, "table-balance")
    row = response.context["all_randomized"]
    assert row["total"] == 3
    assert sum(n for n, _ in row["cells"]) == 3
    # Equal allocation: each arm is expected to hold half of the total.
    assert [expected for _, expected in row["cells"]] == [1.5, 1.5]


def test_the_participant_page_shows_the_coordinator_no_edit_or_randomize_links(
    client, modic, coordinator, enrolled
):
    client.force_login(coordinator)
    response = client.get(url("participant_detail", modic, enrolled.pk))
    assertNotContains(response, url("participant_review", modic, enrolled.pk))
    assertNotContains(response, url("participant_edit", modic, enrolled.pk))
    assertNotContains(response, url("screening_new", modic))


# --- 3. The journey ------------------------------------------------------------------------


def test_the_clinician_screens_consents_records_baseline_and_randomizes_once(
    client, modic, site1, clinician
):
    client.force_login(clinician)

    response = client.get(url("screening_new", modic))
    assert response.status_code == 200
    assertContains(response, "Screen a patient")

    # An ineligible patient: screening log only, with the reason; nobody enrolled.
    response = client.post(
        url("screening_new", modic),
        screening_post(modic, site1, screened_on=days_ago(modic, 1), eligible=False),
        follow=True,
    )
    ineligible = ScreeningRecord.objects.get()
    assertRedirects(response, url("screening_detail", modic, ineligible.pk))
    assertContains(
        response, '<dd class="col-sm-9" id="screening-outcome">Not eligible</dd>', html=True
    )
    assertContains(response, "Inclusion criterion not met: Aged 18–60 years? (answered no)")
    assert ineligible.initials == "AB"
    assert ineligible.outcome == ScreeningRecord.Outcome.INELIGIBLE
    assert not Participant.objects.exists()

    # An eligible patient goes on to consent.
    response = client.post(
        url("screening_new", modic),
        screening_post(modic, site1, screened_on=days_ago(modic, 1)),
    )
    screening = ScreeningRecord.objects.exclude(pk=ineligible.pk).get()
    assert screening.outcome == ScreeningRecord.Outcome.ELIGIBLE
    assertRedirects(response, url("screening_consent", modic, screening.pk))

    response = client.post(
        url("screening_consent", modic, screening.pk),
        consent_post(modic, consent_date=today(modic)),
    )
    participant = Participant.objects.get()
    assertRedirects(response, url("participant_baseline", modic, participant.pk))
    screening.refresh_from_db()
    assert screening.outcome == ScreeningRecord.Outcome.ENROLLED

    response = client.post(url("participant_baseline", modic, participant.pk), BASELINE_POST)
    assertRedirects(response, url("participant_review", modic, participant.pk))
    participant.refresh_from_db()
    assert participant.baseline == {"age": 45, "pain": 7}
    assert participant.factor_levels == {
        "modic": "type1",
        "sex": "female",
        "pain": "7-10",
        "age": "ge40",
    }

    response = client.get(url("participant_review", modic, participant.pk))
    assertContains(response, "Review before randomization")
    assertContains(response, "Jens Jensen")

    review_url = url("participant_review", modic, participant.pk)
    allocation_url = url("participant_allocation", modic, participant.pk)
    response = client.post(review_url, {"confirm": "on"})
    assertRedirects(response, allocation_url)
    allocation = Allocation.objects.select_related("arm").get()
    response = client.get(allocation_url)
    assertContains(response, "MOD-01-0001")
    assertContains(
        response,
        f'<div class="allocation-arm text-success" id="allocated-arm">{allocation.arm.name}</div>',
        html=True,
    )

    # Resubmitting the form (back button, double click) allocates nobody twice.
    response = client.post(review_url, {"confirm": "on"})
    assertRedirects(response, allocation_url)
    response = client.get(review_url)
    assertRedirects(response, allocation_url)
    assert Allocation.objects.count() == 1
    participant.refresh_from_db()
    assert participant.number == "MOD-01-0001"
    assert participant.is_randomized


def test_a_declined_consent_is_recorded_on_the_screening_and_enrolls_nobody(
    client, modic, site1, clinician
):
    screening = factories.screened(modic, site1, clinician)
    client.force_login(clinician)
    response = client.post(
        url("screening_consent", modic, screening.pk),
        {"decision": "declined", "declined_reason": "No time"},
    )
    assertRedirects(response, url("screening_detail", modic, screening.pk))
    screening.refresh_from_db()
    assert screening.outcome == ScreeningRecord.Outcome.DECLINED
    assert not Participant.objects.exists()


def test_resubmitting_the_consent_form_creates_no_second_participant(
    client, modic, site1, clinician
):
    screening = factories.screened(modic, site1, clinician)
    client.force_login(clinician)
    data = consent_post(modic, consent_date=today(modic))
    first = client.post(url("screening_consent", modic, screening.pk), data)
    participant = Participant.objects.get()
    assertRedirects(first, url("participant_baseline", modic, participant.pk))
    second = client.post(url("screening_consent", modic, screening.pk), data)
    assertRedirects(second, url("screening_detail", modic, screening.pk))
    assert Participant.objects.count() == 1


def test_the_allocation_page_of_a_participant_not_yet_randomized_goes_to_the_detail_page(
    client, modic, clinician, enrolled
):
    client.force_login(clinician)
    response = client.get(url("participant_allocation", modic, enrolled.pk))
    assertRedirects(response, url("participant_detail", modic, enrolled.pk))


def test_the_consent_page_of_an_ineligible_screening_redirects_to_its_detail(
    client, modic, site1, clinician
):
    record, _ = services.screening_record(
        trial=modic,
        site=site1,
        initials="ZZ",
        screened_on=today(modic),
        answers={c.pk: c.ineligible_answer for c in modic.criteria.all()},
        by=clinician,
    )
    client.force_login(clinician)
    response = client.post(
        url("screening_consent", modic, record.pk), consent_post(modic, consent_date=today(modic))
    )
    assertRedirects(response, url("screening_detail", modic, record.pk))
    assert not Participant.objects.exists()


def test_the_baseline_page_after_randomization_redirects_and_changes_nothing(
    client, modic, site1, clinician
):
    participant = randomized_participant(modic, site1, clinician)
    client.force_login(clinician)
    response = client.post(
        url("participant_baseline", modic, participant.pk), {**BASELINE_POST, "age": "20"}
    )
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    participant.refresh_from_db()
    assert participant.baseline["age"] == 45


# --- 4. Bad input --------------------------------------------------------------------------


def page_errors(response) -> dict[str, list[str]]:
    """Every error on the baseline page, keyed by field name as posted (instrument fields
    with their prefix; "<prefix>-__all__" for an instrument as a whole)."""
    errors = dict(response.context["form"].errors)
    for form in response.context["instrument_forms"]:
        for name, messages in form.errors.items():
            errors[f"{form.prefix}-{name}"] = messages
    return errors


BASELINE_ERRORS = [
    pytest.param("age", "65", "above the eligibility criterion", id="age 65 is not eligible"),
    pytest.param("age", "12", "below the eligibility criterion", id="age 12 is not eligible"),
    pytest.param("pain-value", "11", "less than or equal to 10", id="pain 11 is out of range"),
    pytest.param("pain-value", "2", "below the eligibility criterion", id="pain 2 is not eligible"),
    pytest.param(
        "pain-not_done", "refused", "needed for randomization", id="pain not done is refused"
    ),
    pytest.param("eq5d-vas", "101", "less than or equal to 100", id="EQ VAS 101"),
    pytest.param("sms_language", "fr", "Select a valid choice", id="unknown SMS language"),
    pytest.param("age", "", "Age is needed for randomization.", id="age missing"),
    pytest.param(
        "phone",
        "12345",
        "Start the number with + and the country code",
        id="phone without country code",
    ),
    pytest.param("phone", "+4512", "does not exist in the country", id="too short phone number"),
    pytest.param("phone", "+45 ring mig", "does not look like a phone number", id="phone in words"),
    pytest.param(
        "phone", "+999 12345678", "does not look like a phone number", id="unknown country code"
    ),
    pytest.param("factor_modic", "", "Choose the modic type.", id="factor missing"),
    pytest.param("factor_sex", "other", "Select a valid choice", id="factor level unknown"),
    pytest.param("full_name", "", "This field is required.", id="name missing"),
]


@pytest.mark.parametrize(("field", "value", "message"), BASELINE_ERRORS)
def test_bad_baseline_input_is_shown_next_to_its_field_and_saves_nothing(
    client, modic, clinician, enrolled, field, value, message
):
    before = Participant.objects.values().get(pk=enrolled.pk)
    client.force_login(clinician)
    data = {**BASELINE_POST, field: value}
    if field == "pain-not_done":
        del data["pain-value"]
    response = client.post(url("participant_baseline", modic, enrolled.pk), data)
    assert response.status_code == 200
    errors = page_errors(response)
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assertContains(response, message)
    # Never the phonenumbers library's own wording.
    assertNotContains(response, "did not seem to be")
    assertNotContains(response, "Could not interpret")
    assert Participant.objects.values().get(pk=enrolled.pk) == before
    assert not OutcomeEntry.objects.exists()


def test_an_age_outside_eligibility_mentions_eligibility(client, modic, clinician, enrolled):
    client.force_login(clinician)
    response = client.post(
        url("participant_baseline", modic, enrolled.pk), {**BASELINE_POST, "age": "65"}
    )
    assert response.context["form"].errors["age"] == [
        "Age 65 years is above the eligibility criterion (at most 60): this patient is not "
        "eligible."
    ]
    enrolled.refresh_from_db()
    assert enrolled.baseline == {"age": 45, "pain": 7}


def test_a_screening_date_in_the_future_is_refused(client, modic, site1, clinician):
    client.force_login(clinician)
    tomorrow = today(modic) + dt.timedelta(days=1)
    response = client.post(
        url("screening_new", modic), screening_post(modic, site1, screened_on=tomorrow)
    )
    assert response.status_code == 200
    assert response.context["form"].errors["screened_on"] == [
        "The screening date cannot be in the future."
    ]
    assertContains(response, "The screening date cannot be in the future.")
    assert not ScreeningRecord.objects.exists()


def test_an_unanswered_eligibility_question_is_refused(client, modic, site1, clinician):
    client.force_login(clinician)
    data = screening_post(modic, site1, screened_on=today(modic))
    criterion = modic.criteria.order_by("pk").first()
    del data[f"criterion_{criterion.pk}"]
    response = client.post(url("screening_new", modic), data)
    assert response.context["form"].errors[f"criterion_{criterion.pk}"] == ["Answer this question."]
    assert not ScreeningRecord.objects.exists()


@pytest.mark.parametrize(
    ("initials", "message"),
    [("A1", "Use letters only."), ("A", "at least 2 characters"), ("ABCDE", "at most 4")],
)
def test_bad_initials_are_refused(client, modic, site1, clinician, initials, message):
    client.force_login(clinician)
    data = {**screening_post(modic, site1, screened_on=today(modic)), "initials": initials}
    response = client.post(url("screening_new", modic), data)
    assert message in " ".join(response.context["form"].errors["initials"])
    assert not ScreeningRecord.objects.exists()


CONSENT_ERRORS = [
    pytest.param(1, "The consent date cannot be in the future.", id="consent tomorrow"),
    pytest.param(-5, "Consent cannot precede screening", id="consent before screening"),
]


@pytest.mark.parametrize(("offset", "message"), CONSENT_ERRORS)
def test_a_bad_consent_date_is_refused_and_enrolls_nobody(
    client, modic, site1, clinician, offset, message
):
    screening = factories.screened(modic, site1, clinician, days_ago=2)
    client.force_login(clinician)
    consent_date = today(modic) + dt.timedelta(days=offset)
    response = client.post(
        url("screening_consent", modic, screening.pk),
        consent_post(modic, consent_date=consent_date),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["consent_date"]
    assert message in errors["consent_date"][0]
    assertContains(response, message)
    assert not Participant.objects.exists()
    screening.refresh_from_db()
    assert screening.outcome == ScreeningRecord.Outcome.ELIGIBLE


def test_consent_without_a_date_or_form_version_is_refused(client, modic, site1, clinician):
    screening = factories.screened(modic, site1, clinician)
    client.force_login(clinician)
    response = client.post(url("screening_consent", modic, screening.pk), {"decision": "consented"})
    errors = response.context["form"].errors
    assert errors["consent_date"] == ["Enter the date consent was signed."]
    assert errors["consent_document"] == ["Choose the consent form version signed."]
    assert not Participant.objects.exists()


def test_randomizing_without_ticking_confirm_is_refused(client, modic, clinician, enrolled):
    client.force_login(clinician)
    # A browser always sends the submit button (and the CSRF token), never an empty body.
    response = client.post(url("participant_review", modic, enrolled.pk), {"submit": "Randomize"})
    assert response.status_code == 200
    assert response.context["form"].errors["confirm"] == [
        "Tick the box to confirm the values are correct."
    ]
    assertContains(response, "Tick the box to confirm the values are correct.")
    assert not Allocation.objects.exists()
    enrolled.refresh_from_db()
    assert not enrolled.is_randomized


def test_the_review_page_without_baseline_sends_the_clinician_to_the_baseline_form(
    client, modic, site1, clinician
):
    participant = factories.enrolled_participant(modic, site1, clinician, baseline=False)
    client.force_login(clinician)
    response = client.post(url("participant_review", modic, participant.pk), {"confirm": "on"})
    assertRedirects(response, url("participant_baseline", modic, participant.pk))
    assert not Allocation.objects.exists()


def close(trial: Trial) -> None:
    trial.refresh_from_db()
    trial.status = Trial.Status.CLOSED
    trial.save()


NOT_RECRUITING = "MOD is not recruiting (status: Closed)"


def test_a_closed_trial_refuses_randomization_with_a_clear_message(
    client, modic, clinician, enrolled
):
    close(modic)
    client.force_login(clinician)
    response = client.post(url("participant_review", modic, enrolled.pk), {"confirm": "on"})
    assert response.status_code == 200
    assert NOT_RECRUITING in " ".join(response.context["form"].non_field_errors())
    assertContains(response, NOT_RECRUITING)
    assert not Allocation.objects.exists()
    enrolled.refresh_from_db()
    assert not enrolled.is_randomized


def test_a_closed_trial_refuses_screening_with_a_clear_message(client, modic, site1, clinician):
    close(modic)
    client.force_login(clinician)
    response = client.post(
        url("screening_new", modic), screening_post(modic, site1, screened_on=today(modic))
    )
    assert response.status_code == 200
    assertContains(response, NOT_RECRUITING)
    assertContains(response, "screening, enrollment and randomization are closed")
    assert not ScreeningRecord.objects.exists()


def test_a_closed_trial_refuses_consent_with_a_clear_message(client, modic, site1, clinician):
    screening = factories.screened(modic, site1, clinician)
    close(modic)
    client.force_login(clinician)
    response = client.post(
        url("screening_consent", modic, screening.pk),
        consent_post(modic, consent_date=today(modic)),
    )
    assert response.status_code == 200
    assertContains(response, NOT_RECRUITING)
    assert not Participant.objects.exists()


def test_a_trial_at_its_target_refuses_randomization_with_a_clear_message(
    client, modic, site1, clinician, enrolled
):
    second = factories.enrolled_participant(modic, site1, clinician)
    client.force_login(clinician)
    response = client.post(url("participant_review", modic, enrolled.pk), {"confirm": "on"})
    assertRedirects(response, url("participant_allocation", modic, enrolled.pk))
    modic.refresh_from_db()
    modic.target_sample_size = modic.allocation_count
    modic.save()

    response = client.post(url("participant_review", modic, second.pk), {"confirm": "on"})
    assert response.status_code == 200
    message = "MOD has reached its target of 1 participants; no more can be randomized."
    assertContains(response, message)
    assert Allocation.objects.count() == 1
    second.refresh_from_db()
    assert not second.is_randomized


# --- 5. Editing details ----------------------------------------------------------------------


def test_the_clinician_can_correct_contact_and_consent_details(client, modic, site1, clinician):
    participant = participant_screened_days_ago(modic, site1, clinician, 10)
    client.force_login(clinician)
    response = client.post(
        url("participant_edit", modic, participant.pk),
        edit_post(
            participant,
            full_name="Corrected Name",
            phone="+45 20 12 34 57",
            consent_date=days_ago(modic, 8).isoformat(),
        ),
    )
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    participant.refresh_from_db()
    assert participant.full_name == "Corrected Name"
    assert participant.phone == "+4520123457"
    assert participant.consent_date == days_ago(modic, 8)


EDIT_ERRORS = [
    pytest.param(
        "phone",
        "12345",
        "Start the number with + and the country code",
        id="phone without country code",
    ),
    pytest.param("phone", "+45 ring mig", "does not look like a phone number", id="phone in words"),
    pytest.param("consent_date", 1, "The consent date cannot be in the future.", id="future"),
    pytest.param("consent_date", -11, "Consent cannot precede screening", id="before screening"),
]


@pytest.mark.parametrize(("field", "value", "message"), EDIT_ERRORS)
def test_bad_details_are_shown_next_to_their_field_and_save_nothing(
    client, modic, site1, clinician, field, value, message
):
    participant = participant_screened_days_ago(modic, site1, clinician, 10)
    before = Participant.objects.values().get(pk=participant.pk)
    if field == "consent_date":
        value = (today(modic) + dt.timedelta(days=value)).isoformat()
    client.force_login(clinician)
    response = client.post(
        url("participant_edit", modic, participant.pk), edit_post(participant, **{field: value})
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assertContains(response, message)
    assert Participant.objects.values().get(pk=participant.pk) == before


def test_a_consent_date_after_randomization_is_refused_when_editing(
    client, modic, site1, clinician
):
    participant = participant_screened_days_ago(modic, site1, clinician, 10)
    services.participant_randomize(participant=participant, by=clinician)
    randomized_on = days_ago(modic, 5)
    Participant.objects.filter(pk=participant.pk).update(randomized_on=randomized_on)
    participant.refresh_from_db()
    before = Participant.objects.values().get(pk=participant.pk)

    client.force_login(clinician)
    response = client.post(
        url("participant_edit", modic, participant.pk),
        edit_post(participant, consent_date=days_ago(modic, 2).isoformat()),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["consent_date"]
    assert errors == [f"Consent must be given before randomization ({randomized_on:%d %b %Y})."]
    assertContains(response, "Consent must be given before randomization")
    assert Participant.objects.values().get(pk=participant.pk) == before

    # A date between screening and randomization is still a valid correction (with its
    # reason, as every change after randomization).
    response = client.post(
        url("participant_edit", modic, participant.pk),
        edit_post(
            participant,
            consent_date=days_ago(modic, 6).isoformat(),
            reason_for_change="Corrected from the signed form",
        ),
    )
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    participant.refresh_from_db()
    assert participant.consent_date == days_ago(modic, 6)


# --- 6. Query counts -------------------------------------------------------------------------

LIST_QUERY_BOUND = 12


def _list_queries(client, user, trial: Trial, django_assert_max_num_queries) -> int:
    with (
        CaptureQueriesContext(connection) as captured,
        django_assert_max_num_queries(LIST_QUERY_BOUND),
    ):
        response = client.get(url("trial_home", trial))
    assert response.status_code == 200
    visible = selectors.participants_visible_to(user, trial).count()
    assert len(response.context["page"].object_list) == visible > 0
    return len(captured.captured_queries)


def _add_participants(trial, sites, by, count: int) -> None:
    for i in range(count):
        participant = factories.enrolled_participant(trial, sites[i % 2], by)
        if i % 3 == 0:
            services.participant_randomize(participant=participant, by=by)


@pytest.mark.parametrize("role", ["manager", "clinician", "coordinator"])
def test_the_participant_list_takes_the_same_few_queries_for_5_or_30_participants(
    request, client, modic, site1, site2, manager, role, django_assert_max_num_queries
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    _add_participants(modic, [site1, site2], manager, 5)
    with_5 = _list_queries(client, user, modic, django_assert_max_num_queries)
    _add_participants(modic, [site1, site2], manager, 25)
    assert Participant.objects.count() == 30
    with_30 = _list_queries(client, user, modic, django_assert_max_num_queries)
    assert with_5 == with_30


def test_the_participant_list_shows_arms_to_coordinators_and_managers_but_not_clinicians(
    client, modic, site1, clinician, coordinator, manager
):
    participant = randomized_participant(modic, site1, clinician)
    arm_cell = f"<td>{participant.allocation.arm.name}</td>"
    for user in (coordinator, manager):
        client.force_login(user)
        response = client.get(url("trial_home", modic))
        assertContains(response, participant.number)
        assertContains(response, arm_cell, html=True)
    # A column of arms is a tally of arms: clinicians see the arm on the participant's page.
    client.force_login(clinician)
    response = client.get(url("trial_home", modic))
    assertContains(response, participant.number)
    assertNotContains(response, "<th>Arm</th>", html=True)
    assertNotContains(response, arm_cell, html=True)
    detail = client.get(url("participant_detail", modic, participant.pk))
    assertContains(detail, participant.allocation.arm.name)


def test_the_participant_list_can_be_searched_by_number(client, modic, site1, clinician):
    first = randomized_participant(modic, site1, clinician)
    second = randomized_participant(modic, site1, clinician)
    client.force_login(clinician)
    response = client.get(url("trial_home", modic), {"q": first.number})
    assertContains(response, first.number)
    assertNotContains(response, second.number)


@pytest.mark.parametrize("query", ["ødeg", "ØDEGÅRD", "degård", "ødega\u030ard"])
def test_the_participant_list_search_folds_non_ascii_letters(
    client, modic, site1, clinician, query
):
    """SQLite's LIKE folds ASCII letters only: "ødeg" missed "Ødegård" there."""
    found = factories.enrolled_participant(modic, site1, clinician)
    services.participant_update_details(
        participant=found, full_name="Kirsten Ødegård", phone=found.phone,
        consent_date=found.consent_date, consent_document=found.consent_document, by=clinician,
    )  # fmt: skip
    other = factories.enrolled_participant(modic, site1, clinician)
    client.force_login(clinician)
    response = client.get(url("trial_home", modic), {"q": query})
    assertContains(response, url("participant_detail", modic, found.pk))
    assertNotContains(response, url("participant_detail", modic, other.pk))


def test_a_name_typed_with_combining_marks_is_found_by_its_precomposed_letters(
    client, modic, site1, clinician
):
    found = factories.enrolled_participant(modic, site1, clinician)
    services.participant_update_details(
        participant=found, full_name="Ma\u030ans Strauss", phone=found.phone,
        consent_date=found.consent_date, consent_document=found.consent_document, by=clinician,
    )  # fmt: skip
    client.force_login(clinician)
    for query in ("Måns", "STRAUẞ", "strauss"):
        response = client.get(url("trial_home", modic), {"q": query})
        assertContains(response, url("participant_detail", modic, found.pk), msg_prefix=query)
