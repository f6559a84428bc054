"""Baseline instruments entered at enrollment, before randomization: the service
(outcomes.instruments.services.participant_record_baseline_with_instruments), the link to the baseline visit
made at randomization, and the baseline, review and baseline-visit pages.

The demo's pain instrument is the baseline variable "pain" (Instrument.baseline_variable),
from which the pain minimization factor is derived (4–6 / 7–10); pain, Roland–Morris and
EQ-5D-3L are due at the baseline visit (VisitDefinition.at_randomization).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from outcomes.instruments.models import OutcomeEntry
from outcomes.instruments.selectors import baseline_instruments
from outcomes.instruments.services import (
    EntryInput,
    participant_record_baseline_with_instruments,
)
from outcomes.sms.models import SmsLanguage, SmsQuestionText
from participants import services
from participants.models import Participant, Visit
from tests import factories
from tests.outcomes.instruments.test_entry import full_post, instrument
from tests.participants.test_followup_views import visit_of
from tests.participants.test_views import BASELINE_POST, page_errors, url
from trial.models import VisitDefinition

# --- Helpers --------------------------------------------------------------------------------


@pytest.fixture
def consented(modic, site1, clinician) -> Participant:
    """Consented at site 01, no baseline yet."""
    return factories.enrolled_participant(modic, site1, clinician, baseline=False)


def record(participant: Participant, by, **changes) -> Participant:
    """The baseline form's service with plausible data; keyword arguments replace parts."""
    trial = participant.trial
    kwargs = {
        "participant": participant,
        "full_name": "Karen Jensen",
        "phone": "+4520123456",
        "sms_language": "da",
        "values": {"age": 45},
        "chosen_levels": {"modic": "type1", "sex": "female"},
        "entries": factories.baseline_entries(trial),
        "by": by,
    }
    kwargs.update(changes)
    return participant_record_baseline_with_instruments(**kwargs)


def entries_of(participant: Participant) -> dict[str, OutcomeEntry]:
    return {
        e.instrument.code: e
        for e in OutcomeEntry.objects.filter(participant=participant).select_related("instrument")
    }


def snapshot(participant: Participant):
    return (
        Participant.objects.values().get(pk=participant.pk),
        sorted(OutcomeEntry.objects.filter(participant=participant).values_list()),
        OutcomeEntry.history.filter(participant_id=participant.pk).count(),
    )


def error_dict(exc_info) -> dict[str, list[str]]:
    return exc_info.value.message_dict


# --- The service ----------------------------------------------------------------------------


def test_the_demo_baseline_instruments_are_pain_rmdq_and_eq5d_with_pain_a_baseline_variable(
    modic,
):
    instruments = baseline_instruments(modic)
    assert [i.code for i in instruments] == ["pain", "rmdq", "eq5d"]
    assert instruments[0].baseline_variable.code == "pain"
    assert [i.baseline_variable_id for i in instruments[1:]] == [None, None]


def test_the_baseline_form_records_contact_values_levels_and_visitless_entries(
    modic, consented, clinician
):
    participant = record(consented, clinician)

    assert participant.baseline_complete
    assert (participant.full_name, participant.phone) == ("Karen Jensen", "+4520123456")
    assert participant.sms_language == "da"
    assert participant.baseline == {"age": 45, "pain": 7}
    assert participant.factor_levels == {
        "modic": "type1",
        "sex": "female",
        "pain": "7-10",
        "age": "ge40",
    }
    entries = entries_of(participant)
    assert set(entries) == {"pain", "rmdq", "eq5d"}
    assert all(e.visit_id is None for e in entries.values())
    assert (entries["pain"].responses, entries["pain"].score) == ({"value": 7}, 7)
    assert entries["rmdq"].score == 7
    assert entries["eq5d"].eq5d_profile == "11221"
    assert entries["eq5d"].eq5d_vas == 60
    assert entries["eq5d"].score is not None
    for entry in entries.values():
        assert entry.entered_by == clinician
        assert entry.history.get().history_user == clinician


