"""Links between two trials' rows are refused: by model and form validation with a message
next to the field, by the database's triggers (trial.same_trial) whatever the caller did,
and the admin's pickers list only the trial's own objects (issue 15, item 4)."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management.sql import emit_post_migrate_signal
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.sms.models import SmsLanguage, SmsQuestion, SmsQuestionText, SmsSchedule
from participants.models import Participant, ScreeningRecord
from tests import factories
from trial import roles
from trial.devtools.demo import build_modic_trial
from trial.models import BaselineVariable, Membership, MinimizationFactor, Site, VisitDefinition


@pytest.fixture
def knee(modic):
    """A second trial with the same configuration: every code exists in both."""
    return build_modic_trial(code="KNEE")


@pytest.fixture
def as_manager(client, manager, knee):
    """A manager of both trials: the one who could pick another trial's object (roles are
    per trial, so a manager of MOD alone is never offered KNEE's)."""
    factories.add_roles(manager, knee, [roles.TRIAL_MANAGER])
    client.force_login(manager)
    return client


def refused(write, message: str) -> None:
    """`write` fails in the database with `message` (the trigger's, on both backends)."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        write()
    assert message in str(caught.value)


def options(response, name: str) -> dict[str, str]:
    """The options of the <select name=...> on the page: {value: label}."""
    html = response.content.decode()
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name} on the page"
    return {
        value: label.strip()
        for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select[1])
        if value
    }


# --- The database refuses every cross-trial link -----------------------------------------------


def test_the_database_refuses_an_instrument_due_at_another_trials_visit(modic, knee):
    pain = Instrument.objects.get(trial=modic, code="pain")
    visit = VisitDefinition.objects.get(trial=knee, code="w10")
    refused(lambda: pain.visits.add(visit), "visit of another trial")
    assert not pain.visits.filter(trial=knee).exists()


def test_the_database_refuses_an_instrument_giving_another_trials_baseline_variable(modic, knee):
    rmdq = Instrument.objects.get(trial=modic, code="rmdq")
    age = BaselineVariable.objects.get(trial=knee, code="age")
    refused(
        lambda: Instrument.objects.filter(pk=rmdq.pk).update(baseline_variable=age),
        "baseline variable of another trial",
    )


def test_the_database_refuses_a_factor_derived_from_another_trials_variable(modic, knee):
    factor = MinimizationFactor.objects.get(trial=modic, code="age")
    age = BaselineVariable.objects.get(trial=knee, code="age")
    refused(
        lambda: MinimizationFactor.objects.filter(pk=factor.pk).update(variable=age),
        "baseline variable of another trial",
    )


def test_a_site_factors_level_cannot_stand_for_another_trials_site(modic, knee):
    factor = MinimizationFactor.objects.create(
        trial=modic, code="site", name="Site", kind=MinimizationFactor.Kind.SITE, order=9
    )
    level = factor.levels.get(site__code="01")  # made from MOD's sites
    theirs = knee.sites.get(code="02")
    refused(
        lambda: type(level).objects.filter(pk=level.pk).update(site=theirs),
        "site of another trial",
    )
    level.site = theirs
    with pytest.raises(ValidationError, match="belongs to trial KNEE"):
        level.full_clean()


def test_the_database_refuses_a_question_text_joining_two_trials(modic, knee):
    question = SmsQuestion.objects.get(trial=modic, code="bothersome")
    question.texts.all().delete()
    english = SmsLanguage.objects.get(trial=knee, code="en")
    refused(
        lambda: SmsQuestionText.objects.create(question=question, language=english, text="?"),
        "two trials",
    )


def test_the_database_refuses_a_membership_site_of_another_trial(modic, knee, coordinator):
    membership = Membership.objects.get(user=coordinator, trial=modic)
    refused(lambda: membership.sites.add(knee.sites.first()), "site of another trial")


def test_the_database_refuses_an_outcome_entry_of_another_trials_instrument(
    modic, knee, enrolled, clinician
):
    instrument = Instrument.objects.get(trial=knee, code="rmdq")
    refused(
        lambda: OutcomeEntry.objects.create(
            trial=modic, participant=enrolled, instrument=instrument, entered_by=clinician
        ),
        "instrument of another trial",
    )


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("site", "site of another trial"),
        ("consent_document", "consent document"),
        ("screening", "another trial's screening"),
    ],
)
def test_the_database_refuses_a_participant_linked_to_another_trial(
    modic, knee, enrolled, clinician, field, message
):
    other = {
        "site": lambda: knee.sites.first(),
        "consent_document": lambda: knee.consent_documents.get(),
        "screening": lambda: factories.screened(knee, knee.sites.first(), clinician),
    }[field]()
    refused(lambda: Participant.objects.filter(pk=enrolled.pk).update(**{field: other}), message)


def test_the_database_refuses_a_screening_at_another_trials_site(modic, knee, enrolled):
    refused(
        lambda: ScreeningRecord.objects.filter(pk=enrolled.screening_id).update(
            site=knee.sites.first()
        ),
        "site of another trial",
    )


def test_the_triggers_are_put_back_after_a_migrate_that_dropped_them(modic, knee):
    from outcomes import links
    from trial import same_trial

    rule = links.RULES[0]
    with connection.cursor() as cursor:
        for statement in same_trial.drop_sql(rule, connection.vendor):
            cursor.execute(statement)
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    pain = Instrument.objects.get(trial=modic, code="pain")
    refused(
        lambda: pain.visits.add(VisitDefinition.objects.get(trial=knee, code="y1")),
        "visit of another trial",
    )


# --- Model validation says so next to the field -------------------------------------------------


def test_model_validation_refuses_an_instrument_giving_another_trials_variable(modic, knee):
    rmdq = Instrument.objects.get(trial=modic, code="rmdq")
    rmdq.baseline_variable = BaselineVariable.objects.get(trial=knee, code="age")
    with pytest.raises(ValidationError) as caught:
        rmdq.full_clean()
    assert caught.value.message_dict["baseline_variable"] == [
        "“Age” belongs to trial KNEE, not to this trial."
    ]


def test_model_validation_refuses_a_factor_derived_from_another_trials_variable(modic, knee):
    factor = MinimizationFactor.objects.get(trial=modic, code="age")
    factor.variable = BaselineVariable.objects.get(trial=knee, code="age")
    with pytest.raises(ValidationError) as caught:
        factor.full_clean()
    assert "belongs to trial KNEE" in caught.value.message_dict["variable"][0]


def test_model_validation_refuses_a_question_text_joining_two_trials(modic, knee):
    text = SmsQuestionText(
        question=SmsQuestion.objects.get(trial=modic, code="bothersome"),
        language=SmsLanguage.objects.get(trial=knee, code="en"),
        text="How many days?",
    )
    with pytest.raises(ValidationError) as caught:
        text.full_clean(validate_unique=False)
    assert "belongs to trial KNEE" in caught.value.message_dict["language"][0]


def test_model_validation_keeps_configuration_in_the_trial_it_was_made_in(modic, knee):
    for obj in (
        Instrument.objects.get(trial=modic, code="pain"),
        SmsQuestion.objects.get(trial=modic, code="bothersome"),
        SmsLanguage.objects.get(trial=modic, code="da"),
        MinimizationFactor.objects.get(trial=modic, code="sex"),
    ):
        obj.trial = knee
        with pytest.raises(ValidationError) as caught:
            obj.full_clean(validate_unique=False)
        assert "trial" in caught.value.message_dict, obj


def test_the_sms_schedule_needs_a_language_of_its_own_trial(modic):
    schedule = SmsSchedule.objects.get(trial=modic)
    schedule.default_language = "fr"
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    assert "no SMS language “fr”" in caught.value.message_dict["default_language"][0]


# --- The admin: the journey, and pickers of the trial's own objects -----------------------


def test_an_instrument_of_one_trial_cannot_be_made_due_at_another_trials_visit(
    as_manager, modic, knee, enrolled, clinician
):
    """The audit's journey: Instruments → Add, trial KNEE, visit "10 weeks" of MOD."""
    mod_w10 = VisitDefinition.objects.get(trial=modic, code="w10")
    response = as_manager.post(
        reverse("admin:instruments_instrument_add"),
        {"trial": knee.pk, "code": "extra", "name": "Extra pain", "kind": "pain_nrs",
         "visits": [mod_w10.pk], "order": "9"},
    )  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["visits"] == ["“10 weeks” belongs to trial MOD, not to this trial."]
    assert not Instrument.objects.filter(code="extra").exists()
    # MOD's 10-week visit still asks for MOD's instruments only.
    due = Instrument.objects.filter(visits=mod_w10).values_list("trial__code", flat=True)
    assert set(due) == {"MOD"}


