"""Instruments are configuration: which are due at which visit, scored by which rules."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from outcomes.instruments import scoring
from outcomes.instruments.models import EQ5DValueSet, Instrument


def test_the_demo_trial_measures_pain_disability_and_health_at_every_visit_and_change_at_follow_up(
    modic,
):
    due = {
        instrument.code: sorted(v.code for v in instrument.visits.all())
        for instrument in Instrument.objects.filter(trial=modic)
    }
    assert due == {
        "pain": ["baseline", "w10", "y1"],
        "rmdq": ["baseline", "w10", "y1"],
        "eq5d": ["baseline", "w10", "y1"],
        "global": ["w10", "y1"],
    }
    assert list(
        Instrument.objects.filter(trial=modic, primary=True).values_list("code", flat=True)
    ) == ["pain"]


def test_the_stored_uk_value_set_scores_the_published_anchor_states(modic):
    stored = EQ5DValueSet.objects.get(code="uk-tto-dolan-1997")
    value_set = scoring.EQ5DValueSet.from_dict(stored.code, stored.coefficients)
    assert scoring.eq5d_index("33333", value_set) == -0.594
    assert scoring.eq5d_index("11112", value_set) == 0.848
    assert "Dolan" in stored.citation


def test_an_incomplete_value_set_is_refused_with_a_message_on_its_coefficients(db):
    value_set = EQ5DValueSet(
        code="broken", name="Broken", citation="-", coefficients={"constant": 0.1, "n3": 0.2}
    )
    with pytest.raises(ValidationError) as err:
        value_set.full_clean()
    assert "coefficients" in err.value.message_dict


def test_only_eq5d_instruments_have_a_value_set_and_they_must(modic):
    uk = EQ5DValueSet.objects.get(code="uk-tto-dolan-1997")
    with pytest.raises(IntegrityError), transaction.atomic():
        Instrument.objects.create(trial=modic, code="x", name="X", kind="pain_nrs", value_set=uk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Instrument.objects.create(trial=modic, code="y", name="Y", kind="eq5d_3l")


def test_the_trial_manager_configures_instruments_in_the_admin(client, manager, modic):
    client.force_login(manager)
    instrument = Instrument.objects.get(trial=modic, code="rmdq")
    for path in (
        "/admin/instruments/instrument/",
        f"/admin/instruments/instrument/{instrument.pk}/change/",
        "/admin/instruments/eq5dvalueset/",
    ):
        assert client.get(path, secure=True).status_code == 200, path