def test_the_pain_score_is_the_baseline_pain_and_gives_the_factor_level(
    modic, consented, clinician
):
    participant = record(consented, clinician, entries=factories.baseline_entries(modic, pain=5))
    assert participant.baseline["pain"] == 5
    assert participant.factor_levels["pain"] == "4-6"


def test_an_instrument_not_done_is_stored_with_its_reason(modic, consented, clinician):
    entries = factories.baseline_entries(modic, not_done={"rmdq": "refused", "eq5d": "other"})
    participant = record(consented, clinician, entries=entries)
    stored = entries_of(participant)
    assert (stored["rmdq"].not_done, stored["rmdq"].score, stored["rmdq"].responses) == (
        "refused",
        None,
        {},
    )
    assert (stored["eq5d"].not_done, stored["eq5d"].not_done_note) == ("other", "Test note")
    assert stored["eq5d"].eq5d_vas is None
    assert participant.factor_levels["pain"] == "7-10"  # pain was done


def test_other_without_a_note_is_refused(modic, consented, clinician):
    entries = [
        e if e.instrument.code != "rmdq" else EntryInput(e.instrument, not_done="other")
        for e in factories.baseline_entries(modic)
    ]
    with pytest.raises(ValidationError) as err:
        record(consented, clinician, entries=entries)
    assert error_dict(err) == {"rmdq-not_done_note": ["Say why it was not done."]}


def test_pain_not_done_is_refused_because_randomization_needs_it(modic, consented, clinician):
    before = snapshot(consented)
    entries = factories.baseline_entries(modic, not_done={"pain": "too_ill"})
    with pytest.raises(ValidationError) as err:
        record(consented, clinician, entries=entries)
    assert error_dict(err) == {
        "pain-not_done": [
            "Current low back pain (0–10) is needed for randomization: enter Current low back "
            "pain (0–10); it cannot be marked not done at baseline."
        ]
    }
    assert snapshot(consented) == before


def test_pain_missing_is_refused_because_randomization_needs_it(modic, consented, clinician):
    with pytest.raises(ValidationError) as err:
        record(consented, clinician, entries=factories.baseline_entries(modic, pain=None))
    assert list(error_dict(err)) == ["pain-value"]
    assert "needed for randomization" in error_dict(err)["pain-value"][0]
    assert not Participant.objects.get(pk=consented.pk).baseline_complete


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        pytest.param({"pain": 11}, "pain-value", "pain must be a whole number 0–10", id="pain 11"),
        pytest.param({"pain": 3}, "pain-value", "below the eligibility criterion", id="pain 3"),
        pytest.param({"vas": 101}, "eq5d-vas", "the EQ VAS is a whole number 0–100", id="VAS"),
        pytest.param({"eq5d": "11241"}, "eq5d-PD", "PD must be 1, 2 or 3", id="EQ-5D level 4"),
    ],
)
def test_out_of_range_instrument_data_is_refused_next_to_its_field_and_nothing_is_saved(
    modic, consented, clinician, changes, key, message
):
    before = snapshot(consented)
    with pytest.raises(ValidationError) as err:
        record(consented, clinician, entries=factories.baseline_entries(modic, **changes))
    assert list(error_dict(err)) == [key]
    assert message in error_dict(err)[key][0]
    assert snapshot(consented) == before


def test_every_error_is_reported_at_once_and_nothing_is_saved(modic, consented, clinician):
    before = snapshot(consented)
    with pytest.raises(ValidationError) as err:
        record(
            consented,
            clinician,
            phone="12345",
            sms_language="fr",
            values={"age": 70},
            entries=factories.baseline_entries(modic, vas=101),
        )
    assert set(error_dict(err)) == {"phone", "sms_language", "age", "eq5d-vas"}
    assert snapshot(consented) == before


