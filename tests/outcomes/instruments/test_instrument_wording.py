"""The questionnaires show their own wording on the entry pages, translatably: each
Roland–Morris item's statement instead of "Item n", the EQ-5D-3L level statements, the
global assessment's question and answers (outcomes.instruments.scoring holds the wording,
outcomes.instruments.forms shows it)."""

from __future__ import annotations

import re

from django.utils import translation

from outcomes.instruments import scoring
from outcomes.instruments.forms import Eq5dForm, GlobalForm, RmdqForm
from tests import factories
from tests.outcomes.instruments import test_entry
from tests.outcomes.instruments.test_entry import fieldset, outcomes_url
from tests.participants.test_views import url
from tests.translations import catalogue

# A participant randomized 80 days ago, and their 10-week visit (tests/outcomes/instruments/test_entry.py).
active = test_entry.active
w10 = test_entry.w10

ITEM_1 = "I stay at home most of the time because of my back."


def form(modic, cls, code):
    return cls(instrument=modic.instruments.get(code=code), entry=None)


def test_the_roland_morris_wording_has_one_distinct_statement_per_item():
    wording = scoring.RMDQ_ITEM_WORDING
    assert len(wording) == scoring.RMDQ_ITEMS == 23
    assert len(set(wording)) == 23
    assert wording[0] == ITEM_1
    assert all(re.fullmatch(r"[A-Z][^\n]+\.", item) for item in wording), wording


def test_each_roland_morris_item_is_labelled_with_its_number_and_wording(modic):
    labels = [str(form(modic, RmdqForm, "rmdq").fields[f"item_{n}"].label) for n in range(1, 24)]
    assert labels == [f"{n}. {item}" for n, item in enumerate(scoring.RMDQ_ITEM_WORDING, 1)]
    assert not [label for label in labels if label.startswith("Item ")]


def test_the_entry_page_shows_every_roland_morris_statement_as_its_radio_group_legend(
    client, modic, coordinator, w10
):
    client.force_login(coordinator)
    html = fieldset(client.get(outcomes_url(modic, w10)), "rmdq")
    for n, item in enumerate(scoring.RMDQ_ITEM_WORDING, 1):
        assert re.search(rf"<legend[^>]*>\s*{n}\. {re.escape(item)}\s*</legend>", html), item
    assert not re.search(r">\s*Item \d+\s*<", html)
    assert html.count('type="radio"') == 46


def test_the_baseline_form_shows_the_roland_morris_statements(client, modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician, baseline=False)
    client.force_login(clinician)
    response = client.get(url("participant_baseline", modic, participant.pk))
    html = fieldset(response, "rmdq")
    for item in scoring.RMDQ_ITEM_WORDING:
        assert item in html
    assert not re.search(r">\s*Item \d+\s*<", html)


def test_each_eq5d_level_is_labelled_with_its_number_and_name(modic):
    fields = form(modic, Eq5dForm, "eq5d").fields
    for dim in scoring.EQ5D_DIMENSIONS:
        labels = [str(label) for _level, label in fields[dim].choices]
        assert labels == [
            "1 – No problems",
            "2 – Some problems",
            "3 – Extreme problems",
        ]


def test_the_global_assessment_shows_its_question_and_seven_answers(modic):
    field = form(modic, GlobalForm, "global").fields["answer"]
    assert str(field.label) == "Compared with the start of the trial, the back pain is"
    assert [str(label) for _v, label in field.choices] == [
        "Much better", "Better", "Slightly better", "Unchanged",
        "Slightly worse", "Worse", "Much worse",
    ]  # fmt: skip


def test_the_questionnaire_wording_is_translated_when_a_catalogue_has_it(settings, tmp_path, modic):
    settings.LOCALE_PATHS = [
        catalogue(
            tmp_path,
            "da",
            {
                ITEM_1: "Jeg bliver hjemme det meste af tiden på grund af min ryg.",
                "Extreme problems": "Svære problemer",
                "Much better": "Meget bedre",
            },
        )
    ]
    with translation.override("da"):
        item = str(form(modic, RmdqForm, "rmdq").fields["item_1"].label)
        mobility = [str(label) for _l, label in form(modic, Eq5dForm, "eq5d").fields["MO"].choices]
        answers = [
            str(label) for _v, label in form(modic, GlobalForm, "global").fields["answer"].choices
        ]
    assert item == "1. Jeg bliver hjemme det meste af tiden på grund af min ryg."
    assert mobility[2] == "3 – Svære problemer"
    assert answers[0] == "Meget bedre"