def test_on_the_instrument_add_page_every_visit_and_variable_shows_its_trial(
    as_manager, modic, knee
):
    response = as_manager.get(reverse("admin:instruments_instrument_add"))
    visits = options(response, "visits")
    w10 = {
        v.pk: v.trial.code
        for v in VisitDefinition.objects.filter(code="w10").select_related("trial")
    }
    for pk, code in w10.items():
        assert visits[str(pk)] == f"{code} · 10 weeks"
    assert set(options(response, "baseline_variable").values()) >= {"MOD · Age", "KNEE · Age"}


def test_on_the_instrument_change_page_the_pickers_list_the_trials_own_objects(
    as_manager, modic, knee
):
    pain = Instrument.objects.get(trial=modic, code="pain")
    response = as_manager.get(reverse("admin:instruments_instrument_change", args=[pain.pk]))
    assert response.status_code == 200
    own_visits = set(VisitDefinition.objects.filter(trial=modic).values_list("pk", flat=True))
    own_variables = set(BaselineVariable.objects.filter(trial=modic).values_list("pk", flat=True))
    assert {int(v) for v in options(response, "visits")} == own_visits
    assert {int(v) for v in options(response, "baseline_variable")} == own_variables
    assert 'name="trial"' not in response.content.decode()  # fixed once created