def test_every_instrument_due_must_be_entered_or_marked_not_done(modic, consented, clinician):
    entries = [e for e in factories.baseline_entries(modic) if e.instrument.code != "eq5d"]
    with pytest.raises(ValidationError) as err:
        record(consented, clinician, entries=entries)
    assert error_dict(err) == {"eq5d-__all__": ["Enter the data, or mark the instrument not done."]}


def test_an_instrument_not_due_at_baseline_is_refused(modic, consented, clinician):
    entries = [*factories.baseline_entries(modic), EntryInput(instrument(modic, "global"), {})]
    with pytest.raises(ValidationError, match="Global assessment is not due at baseline"):
        record(consented, clinician, entries=entries)
    assert not OutcomeEntry.objects.exists()


def test_a_sourced_variable_cannot_also_be_given_as_a_value(modic, consented, clinician):
    with pytest.raises(ValueError, match="taken from pain"):
        record(consented, clinician, values={"age": 45, "pain": 7})


@pytest.mark.parametrize("language", ["", "da", "en"])
def test_the_sms_language_is_a_trial_language_or_blank_for_the_default(
    consented, clinician, language
):
    assert record(consented, clinician, sms_language=language).sms_language == language


def test_an_unknown_sms_language_is_refused(consented, clinician):
    with pytest.raises(ValidationError) as err:
        record(consented, clinician, sms_language="fr")
    assert error_dict(err) == {"sms_language": ["“fr” is not an SMS language of this trial."]}


def test_submitting_again_before_randomization_replaces_the_entries(modic, consented, clinician):
    record(consented, clinician)
    first = entries_of(consented)
    participant = record(
        consented,
        clinician,
        entries=factories.baseline_entries(modic, pain=5, not_done={"rmdq": "refused"}),
    )
    again = entries_of(participant)
    assert OutcomeEntry.objects.filter(participant=participant).count() == 3
    assert {code: e.pk for code, e in again.items()} == {code: e.pk for code, e in first.items()}
    assert again["pain"].score == 5
    assert again["rmdq"].not_done == "refused"
    assert participant.baseline["pain"] == 5
    assert participant.factor_levels["pain"] == "4-6"
    # The history keeps the values before; the unchanged EQ-5D gets no new record.
    assert [h.score for h in again["pain"].history.all()] == [5, 7]
    assert again["pain"].history.first().history_change_reason == (
        "Baseline entered again before randomization"
    )
    assert again["eq5d"].history.count() == 1


def test_the_baseline_form_is_refused_after_randomization(modic, consented, clinician):
    record(consented, clinician)
    services.participant_randomize(participant=consented, by=clinician)
    before = snapshot(consented)
    with pytest.raises(ValidationError, match="cannot change after randomization"):
        record(consented, clinician, entries=factories.baseline_entries(modic, pain=4))
    assert snapshot(consented) == before


# --- Randomization links the entries to the baseline visit ----------------------------------


def test_randomization_links_the_baseline_entries_to_the_baseline_visit(
    modic, consented, clinician
):
    record(consented, clinician)
    allocation, _ = services.participant_randomize(participant=consented, by=clinician)
    baseline = visit_of(consented, "baseline")
    assert baseline.outcome == Visit.Outcome.COMPLETED
    entries = entries_of(consented)
    assert {e.visit_id for e in entries.values()} == {baseline.pk}
    latest = entries["pain"].history.first()
    assert latest.history_user == clinician
    assert latest.history_change_reason == "Linked to the baseline visit at randomization"
    assert allocation.factor_levels["pain"] == "7-10"
    assert not OutcomeEntry.objects.filter(visit__definition__code="w10").exists()


def test_without_a_visit_at_randomization_the_entries_stay_without_a_visit(
    modic, consented, clinician
):
    record(consented, clinician)
    baseline = VisitDefinition.objects.get(trial=modic, code="baseline")
    baseline.at_randomization = False
    baseline.save()
    services.participant_randomize(participant=consented, by=clinician)
    assert OutcomeEntry.objects.filter(participant=consented, visit__isnull=True).count() == 3


