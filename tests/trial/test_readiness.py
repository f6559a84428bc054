"""A trial recruits only with a complete configuration (issue 15, item 9): the rule is one
pure function (trial.readiness.missing_for_recruiting), which the admin's trial and factor
pages use on what the page is about to save."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from tests.trial.test_admin import BrowserForm
from trial import readiness
from trial.models import ConsentDocument, MinimizationFactor, Trial
from trial.readiness import Missing, Setup, missing_for_recruiting

COMPLETE = Setup(
    sites=1, arms=2, follow_up_visits=1, active_consent_documents=1, criteria=1,
    factors=(("Sex", 2),),
)  # fmt: skip


# --- The rule ---------------------------------------------------------------------------------


def test_an_empty_trial_misses_every_part_in_the_order_of_setting_up():
    empty = Setup(sites=0, arms=0, follow_up_visits=0, active_consent_documents=0, criteria=0)
    assert missing_for_recruiting(empty) == [
        Missing(readiness.SITE),
        Missing(readiness.ARMS, have=0),
        Missing(readiness.FOLLOW_UP_VISIT),
        Missing(readiness.CONSENT_DOCUMENT),
        Missing(readiness.CRITERIA),
    ]


def test_a_complete_configuration_misses_nothing():
    assert missing_for_recruiting(COMPLETE) == []


def test_each_factor_needs_two_levels_and_is_named_when_it_has_fewer():
    setup = Setup(**{**COMPLETE.__dict__, "factors": (("Sex", 2), ("Age", 1), ("Site", 0))})
    assert missing_for_recruiting(setup) == [
        Missing(readiness.FACTOR_LEVELS, subject="Age", have=1),
        Missing(readiness.FACTOR_LEVELS, subject="Site", have=0),
    ]


@given(
    sites=st.integers(0, 3), arms=st.integers(0, 4), visits=st.integers(0, 3),
    documents=st.integers(0, 2), criteria=st.integers(0, 9),
    levels=st.lists(st.integers(0, 4), max_size=4),
)  # fmt: skip
def test_a_part_is_missing_exactly_when_its_count_is_below_the_minimum(
    sites, arms, visits, documents, criteria, levels
):
    setup = Setup(
        sites=sites, arms=arms, follow_up_visits=visits, active_consent_documents=documents,
        criteria=criteria, factors=tuple((f"F{i}", n) for i, n in enumerate(levels)),
    )  # fmt: skip
    missing = {(m.what, m.subject) for m in missing_for_recruiting(setup)}
    assert ((readiness.SITE, "") in missing) == (sites < 1)
    assert ((readiness.ARMS, "") in missing) == (arms < 2)
    assert ((readiness.FOLLOW_UP_VISIT, "") in missing) == (visits < 1)
    assert ((readiness.CONSENT_DOCUMENT, "") in missing) == (documents < 1)
    assert ((readiness.CRITERIA, "") in missing) == (criteria < 1)
    for i, n in enumerate(levels):
        assert ((readiness.FACTOR_LEVELS, f"F{i}") in missing) == (n < 2)


def test_the_rule_imports_nothing_from_django():
    tree = ast.parse(Path(readiness.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.split(".")[0] == "django" for name in imported)


# --- The admin's trial page --------------------------------------------------------------------


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def new_trial_form(client, **fields) -> dict[str, list[str]]:
    """The add page's form as a browser submits it, with `fields` set."""
    data = BrowserForm.of(client.get(reverse("admin:trial_trial_add")), "trial_form")
    data.update(
        {
            "code": ["KNEE"],
            "name": ["Knee trial"],
            "target_sample_size": ["60"],
            "recruitment_start": ["2024-01-01"],
            **fields,
        }
    )
    return data


def test_an_empty_trial_cannot_be_set_to_recruiting_and_the_message_lists_what_is_missing(
    as_manager, modic
):
    response = as_manager.post(
        reverse("admin:trial_trial_add"), new_trial_form(as_manager, status=["recruiting"])
    )
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["status"]
    assert message == (
        "A trial can recruit only once it is set up. Missing: a site; at least two arms "
        "(0 so far); a follow-up visit in the visit schedule (one not done at "
        "randomization); an active consent document; eligibility criteria."
    )
    assert not Trial.objects.filter(code="KNEE").exists()


