"""Neutral arm codes are assigned when the arms are created or change (a service under the
trial row lock), never while a page is read; a read that finds an arm without a code refuses
blinded users rather than show them anything else."""

from __future__ import annotations

import random
from importlib import import_module

import pytest
from django.apps import apps as global_apps
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from participants.services import participant_randomize
from tests import factories
from trial import blinding
from trial.blind_codes import LETTERS, decide_blind_codes
from trial.devtools.demo import build_modic_trial
from trial.models import Arm, Trial


def stored(trial: Trial) -> dict[int, str]:
    return dict(Arm.objects.filter(trial=trial).values_list("pk", "blind_code"))


def add_arm(trial: Trial, code: str) -> Arm:
    return Arm.objects.create(trial=trial, code=code, name=code.title(), order=9)


# --- The decision -------------------------------------------------------------------------


@given(
    ids=st.lists(st.integers(1, 10_000), min_size=1, max_size=26, unique=True),
    seed=st.integers(),
)
def test_a_redraw_gives_the_arms_a_permutation_of_the_first_letters(ids, seed):
    decided = decide_blind_codes(ids, {}, redraw=True, rng=random.Random(seed))
    assert set(decided) == set(ids)
    assert sorted(decided.values()) == list(LETTERS[: len(ids)])


@given(
    codes=st.lists(st.sampled_from([""] + list(LETTERS[:8])), min_size=1, max_size=8),
    seed=st.integers(),
)
def test_without_a_redraw_codes_are_kept_and_the_missing_get_unused_letters(codes, seed):
    current = {}
    for pk, code in enumerate(codes, 1):
        current[pk] = code if code and code not in current.values() else ""
    decided = decide_blind_codes(list(current), current, redraw=False, rng=random.Random(seed))
    assert all(decided[pk] == code for pk, code in current.items() if code)
    assert len(set(decided.values())) == len(current)
    assert all(decided.values())


# --- When codes are assigned ----------------------------------------------------------------


def test_codes_are_assigned_when_the_arms_are_created(modic):
    assert sorted(stored(modic).values()) == ["A", "B"]


def test_an_arm_added_before_randomization_redraws_every_code(db):
    """The arm created last does not always get the last letter (which would tell)."""
    seen = set()
    for n in range(40):
        trial = build_modic_trial(code=f"T{n}")
        third = add_arm(trial, "third")
        assert sorted(stored(trial).values()) == ["A", "B", "C"]
        seen.add(stored(trial)[third.pk])
        if len(seen) == 3:
            break
    assert seen == {"A", "B", "C"}  # p of failing by chance: below 3 · (2/3) ** 39


def test_an_arm_deleted_before_randomization_leaves_the_first_letters(modic):
    third = add_arm(modic, "third")
    third.delete()
    assert sorted(stored(modic).values()) == ["A", "B"]


def test_codes_never_change_after_the_first_randomization(modic, site1, clinician):
    before = stored(modic)
    participant = factories.enrolled_participant(modic, site1, clinician)
    participant_randomize(participant=participant, by=clinician)
    assert blinding.trial_assign_blind_codes(trial_id=modic.pk) == before
    assert stored(modic) == before


def test_an_arm_without_a_code_after_randomization_gets_an_unused_letter(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    participant_randomize(participant=participant, by=clinician)
    kept, blank = Arm.objects.filter(trial=modic)
    Arm.objects.filter(pk=blank.pk).update(blind_code="")
    codes = blinding.trial_assign_blind_codes(trial_id=modic.pk)
    assert codes[kept.pk] == kept.blind_code
    assert sorted(codes.values()) == ["A", "B"]


def test_the_migration_gives_existing_trials_codes_and_keeps_those_they_have(db):
    first, second = build_modic_trial(code="ONE"), build_modic_trial(code="TWO")
    Arm.objects.filter(trial=first).update(blind_code="")
    kept = stored(second)
    migration = import_module("trial.migrations.0011_blind_codes_assigned")
    migration.assign_missing_blind_codes(global_apps, None)
    assert sorted(stored(first).values()) == ["A", "B"]
    assert stored(second) == kept


# --- Reading never writes -------------------------------------------------------------------


def test_reading_the_codes_writes_nothing(modic, django_assert_num_queries):
    with django_assert_num_queries(1):
        codes = blinding.blind_codes(modic)
    assert codes == stored(modic)


def test_a_read_that_finds_an_arm_without_a_code_refuses_and_writes_nothing(
    modic, statistician, manager
):
    Arm.objects.filter(trial=modic).update(blind_code="")
    with pytest.raises(blinding.BlindCodesMissing):
        blinding.arm_labels(statistician, modic)
    assert set(stored(modic).values()) == {""}
    # Whoever may see the names still does.
    assert sorted(blinding.arm_labels(manager, modic).values()) == ["Exercise", "Rest"]


@pytest.mark.parametrize("page", ["balance", "trial_results"])
def test_a_blinded_page_without_codes_says_why_and_shows_no_arm(client, modic, statistician, page):
    Arm.objects.filter(trial=modic).update(blind_code="")
    client.force_login(statistician)
    response = client.get(reverse(page, args=[modic.code]))
    assert response.status_code == 403
    html = response.content.decode()
    assert "neutral codes" in html
    assert "Exercise" not in html and ">Rest<" not in html
    assert set(stored(modic).values()) == {""}


def test_saving_the_trial_in_the_admin_assigns_missing_codes(client, modic, manager):
    from tests.html_forms import parse

    Arm.objects.filter(trial=modic).update(blind_code="")
    client.force_login(manager)
    url = reverse("admin:trial_trial_change", args=[modic.pk])
    (form,) = [f for f in parse(client.get(url).content.decode(), url).forms if f.action == url]
    response = client.post(url, form.data())
    assert response.status_code == 302
    assert sorted(stored(modic).values()) == ["A", "B"]