def test_a_factory_participant_can_go_through_the_instrument_path(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician, pain=4, instruments=True)
    assert participant.factor_levels["pain"] == "4-6"
    assert set(entries_of(participant)) == {"pain", "rmdq", "eq5d"}


# --- The baseline visit's outcomes page, after randomization --------------------------------


@pytest.fixture
def randomized(modic, consented, clinician) -> Participant:
    record(consented, clinician)
    services.participant_randomize(participant=consented, by=clinician)
    consented.refresh_from_db()
    return consented


def test_the_baseline_visit_page_shows_the_entries_made_before_randomization(
    client, modic, coordinator, randomized
):
    client.force_login(coordinator)
    baseline = visit_of(randomized, "baseline")
    response = client.get(url("visit_outcomes", modic, baseline.pk))
    assert response.status_code == 200
    forms = {f.instrument.code: f for f in response.context["forms"]}
    assert set(forms) == {"pain", "rmdq", "eq5d"}
    assert forms["pain"].initial["value"] == 7
    assert forms["eq5d"].initial["vas"] == 60
    assertContains(response, "Saved values are shown.")
    assertContains(response, "the allocation keeps the value and the minimization factor level")


def test_correcting_a_baseline_entry_needs_a_reason_and_keeps_the_allocation(
    client, modic, coordinator, randomized
):
    client.force_login(coordinator)
    baseline = visit_of(randomized, "baseline")
    page = url("visit_outcomes", modic, baseline.pk)
    # The baseline page's values, with pain corrected from 7 to 5.
    post = full_post(baseline.attended_on, pain_value="5", yes=7, profile="11221", vas="60")
    del post["global-answer"], post["global-not_done"], post["global-not_done_note"]

    response = client.post(page, post)
    assert response.status_code == 200
    assert response.context["visit_form"].errors["reason_for_change"] == [
        "Saved values are being changed: give the reason."
    ]
    assert entries_of(randomized)["pain"].score == 7

    response = client.post(page, {**post, "visit-reason_for_change": "Misread the form"})
    assertRedirects(response, url("participant_detail", modic, randomized.pk))
    pain = entries_of(randomized)["pain"]
    assert (pain.score, pain.visit_id) == (5, baseline.pk)
    assert pain.history.first().history_change_reason == "Misread the form"
    # The allocation was made with 7-10 and keeps it; so does the stored baseline.
    randomized.refresh_from_db()
    assert randomized.allocation.factor_levels["pain"] == "7-10"
    assert randomized.baseline["pain"] == 7


# --- The baseline and review pages ----------------------------------------------------------


def test_the_baseline_page_asks_the_instruments_and_not_the_pain_variable_twice(
    client, modic, clinician, consented
):
    client.force_login(clinician)
    response = client.get(url("participant_baseline", modic, consented.pk))
    form = response.context["form"]
    assert "pain" not in form.fields
    assert "age" in form.fields
    assert form["sms_language"].value() == "da"  # the schedule's default language
    assert [f.instrument.code for f in response.context["instrument_forms"]] == [
        "pain",
        "rmdq",
        "eq5d",
    ]
    assertContains(response, 'id="instrument-pain"')
    assertContains(response, 'name="eq5d-vas"')
    assertContains(response, "Needed for randomization")


def test_without_sms_languages_the_baseline_page_asks_no_sms_language(
    client, modic, clinician, consented
):
    SmsQuestionText.objects.filter(language__trial=modic).delete()
    SmsLanguage.objects.filter(trial=modic).delete()
    client.force_login(clinician)
    response = client.get(url("participant_baseline", modic, consented.pk))
    assert "sms_language" not in response.context["form"].fields
    post = {k: v for k, v in BASELINE_POST.items() if k != "sms_language"}
    response = client.post(url("participant_baseline", modic, consented.pk), post)
    assertRedirects(response, url("participant_review", modic, consented.pk))
    assert Participant.objects.get(pk=consented.pk).sms_language == ""