def test_an_empty_trial_can_be_saved_in_set_up(as_manager, modic):
    response = as_manager.post(
        reverse("admin:trial_trial_add"), new_trial_form(as_manager, status=["setup"])
    )
    assert response.status_code == 302
    assert Trial.objects.get(code="KNEE").status == Trial.Status.SETUP


def test_the_missing_parts_added_on_the_same_page_let_the_trial_recruit_in_one_save(
    as_manager, modic
):
    rows = {
        "sites": [{"code": "01", "name": "Knee clinic"}],
        "arms": [
            {"order": "1", "code": "brace", "name": "Brace", "allocation_ratio": "1"},
            {"order": "2", "code": "physio", "name": "Physiotherapy", "allocation_ratio": "1"},
        ],
        "criteria": [{"kind": "inclusion", "order": "1", "question": "Knee pain?",
                      "ineligible_answer": ""}],
        "visit_definitions": [{"order": "1", "code": "m3", "label": "3 months",
                               "offset_days": "90", "window_before": "7",
                               "window_after": "14"}],
        "consent_documents": [{"version": "1.0", "effective_from": "2024-01-01",
                               "active": "on"}],
    }  # fmt: skip
    data = new_trial_form(as_manager, status=["recruiting"])
    for prefix, forms in rows.items():
        data[f"{prefix}-TOTAL_FORMS"] = [str(len(forms))]
        for i, values in enumerate(forms):
            for name, value in values.items():
                data[f"{prefix}-{i}-{name}"] = [value]
    response = as_manager.post(reverse("admin:trial_trial_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    trial = Trial.objects.get(code="KNEE")
    assert trial.status == Trial.Status.RECRUITING
    assert (trial.sites.count(), trial.arms.count()) == (1, 2)


def test_a_recruiting_trial_cannot_lose_its_only_active_consent_document(as_manager, modic):
    page = as_manager.get(reverse("admin:trial_trial_change", args=[modic.pk]))
    data = BrowserForm.of(page, "trial_form")
    data.pop("consent_documents-0-active", None)  # untick "active"
    response = as_manager.post(reverse("admin:trial_trial_change", args=[modic.pk]), data)
    assert response.status_code == 200
    assert "an active consent document" in response.context["adminform"].form.errors["status"][0]
    assert ConsentDocument.objects.get(trial=modic).active


def test_a_recruiting_trial_cannot_lose_its_last_site(as_manager, modic):
    page = as_manager.get(reverse("admin:trial_trial_change", args=[modic.pk]))
    data = BrowserForm.of(page, "trial_form")
    data["sites-0-DELETE"] = ["on"]
    data["sites-1-DELETE"] = ["on"]
    response = as_manager.post(reverse("admin:trial_trial_change", args=[modic.pk]), data)
    assert response.status_code == 200
    assert "a site" in response.context["adminform"].form.errors["status"][0]
    assert modic.sites.count() == 2


# --- The factor page ---------------------------------------------------------------------------


def factor_post(trial, levels: int) -> dict:
    data = {
        "trial": trial.pk, "code": "smoker", "name": "Smoker", "kind": "choice",
        "weight": "1", "order": "5", "levels-TOTAL_FORMS": str(levels),
        "levels-INITIAL_FORMS": "0",
    }  # fmt: skip
    for i in range(levels):
        data.update({f"levels-{i}-code": f"l{i}", f"levels-{i}-label": f"Level {i}",
                     f"levels-{i}-order": str(i)})  # fmt: skip
    return data


def test_a_factor_of_a_recruiting_trial_needs_two_levels(as_manager, modic):
    response = as_manager.post(reverse("admin:trial_minimizationfactor_add"), factor_post(modic, 1))
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [
        "MOD is recruiting, so each minimization factor needs at least two levels "
        "(this one would have 1)."
    ]
    assert not MinimizationFactor.objects.filter(code="smoker").exists()
    response = as_manager.post(reverse("admin:trial_minimizationfactor_add"), factor_post(modic, 2))
    assert response.status_code == 302
    assert MinimizationFactor.objects.get(code="smoker").levels.count() == 2


def test_a_factor_of_a_trial_in_set_up_may_be_saved_before_its_levels(as_manager, modic):
    Trial.objects.filter(pk=modic.pk).update(status=Trial.Status.SETUP)
    response = as_manager.post(reverse("admin:trial_minimizationfactor_add"), factor_post(modic, 0))
    assert response.status_code == 302
