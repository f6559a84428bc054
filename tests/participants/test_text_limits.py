"""Free text has a maximum length in every app: forms say so next to the field, and the
database refuses longer text (a CharField's length; a check constraint on a TextField's),
except the raw SMS text from the gateway, which is stored whatever its length. Change
reasons are kept whole in the history (simple-history's reason is a text column)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Length

from participants import services
from participants.models import ContactAttempt, StatusChange
from tests import factories
from tests.participants.test_followup import randomized, today
from tests.participants.test_views import consent_post, url

# Text the system writes itself (never typed by a user), and the raw SMS from the gateway,
# which must never be refused (outcomes.sms.tracking stores it whole).
NOT_TYPED = {
    ("sms", "inboundmessage", "body"),
    ("sms", "outboundmessage", "last_error"),
    ("results", "exportjob", "error"),
    # Derived from the bounded full name (participants.search), never typed.
    ("participants", "participant", "search_name"),
}


def _text_fields():
    for app in ("trial", "participants", "instruments", "sms", "results"):
        for model in apps.get_app_config(app).get_models():
            if model._meta.model_name.startswith("historical"):
                continue
            for field in model._meta.concrete_fields:
                if isinstance(field, models.TextField):
                    yield model, field


def _length_limit(model, field) -> int | None:
    """The limit a check constraint puts on the field's length, if any."""
    for constraint in model._meta.constraints:
        condition = getattr(constraint, "condition", None)
        lhs = getattr(condition, "lhs", None)
        if isinstance(lhs, Length) and lhs.source_expressions[0].name == field.name:
            return condition.rhs
    return None


def test_every_text_field_users_type_into_has_a_maximum_in_forms_and_the_database():
    checked = []
    for model, field in _text_fields():
        key = (model._meta.app_label, model._meta.model_name, field.name)
        if key in NOT_TYPED:
            assert _length_limit(model, field) is None, key
            continue
        assert field.max_length, f"{key}: no max_length for its form field"
        assert _length_limit(model, field) == field.max_length, f"{key}: no check constraint"
        checked.append(key)
    assert ("participants", "statuschange", "reason") in checked
    assert ("participants", "contactattempt", "note") in checked


def test_every_char_field_users_type_into_is_bounded():
    for app in ("trial", "participants", "instruments", "sms", "results"):
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.concrete_fields:
                if isinstance(field, models.CharField):
                    assert field.max_length, (model, field.name)


def test_the_database_refuses_a_note_or_reason_over_its_limit(modic, site1, clinician):
    participant = randomized(modic, site1, clinician)
    attempt = services.contact_attempt_log(
        participant=participant, method="phone", result="reached", by=clinician
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactAttempt.objects.filter(pk=attempt.pk).update(note="x" * 5001)
    ContactAttempt.objects.filter(pk=attempt.pk).update(note="x" * 5000)
    services.participant_status_change(
        participant=participant, to_status="lost", effective_on=today(modic), reason="Gone",
        by=clinician,
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        StatusChange.objects.filter(participant=participant).update(reason="y" * 1001)


FORM_LIMITS = [
    pytest.param("contact_log", {"method": "phone", "result": "reached"}, "note", 5000, id="note"),
    pytest.param(
        "participant_status",
        {"to_status": "lost", "effective_on": "TODAY"},
        "reason",
        1000,
        id="status reason",
    ),
    pytest.param(
        "visit_missed",
        # The 10-week window is still open: a miss before it closes is confirmed with a reason.
        {"confirm_early": "on", "early_reason": "Moved abroad"},
        "reason",
        300,
        id="missed reason",
    ),
]


@pytest.mark.parametrize(("page", "data", "field", "limit"), FORM_LIMITS)
def test_text_over_its_limit_is_refused_next_to_the_field_and_saves_nothing(
    client, modic, site1, clinician, page, data, field, limit
):
    participant = randomized(modic, site1, clinician)
    target = participant.visits.get(definition__code="w10").pk if page == "visit_missed" else None
    data = {k: today(modic).isoformat() if v == "TODAY" else v for k, v in data.items()}
    client.force_login(clinician)
    path = url(page, modic, target or participant.pk)
    before = (ContactAttempt.objects.count(), StatusChange.objects.count())

    response = client.post(path, {**data, field: "x" * (limit + 1)})

    assert response.status_code == 200
    assert f"at most {limit} characters" in response.context["form"].errors[field][0]
    assert (ContactAttempt.objects.count(), StatusChange.objects.count()) == before
    response = client.post(path, {**data, field: "x" * limit})
    assert response.status_code == 302


def test_a_declined_reason_over_its_limit_is_refused_next_to_the_field(
    client, modic, site1, clinician
):
    screening = factories.screened(modic, site1, clinician)
    client.force_login(clinician)
    data = {**consent_post(modic, consent_date=today(modic)), "decision": "declined"}
    response = client.post(
        url("screening_consent", modic, screening.pk), {**data, "declined_reason": "x" * 301}
    )
    assert response.status_code == 200
    assert "at most 300 characters" in response.context["form"].errors["declined_reason"][0]
    screening.refresh_from_db()
    assert screening.outcome == "eligible"


def test_a_long_change_reason_is_kept_whole_in_the_history(modic, site1, clinician, coordinator):
    """simple-history's change reason was a 100-character column: on PostgreSQL a longer
    reason (the forms allow 300 and more) failed the whole save."""
    participant = randomized(modic, site1, clinician)
    reason = "Reported by the participant's GP in a letter dated last week; " * 15
    reason = reason[:1000].strip()
    services.participant_status_change(
        participant=participant, to_status="deceased", effective_on=today(modic),
        reason=reason, by=coordinator,
    )  # fmt: skip
    latest = participant.history.order_by("-history_id").first()
    assert latest.history_change_reason.endswith(reason)


def test_an_sms_opt_out_reason_of_the_full_length_is_kept_in_the_history(
    modic, site1, clinician, coordinator
):
    from outcomes.sms import consent_sms

    participant = randomized(modic, site1, clinician)
    reason = "Phoned the site " + "r" * 284
    consent_sms.participant_sms_opt_out(participant=participant, by=coordinator, reason=reason)
    latest = participant.history.order_by("-history_id").first()
    assert latest.history_change_reason.endswith(reason)
    assert latest.sms_opted_out_at is not None


def test_the_history_change_reason_is_a_text_column_in_every_app():
    for app in ("trial", "participants", "instruments", "sms", "results"):
        for model in apps.get_app_config(app).get_models():
            fields = {f.name: f for f in model._meta.concrete_fields}
            if "history_change_reason" in fields:
                assert isinstance(fields["history_change_reason"], models.TextField), model


def test_services_refuse_an_early_reason_over_its_limit_and_save_nothing(modic, site1, clinician):
    # A command or task calls the service without the form: the field's message, not an
    # error from the database (PostgreSQL refuses the 301st character of the column).
    from django.core.exceptions import ValidationError

    from participants.models import EARLY_REASON_MAX

    participant = randomized(modic, site1, clinician)
    visit = participant.visits.get(definition__code="w10")
    with pytest.raises(ValidationError) as refused:
        services.visit_record_missed(
            visit=visit, reason="Moved", by=clinician, early_reason="x" * (EARLY_REASON_MAX + 1)
        )
    assert "early_reason" in refused.value.message_dict
    visit.refresh_from_db()
    assert (visit.outcome, visit.early_reason) == ("open", "")
    services.visit_record_missed(
        visit=visit, reason="Moved", by=clinician, early_reason="x" * EARLY_REASON_MAX
    )