def test_the_baseline_page_saves_everything_and_the_review_shows_the_scores(
    client, modic, clinician, consented
):
    client.force_login(clinician)
    post = {**BASELINE_POST, "sms_language": "en", "rmdq-not_done": "refused"}
    post = {k: v for k, v in post.items() if not k.startswith("rmdq-item_")}
    response = client.post(url("participant_baseline", modic, consented.pk), post)
    assertRedirects(response, url("participant_review", modic, consented.pk))
    participant = Participant.objects.get(pk=consented.pk)
    assert participant.sms_language == "en"
    assert participant.baseline == {"age": 45, "pain": 7}
    entries = entries_of(participant)
    assert entries["rmdq"].not_done == "refused"
    assert entries["eq5d"].eq5d_profile == "11221"

    response = client.get(url("participant_review", modic, consented.pk))
    listed = response.context["baseline_rows"]
    rows = dict(listed)
    assert rows["Roland–Morris disability (0–23)"] == "Not done: refused"
    # The pain score is the pain variable: one row, the instrument's.
    assert [label for label, _ in listed].count("Current low back pain (0–10)") == 1
    assert rows["EQ-5D-3L"].startswith("health state 11221, index ")
    assert rows["EQ-5D-3L"].endswith("; VAS 60")
    assertContains(response, "Not done: refused")
    assertContains(response, '<dd class="col-sm-9" id="sms-language">English</dd>', html=True)


def test_reopening_the_baseline_page_shows_the_saved_values(modic, client, clinician, consented):
    record(
        consented,
        clinician,
        sms_language="en",
        entries=factories.baseline_entries(modic, pain=5, not_done={"rmdq": "too_ill"}),
    )
    client.force_login(clinician)
    response = client.get(url("participant_baseline", modic, consented.pk))
    form = response.context["form"]
    assert form["sms_language"].value() == "en"
    assert form["age"].value() == 45
    forms = {f.instrument.code: f for f in response.context["instrument_forms"]}
    assert forms["pain"]["value"].value() == 5
    assert forms["rmdq"]["not_done"].value() == "too_ill"
    assert forms["eq5d"]["vas"].value() == 60
    assert forms["eq5d"]["PD"].value() == 2


def test_a_pain_below_eligibility_is_shown_on_the_pain_form_and_nothing_is_saved(
    client, modic, clinician, consented
):
    before = snapshot(consented)
    client.force_login(clinician)
    response = client.post(
        url("participant_baseline", modic, consented.pk), {**BASELINE_POST, "pain-value": "2"}
    )
    assert response.status_code == 200
    assert page_errors(response) == {
        "pain-value": [
            "Current low back pain (0–10) 2 is below the eligibility criterion (at least 4): "
            "this patient is not eligible."
        ]
    }
    assertContains(response, "Nothing was saved.")
    assert snapshot(consented) == before


def test_several_bad_fields_are_all_shown_and_nothing_is_saved(client, modic, clinician, consented):
    before = snapshot(consented)
    client.force_login(clinician)
    post = {**BASELINE_POST, "phone": "12345", "pain-value": "11", "eq5d-vas": "-1"}
    post["rmdq-not_done"] = "refused"  # and the items are still filled in
    response = client.post(url("participant_baseline", modic, consented.pk), post)
    assert response.status_code == 200
    assert set(page_errors(response)) == {"phone", "pain-value", "eq5d-vas", "rmdq-__all__"}
    assertNotContains(response, "Traceback")
    assert snapshot(consented) == before


def test_the_journey_through_the_pages_links_the_entries_at_randomization(
    client, modic, clinician, consented
):
    client.force_login(clinician)
    client.post(url("participant_baseline", modic, consented.pk), BASELINE_POST)
    response = client.post(url("participant_review", modic, consented.pk), {"confirm": "on"})
    assertRedirects(response, url("participant_allocation", modic, consented.pk))
    baseline = visit_of(consented, "baseline")
    assert {e.visit_id for e in entries_of(consented).values()} == {baseline.pk}
