"""The admin's inline formsets refuse tampered form counts and rows that duplicate another
row of the same trial, next to the form, saving nothing (trial.admin_base)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from outcomes.sms.models import SmsLanguage, SmsQuestion
from tests import html_forms
from trial import admin_base
from trial.models import Trial

OUR_APPS = {"trial", "participants", "instruments", "sms", "results"}


@pytest.fixture
def manager_client(manager):
    client = Client(raise_request_exception=False)
    client.force_login(manager)
    return client


def snapshot() -> dict[str, list[dict]]:
    """Every row of every model of our apps, as plain values."""
    return {
        model._meta.label: [model_to_dict(obj) for obj in model.objects.order_by("pk")]
        for model in apps.get_models()
        if model._meta.app_label in OUR_APPS
    }


def change_pages(trial: Trial) -> dict[str, str]:
    return {
        "trial": reverse("admin:trial_trial_change", args=[trial.pk]),
        "sms language": reverse(
            "admin:sms_smslanguage_change", args=[SmsLanguage.objects.first().pk]
        ),
        "sms question": reverse(
            "admin:sms_smsquestion_change", args=[SmsQuestion.objects.first().pk]
        ),
    }


def the_change_form(client, url: str) -> dict[str, list[str]]:
    page = html_forms.parse(client.get(url).content.decode(), url)
    (form,) = [f for f in page.forms if f.method == "post" and f.action == url]
    return form.data()


@pytest.mark.parametrize("page", ["trial", "sms language", "sms question"])
@pytest.mark.parametrize("count", ["INITIAL_FORMS", "TOTAL_FORMS"])
@pytest.mark.parametrize("value", ["-1", "-99999999999"])
def test_a_negative_form_count_in_an_inline_saves_nothing_and_says_why(
    manager_client, modic, page, count, value
):
    url = change_pages(modic)[page]
    data = the_change_form(manager_client, url)
    counts = [name for name in data if name.endswith(f"-{count}")]
    assert counts, "the page has inline formsets"
    assert manager_client.post(url, data).status_code == 302, "the form as shown is saved"
    before = snapshot()
    for name in counts:
        tampered = {**data, name: [value]}
        response = manager_client.post(url, tampered)
        assert response.status_code == 200, (name, response.status_code)
        assert "hidden form counts" in response.content.decode(), name
        assert snapshot() == before, name


def test_a_new_inline_row_duplicating_another_rows_code_is_refused_next_to_it(
    manager_client, modic
):
    url = change_pages(modic)["trial"]
    data = the_change_form(manager_client, url)
    assert manager_client.post(url, data).status_code == 302, "the form as shown is saved"
    before = snapshot()
    total = int(data["sites-TOTAL_FORMS"][0])
    data.update(
        {
            "sites-TOTAL_FORMS": [str(total + 1)],
            f"sites-{total}-code": ["02"],
            f"sites-{total}-name": ["A second site 02"],
        }
    )
    response = manager_client.post(url, data)
    assert response.status_code == 200
    assert "Site with this Trial and Code already exists" in response.content.decode()
    assert snapshot() == before


def test_every_admin_of_ours_uses_the_checked_change_list_and_inline_formsets():
    """Each ModelAdmin of our apps refuses impossible filters with 400 (InputCheckedAdmin)
    and ids that cannot be ids in its history views with 404 (CheckedHistoryAdmin); each of
    its inlines checks the form counts and the row's constraints."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        assert isinstance(model_admin, admin_base.InputCheckedAdmin), model
        if isinstance(model_admin, SimpleHistoryAdmin):
            assert isinstance(model_admin, admin_base.CheckedHistoryAdmin), model
        for inline in model_admin.inlines:
            assert issubclass(inline.formset, admin_base.CheckedInlineFormSet), inline
            assert issubclass(inline.form, admin_base.InlineModelForm), inline


@pytest.fixture
def superuser_client(db):
    from tests import factories

    client = Client(raise_request_exception=False)
    client.force_login(factories.UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def test_an_earlier_version_in_the_history_is_shown_but_never_restored(superuser_client, modic):
    # Restoring wrote the record past its service and checks: on a locked configuration
    # it was a server error, elsewhere a change without a reason.
    factor = modic.factors.first()
    version = factor.history.order_by("history_id").first()
    url = reverse("admin:trial_minimizationfactor_simple_history", args=[factor.pk, version.pk])
    assert superuser_client.get(url).status_code == 200
    before = snapshot()
    data = {k: "" if v is None else v for k, v in model_to_dict(factor).items()}
    response = superuser_client.post(url, {**data, "name": "Restored"})
    assert response.status_code == 403
    assert snapshot() == before


def test_an_id_no_key_column_can_hold_is_an_invalid_choice_not_a_server_error(
    manager_client, modic, coordinator
):
    from trial.models import Membership

    membership = Membership.objects.get(user=coordinator, trial=modic)
    url = reverse("trial_team_member", args=[modic.code, membership.pk])
    before = snapshot()
    response = manager_client.post(url, {"roles": ["coordinator"], "sites": ["9" * 40]})
    assert response.status_code == 200
    assert "sites" in response.context["form"].errors
    assert snapshot() == before


@pytest.mark.parametrize(
    "params, answers",
    [
        ({"attempt_time__year": "99999999999"}, {400}),
        # Midnight of year 1 in the server's zone is before year 1 in UTC: SQLite's
        # conversion overflows (400); PostgreSQL holds it and lists nothing (200).
        ({"logout_time__lt": "0001-01-01"}, {200, 400}),
    ],
)
def test_other_apps_admin_lists_answer_a_bad_filter_with_400(superuser_client, params, answers):
    # django-axes' admins are registered by axes; our admin site gives them the checks.
    response = superuser_client.get(reverse("admin:axes_accesslog_changelist"), params)
    assert response.status_code in answers
