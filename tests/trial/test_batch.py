"""trial.batch: plain-SQL writes must store exactly what the ORM and simple-history store."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from outcomes.instruments.models import OutcomeEntry
from participants import services
from participants.models import Allocation, Participant, Visit
from tests import factories
from trial import batch
from trial.models import Arm


def tracked(model, row) -> dict:
    """The values a historical row copies (by column), read from `row`."""
    return {
        f.attname: getattr(row, f.attname)
        for f in model.history.model._meta.concrete_fields
        if not f.attname.startswith("history_")
    }


def assert_history_is_a_copy(obj, record, *, history_type, user, reason=None) -> None:
    model = type(obj)
    obj = model.objects.get(pk=obj.pk)
    assert tracked(model, record) == tracked(model, obj)
    assert record.history_type == history_type
    assert record.history_user == user
    assert record.history_change_reason == reason
    assert timezone.is_aware(record.history_date)


def test_a_history_copy_equals_simple_historys_own_record(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician)
    participant.full_name = "Ånne O'Brien; DROP"  # quoting and non-ASCII survive
    participant._history_user = clinician
    participant._change_reason = "typo"
    participant.save()
    theirs = participant.history.first()
    now = timezone.now()
    batch.execute(
        [
            batch.history_copy(
                Participant, where="id = %s", params=[participant.pk], history_type="~",
                user_id=clinician.pk, when=now, reason="typo",
            )
        ]
    )  # fmt: skip
    ours = participant.history.order_by("-history_id").first()
    assert ours.history_id != theirs.history_id
    assert tracked(Participant, ours) == tracked(Participant, theirs)
    for name in ("history_type", "history_user_id", "history_change_reason"):
        assert getattr(ours, name) == getattr(theirs, name)
    assert ours.history_date == now
    assert ours.prev_record == theirs  # simple-history orders it among its own rows


def test_an_insert_stores_what_the_orm_stores(modic, site1, clinician):
    arm = Arm.objects.filter(trial=modic).first()
    now = timezone.now().replace(microsecond=123456)
    people = [factories.enrolled_participant(modic, site1, clinician) for _ in range(2)]

    def allocation(participant, sequence):
        return Allocation(
            trial=modic, participant=participant, sequence=sequence, arm=arm,
            method="minimization", factor_levels={"sex": "f", "é": "ü"},
            counts_seen={"sex": {"A": 0, "B": 1}}, scores={"A": 0.5}, probabilities={"A": 0.8},
            draw=0.123456789012345, settings_used={"weights": {"sex": 1.0}, "n": None},
            algorithm_version="v", allocated_by=clinician, allocated_at=now,
        )  # fmt: skip

    orm = Allocation.objects.create(**_fields(allocation(people[0], 1)))
    ((pk,),) = batch.execute([batch.insert([allocation(people[1], 2)], returning_pk=True)])
    ours = Allocation.objects.get(pk=pk)
    theirs = Allocation.objects.get(pk=orm.pk)
    differ = {"id", "participant", "sequence"}
    for field in Allocation._meta.concrete_fields:
        if field.name not in differ:
            assert getattr(ours, field.attname) == getattr(theirs, field.attname), field.name


def _fields(obj) -> dict:
    return {
        f.attname: getattr(obj, f.attname)
        for f in type(obj)._meta.concrete_fields
        if not f.primary_key
    }


def test_a_multi_row_insert_writes_every_row_with_nulls_and_dates(enrolled, clinician):
    enrolled.randomized_on = dt.date(2026, 3, 1)
    definitions = list(enrolled.trial.visit_definitions.all())
    visits = services.visits_planned(
        participant=enrolled, by=clinician, definitions=definitions, now=timezone.now()
    )
    batch.execute([batch.insert(visits)])
    stored = {v.definition_id: v for v in Visit.objects.filter(participant=enrolled)}
    assert len(stored) == len(definitions) == len(visits)
    for visit in visits:
        row = stored[visit.definition_id]
        for name in ("target_date", "window_start", "window_end", "outcome", "in_window",
                     "attended_on", "recorded_by_id", "recorded_at"):  # fmt: skip
            assert getattr(row, name) == getattr(visit, name), name


def test_execute_runs_in_order_and_returns_the_last_statements_rows(modic):
    table = batch.quote(Arm._meta.db_table)
    rows = batch.execute(
        [
            (f"UPDATE {table} SET description = %s WHERE trial_id = %s", ["x%", modic.pk]),
            (f"SELECT description FROM {table} WHERE trial_id = %s", [modic.pk]),
        ]
    )
    assert {r[0] for r in rows} == {"x%"}
    assert batch.execute([(f"UPDATE {table} SET description = %s", [""])]) == []


def test_an_error_in_a_batch_stores_none_of_it(modic):
    from django.db import IntegrityError, transaction

    table = batch.quote(Arm._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic():
        batch.execute(
            [
                (f"UPDATE {table} SET description = %s WHERE trial_id = %s", ["gone", modic.pk]),
                (f"UPDATE {table} SET trial_id = NULL WHERE trial_id = %s", [modic.pk]),
            ]
        )
    assert not Arm.objects.filter(description="gone").exists()


def test_randomization_writes_history_rows_that_copy_the_rows(modic, site1, clinician):
    """The participant's change, the visits' creation and the baseline entries' link are
    each recorded as simple-history would record them."""
    participant = factories.enrolled_participant(modic, site1, clinician, instruments=True)
    assert OutcomeEntry.objects.filter(participant=participant).exists()
    services.participant_randomize(participant=participant, by=clinician)
    assert_history_is_a_copy(
        participant, participant.history.first(), history_type="~", user=clinician
    )
    visits = list(Visit.objects.filter(participant=participant))
    assert len(visits) == 3
    for visit in visits:
        (record,) = visit.history.all()
        # "": what simple-history's bulk_history_create recorded for them before
        assert_history_is_a_copy(visit, record, history_type="+", user=clinician, reason="")
    entries = list(OutcomeEntry.objects.filter(participant=participant))
    assert entries and all(e.visit_id for e in entries)
    for entry in entries:
        assert_history_is_a_copy(
            entry, entry.history.first(), history_type="~", user=clinician,
            reason="Linked to the baseline visit at randomization",
        )  # fmt: skip
    assert connection.vendor in ("sqlite", "postgresql")