def test_a_changed_instrument_cannot_take_another_trials_visit(as_manager, modic, knee):
    pain = Instrument.objects.get(trial=modic, code="pain")
    knee_w10 = VisitDefinition.objects.get(trial=knee, code="w10")
    response = as_manager.post(
        reverse("admin:instruments_instrument_change", args=[pain.pk]),
        {"code": "pain", "name": pain.name, "kind": "pain_nrs", "primary": "on",
         "visits": [knee_w10.pk], "order": "1", "trial": knee.pk},
    )  # fmt: skip
    assert response.status_code == 200
    assert "visits" in response.context["adminform"].form.errors
    pain.refresh_from_db()
    assert pain.trial == modic
    assert not pain.visits.filter(trial=knee).exists()


def test_a_factor_cannot_be_derived_from_another_trials_variable_in_the_admin(
    as_manager, modic, knee
):
    response = as_manager.post(
        reverse("admin:trial_minimizationfactor_add"),
        {"trial": modic.pk, "code": "knee_age", "name": "Age (KNEE)", "kind": "derived",
         "variable": BaselineVariable.objects.get(trial=knee, code="age").pk, "weight": "1",
         "order": "5", "levels-TOTAL_FORMS": "0", "levels-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "belongs to trial KNEE" in response.context["adminform"].form.errors["variable"][0]
    assert not MinimizationFactor.objects.filter(code="knee_age").exists()
    factor = MinimizationFactor.objects.get(trial=modic, code="age")
    page = as_manager.get(reverse("admin:trial_minimizationfactor_change", args=[factor.pk]))
    own = set(BaselineVariable.objects.filter(trial=modic).values_list("pk", flat=True))
    assert {int(v) for v in options(page, "variable")} == own


@pytest.fixture
def as_superuser(client, db):
    """The membership admin is for superusers only (trial managers use the team page)."""
    client.force_login(factories.UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def test_a_membership_cannot_include_another_trials_site_in_the_admin(as_superuser, modic, knee):
    as_manager = as_superuser
    user = factories.UserFactory(username="newcomer")
    response = as_manager.post(
        reverse("admin:trial_membership_add"),
        {"user": user.pk, "trial": modic.pk, "sites": [knee.sites.get(code="01").pk]},
    )
    assert response.status_code == 200
    assert "belongs to trial KNEE" in response.context["adminform"].form.errors["sites"][0]
    assert not Membership.objects.filter(user=user).exists()
    add_page = as_manager.get(reverse("admin:trial_membership_add"))
    assert "KNEE · 01 " in " ".join(options(add_page, "sites").values())


def test_on_a_membership_change_page_only_the_trials_sites_are_listed(
    as_superuser, modic, knee, coordinator
):
    as_manager = as_superuser
    membership = Membership.objects.get(user=coordinator, trial=modic)
    page = as_manager.get(reverse("admin:trial_membership_change", args=[membership.pk]))
    own = set(Site.objects.filter(trial=modic).values_list("pk", flat=True))
    assert {int(v) for v in options(page, "sites")} == own


def test_question_texts_pick_only_the_trials_own_questions_and_languages(as_manager, modic, knee):
    language = SmsLanguage.objects.get(trial=modic, code="en")
    page = as_manager.get(reverse("admin:sms_smslanguage_change", args=[language.pk]))
    own = set(SmsQuestion.objects.filter(trial=modic).values_list("pk", flat=True))
    assert {int(v) for v in options(page, "texts-0-question")} == own

    # A new question of MOD with a text in KNEE's English: refused, nothing saved.
    response = as_manager.post(
        reverse("admin:sms_smsquestion_add"),
        {"trial": modic.pk, "code": "sleep", "label": "Nights of poor sleep", "order": "3",
         "min_value": "0", "max_value": "7", "texts-TOTAL_FORMS": "1",
         "texts-INITIAL_FORMS": "0",
         "texts-0-language": SmsLanguage.objects.get(trial=knee, code="en").pk,
         "texts-0-text": "How many nights?"},
    )  # fmt: skip
    assert response.status_code == 200
    (formset,) = response.context["inline_admin_formsets"]
    assert "belongs to trial KNEE" in str(formset.formset.errors)
    assert not SmsQuestion.objects.filter(code="sleep").exists()
