"""Services on the database: screening, consent, baseline, randomization."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from participants import minimization, services
from participants.models import Allocation, FactorLevelCount, Participant, ScreeningRecord
from tests import factories
from trial.models import Arm, ConfigurationLocked, FactorLevel, MinimizationFactor, Trial


def randomize(participant, by, seed=1):
    return services.participant_randomize(participant=participant, by=by, rng=random.Random(seed))


# --- Screening and consent -----------------------------------------------------------------


def test_ineligible_patient_is_logged_with_the_reason_and_nothing_else(modic, site1, clinician):
    answers = factories.eligible_answers(modic)
    pregnancy = modic.criteria.get(question="Pregnant?")
    answers[pregnancy.pk] = True
    record, _ = services.screening_record(
        trial=modic, site=site1, initials="ab", screened_on=dt.date(2026, 1, 5),
        answers=answers, by=clinician,
    )  # fmt: skip
    assert record.outcome == ScreeningRecord.Outcome.INELIGIBLE
    assert record.initials == "AB"
    assert record.ineligibility_reasons == ["Exclusion criterion applies: Pregnant? (answered yes)"]
    assert not Participant.objects.exists()
    with pytest.raises(ValidationError, match="already closed"):
        services.participant_enroll(
            screening=record, consent_date=dt.date(2026, 1, 5),
            consent_document=modic.consent_documents.get(), by=clinician,
        )  # fmt: skip


def test_screening_with_an_unanswered_question_is_refused(modic, site1, clinician):
    answers = factories.eligible_answers(modic)
    answers.popitem()
    with pytest.raises(ValidationError, match="Answer every"):
        services.screening_record(
            trial=modic, site=site1, initials="AB", screened_on=dt.date(2026, 1, 5),
            answers=answers, by=clinician,
        )  # fmt: skip
    assert not ScreeningRecord.objects.exists()


def test_screening_in_a_trial_that_is_not_recruiting_is_refused(modic, site1, clinician):
    Trial.objects.filter(pk=modic.pk).update(status=Trial.Status.CLOSED)
    modic.refresh_from_db()
    with pytest.raises(ValidationError, match="not recruiting"):
        factories.screened(modic, site1, clinician)


def test_screening_date_in_the_future_is_refused(modic, site1, clinician):
    tomorrow = services.trial_today(modic) + dt.timedelta(days=1)
    with pytest.raises(ValidationError) as err:
        services.screening_record(
            trial=modic, site=site1, initials="AB", screened_on=tomorrow,
            answers=factories.eligible_answers(modic), by=clinician,
        )  # fmt: skip
    assert "screened_on" in err.value.message_dict


def test_consent_before_screening_or_in_the_future_is_refused(modic, site1, clinician):
    screening = factories.screened(modic, site1, clinician, days_ago=3)
    document = modic.consent_documents.get()
    for bad in (screening.screened_on - dt.timedelta(days=1),
                services.trial_today(modic) + dt.timedelta(days=1)):  # fmt: skip
        with pytest.raises(ValidationError) as err:
            services.participant_enroll(
                screening=screening, consent_date=bad, consent_document=document, by=clinician
            )
        assert "consent_date" in err.value.message_dict
    assert not Participant.objects.exists()
    screening.refresh_from_db()
    assert screening.outcome == ScreeningRecord.Outcome.ELIGIBLE


def test_declining_closes_the_screening(modic, site1, clinician):
    screening = factories.screened(modic, site1, clinician)
    services.screening_decline(screening=screening, reason="No time", by=clinician)
    screening.refresh_from_db()
    assert screening.outcome == ScreeningRecord.Outcome.DECLINED
    assert screening.declined_reason == "No time"


def test_a_screening_can_be_enrolled_only_once(modic, site1, clinician):
    screening = factories.screened(modic, site1, clinician)
    kwargs = dict(
        screening=screening, consent_date=screening.screened_on,
        consent_document=modic.consent_documents.get(), by=clinician,
    )  # fmt: skip
    services.participant_enroll(**kwargs)
    with pytest.raises(ValidationError, match="already closed"):
        services.participant_enroll(**kwargs)
    assert Participant.objects.count() == 1


# --- Baseline ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "levels", "phone", "field", "message"),
    [
        ({"age": 65, "pain": 7}, {"modic": "type1", "sex": "male"}, "+4520123456", "age", "eligibility"),
        ({"age": 17, "pain": 7}, {"modic": "type1", "sex": "male"}, "+4520123456", "age", "eligibility"),
        ({"age": 45, "pain": 11}, {"modic": "type1", "sex": "male"}, "+4520123456", "pain", "between 0 and 10"),
        ({"age": 45, "pain": 3}, {"modic": "type1", "sex": "male"}, "+4520123456", "pain", "eligibility"),
        ({"age": None, "pain": 7}, {"modic": "type1", "sex": "male"}, "+4520123456", "age", "needed"),
        ({"age": 45, "pain": 7}, {"modic": None, "sex": "male"}, "+4520123456", "factor_modic", "Choose"),
        ({"age": 45, "pain": 7}, {"modic": "type9", "sex": "male"}, "+4520123456", "factor_modic", "not a level"),
        ({"age": 45, "pain": 7}, {"modic": "type1", "sex": "male"}, "20123456", "phone", "Start the number with +"),
        ({"age": 45, "pain": 7}, {"modic": "type1", "sex": "male"}, "+4521000000", "phone", "does not exist in the country"),
    ],
)  # fmt: skip
def test_bad_baseline_input_is_refused_on_its_field_and_nothing_is_saved(
    modic, site1, clinician, values, levels, phone, field, message
):
    participant = factories.enrolled_participant(modic, site1, clinician, baseline=False)
    with pytest.raises(ValidationError) as err:
        services.participant_record_baseline(
            participant=participant, full_name="X Y", phone=phone, values=values,
            chosen_levels=levels, by=clinician,
        )  # fmt: skip
    assert message in " ".join(err.value.message_dict[field])
    participant.refresh_from_db()
    assert participant.baseline == {} and participant.factor_levels == {}
    assert not participant.baseline_complete


def test_baseline_derives_factor_levels_from_cut_points(modic, site1, clinician):
    young_mild = factories.enrolled_participant(modic, site1, clinician, age=39, pain=6)
    old_severe = factories.enrolled_participant(modic, site1, clinician, age=40, pain=7)
    assert young_mild.factor_levels == {
        "modic": "type1",
        "sex": "female",
        "pain": "4-6",
        "age": "lt40",
    }
    assert old_severe.factor_levels["pain"] == "7-10" and old_severe.factor_levels["age"] == "ge40"


def test_baseline_cannot_change_after_randomization(enrolled, clinician):
    randomize(enrolled, clinician)
    with pytest.raises(ValidationError, match="after randomization"):
        services.participant_record_baseline(
            participant=enrolled, full_name="X", phone="+4520123456",
            values={"age": 30, "pain": 5}, chosen_levels={"modic": "type2", "sex": "male"},
            by=clinician,
        )  # fmt: skip


# --- Randomization -------------------------------------------------------------------------


def test_randomize_stores_an_allocation_with_everything_needed_to_replay_it(enrolled, clinician):
    allocation, created = randomize(enrolled, clinician)
    assert created
    assert allocation.sequence == 1
    assert allocation.participant.number == "MOD-01-0001"
    assert allocation.factor_levels == enrolled.factor_levels
    assert allocation.counts_seen == {
        f: {"rest": 0, "exercise": 0} for f in ("modic", "sex", "pain", "age")
    }
    assert allocation.method == "minimization"
    assert allocation.algorithm_version == minimization.ALGORITHM_VERSION
    assert allocation.settings_used["imbalance_measure"] == "range"
    assert allocation.settings_used["preferred_probability"] == "0.800"
    assert allocation.allocated_by == clinician
    # Replaying the stored draw through the stored probabilities gives the stored arm.
    arms = allocation.settings_used["arms"]
    assert (
        minimization.choose(arms, allocation.probabilities, allocation.draw) == allocation.arm.code
    )
    participant = Participant.objects.get(pk=enrolled.pk)
    assert participant.status == Participant.Status.ACTIVE
    assert participant.randomized_on == services.trial_today(enrolled.trial)


def test_randomize_twice_returns_the_first_allocation(enrolled, clinician):
    first, created_first = randomize(enrolled, clinician, seed=1)
    second, created_second = randomize(enrolled, clinician, seed=2)
    assert created_first and not created_second
    assert first.pk == second.pk
    assert Allocation.objects.count() == 1
    assert sum(FactorLevelCount.objects.values_list("count", flat=True)) == 4


def test_participant_numbers_are_per_site_and_sequences_per_trial(modic, site1, site2, clinician):
    numbers = []
    for site in (site1, site2, site1, site2, site1):
        participant = factories.enrolled_participant(modic, site, clinician)
        allocation, _ = randomize(participant, clinician)
        numbers.append((allocation.sequence, allocation.participant.number))
    assert numbers == [
        (1, "MOD-01-0001"), (2, "MOD-02-0001"), (3, "MOD-01-0002"),
        (4, "MOD-02-0002"), (5, "MOD-01-0003"),
    ]  # fmt: skip


def test_randomize_refuses_when_not_recruiting_and_stores_nothing(enrolled, clinician):
    Trial.objects.filter(pk=enrolled.trial_id).update(status=Trial.Status.CLOSED)
    with pytest.raises(ValidationError, match="not recruiting"):
        randomize(enrolled, clinician)
    assert not Allocation.objects.exists()
    enrolled.refresh_from_db()
    assert enrolled.number is None


def test_randomize_refuses_once_the_target_is_reached(modic, site1, clinician):
    first = factories.enrolled_participant(modic, site1, clinician)
    randomize(first, clinician)
    Trial.objects.filter(pk=modic.pk).update(target_sample_size=1)
    second = factories.enrolled_participant(modic, site1, clinician)
    with pytest.raises(ValidationError, match="reached its target of 1"):
        randomize(second, clinician)
    assert Allocation.objects.count() == 1


def test_randomize_refuses_without_baseline(modic, site1, clinician):
    participant = factories.enrolled_participant(modic, site1, clinician, baseline=False)
    with pytest.raises(ValidationError, match="baseline"):
        randomize(participant, clinician)


def test_initial_random_allocations_use_simple_randomization(modic, site1, clinician):
    Trial.objects.filter(pk=modic.pk).update(initial_random_allocations=2)
    methods = []
    for _ in range(3):
        participant = factories.enrolled_participant(modic, site1, clinician)
        allocation, _ = randomize(participant, clinician)
        methods.append((allocation.method, allocation.probabilities))
    assert methods[0] == ("random", {"rest": 0.5, "exercise": 0.5})
    assert methods[1][0] == "random"
    assert methods[2][0] == "minimization"


def test_with_p_one_identical_patients_alternate_between_arms(modic, site1, clinician):
    Trial.objects.filter(pk=modic.pk).update(
        preferred_probability=Decimal("1"), deterministic_acknowledged=True
    )
    arms = []
    for seed in range(6):
        participant = factories.enrolled_participant(modic, site1, clinician)
        allocation, _ = randomize(participant, clinician, seed=seed)
        arms.append(allocation.arm.code)
    # After each pair the counts tie, so the next patient is random; the second of each pair
    # must go to the other arm (the only minimizing one, chosen with probability 1).
    assert all(arms[i] != arms[i + 1] for i in range(0, 6, 2))


def test_stored_counts_equal_a_recount_and_each_allocation_saw_the_counts_before_it(
    modic, site1, site2, clinician
):
    rng = random.Random(7)
    for i in range(40):
        participant = factories.enrolled_participant(
            modic, site1 if i % 3 else site2, clinician,
            age=rng.randint(18, 60), pain=rng.randint(4, 10),
            modic=rng.choice(["type1", "type2"]), sex=rng.choice(["female", "male"]),
        )  # fmt: skip
        randomize(participant, clinician, seed=i)
    assert_counts_consistent(modic)


def assert_counts_consistent(trial: Trial) -> None:
    """Stored counts = recount; sequences gap-free; each allocation saw the prior counts."""
    stored = services.stored_level_counts(trial)
    assert stored == services.recount_level_counts(trial)
    allocations = list(
        Allocation.objects.filter(trial=trial).select_related("arm").order_by("sequence")
    )
    assert [a.sequence for a in allocations] == list(range(1, len(allocations) + 1))
    running: dict[tuple[str, str, str], int] = {}
    arms = list(Arm.objects.filter(trial=trial).values_list("code", flat=True))
    for allocation in allocations:
        expected = {
            factor: {arm: running.get((factor, level, arm), 0) for arm in arms}
            for factor, level in allocation.factor_levels.items()
        }
        assert allocation.counts_seen == expected, f"allocation {allocation.sequence}"
        for factor, level in allocation.factor_levels.items():
            key = (factor, level, allocation.arm.code)
            running[key] = running.get(key, 0) + 1
    site_numbers = Participant.objects.filter(trial=trial, number__isnull=False).values_list(
        "number", flat=True
    )
    assert len(set(site_numbers)) == len(allocations)


# --- Append-only and frozen configuration ----------------------------------------------------


def test_allocations_cannot_be_changed_or_deleted_through_the_model(enrolled, clinician):
    allocation, _ = randomize(enrolled, clinician)
    with pytest.raises(PermissionError):
        allocation.save()
    with pytest.raises(PermissionError):
        allocation.delete()


def test_the_database_refuses_updates_to_allocations(enrolled, clinician):
    allocation, _ = randomize(enrolled, clinician)
    original_arm = allocation.arm_id
    other_arm = Arm.objects.exclude(pk=original_arm).get(trial=enrolled.trial)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Allocation.objects.filter(pk=allocation.pk).update(arm=other_arm)
    assert Allocation.objects.get(pk=allocation.pk).arm_id == original_arm


@pytest.mark.postgres
def test_postgresql_refuses_deleting_allocations(enrolled, clinician):
    allocation, _ = randomize(enrolled, clinician)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Allocation.objects.filter(pk=allocation.pk)._raw_delete(Allocation.objects.db)
    assert Allocation.objects.filter(pk=allocation.pk).exists()


def test_arms_factors_and_levels_are_frozen_after_the_first_randomization(enrolled, clinician):
    randomize(enrolled, clinician)
    arm = Arm.objects.get(code="rest")
    arm.name = "Bed rest"
    with pytest.raises(ConfigurationLocked):
        arm.save()
    with pytest.raises(ConfigurationLocked):
        Arm(trial=enrolled.trial, code="third", name="Third").save()
    factor = MinimizationFactor.objects.get(code="sex")
    with pytest.raises(ConfigurationLocked):
        factor.delete()
    level = FactorLevel.objects.get(factor=factor, code="male")
    level.label = "Men"
    with pytest.raises(ConfigurationLocked):
        level.save()
    trial = Trial.objects.get(pk=enrolled.trial_id)
    trial.preferred_probability = Decimal("0.9")
    with pytest.raises(ValidationError, match="Locked because participants have been randomized"):
        trial.full_clean()


def test_deterministic_minimization_needs_an_explicit_acknowledgement(modic):
    modic.preferred_probability = Decimal("1")
    with pytest.raises(ValidationError) as err:
        modic.full_clean()
    assert "deterministic_acknowledged" in err.value.message_dict
    modic.deterministic_acknowledged = True
    modic.full_clean()


def test_changes_are_audited_with_who_and_what(enrolled, clinician):
    randomize(enrolled, clinician)
    history = enrolled.history.order_by("history_date")
    assert [h.history_type for h in history] == ["+", "~", "~"]
    assert {h.history_user for h in history} == {clinician}
    last = history.last()
    assert last.status == "active" and last.prev_record.status == "enrolled"


def test_a_randomization_takes_a_fixed_small_number_of_statements(
    modic, site1, clinician, django_assert_max_num_queries
):
    """Everything from the trial row lock to COMMIT serializes randomizations: the
    configuration comes from the per-process cache, the visits are written before the
    lock, and the rest goes in one batch. On PostgreSQL that is seven round trips:
    savepoint, participant lock, visits batch, trial lock, counts, the batch, release —
    three of them holding the trial lock. (sqlite3 runs a batch's statements one per
    call.) A regression here costs throughput (make bench: bench_enroll)."""
    from django.db import connection

    first = factories.enrolled_participant(modic, site1, clinician)
    randomize(first, clinician)  # fills the configuration cache and the count rows
    second = factories.enrolled_participant(modic, site1, clinician)
    with django_assert_max_num_queries(7 if connection.vendor == "postgresql" else 16):
        randomize(second, clinician)


def _after_first_batch(monkeypatch, action):
    """Run `action` once, right after randomization's first batch (the visits, written
    before the trial lock): as if it happened while the service waited for the lock."""
    from participants.services import randomization

    real = randomization.batch.execute
    calls = []

    def execute(statements):
        rows = real(statements)
        if not calls:
            calls.append(1)
            action()
        return rows

    monkeypatch.setattr(randomization.batch, "execute", execute)


def _elsewhere(work) -> None:
    """Run `work` in another thread, on a database connection of its own, and wait for it:
    it must not wait for the randomization in progress."""
    import threading

    from django.db import connections

    def run():
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "it waited for the randomization"


def _one_schedule(participant) -> None:
    from participants.models import Visit

    visits = Visit.objects.filter(participant=participant)
    assert visits.count() == 3
    assert Visit.history.filter(participant_id=participant.pk).count() == 3
    participant.refresh_from_db()
    baseline = visits.get(definition__at_randomization=True)
    assert baseline.target_date == participant.randomized_on


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_configuration_edit_while_waiting_for_the_lock_starts_over(
    modic, site1, clinician, monkeypatch
):
    """The visits are planned before the trial lock from the configuration then; if an
    edit committed meanwhile, everything is rolled back and planned again from the new
    one. (The edit runs on a connection of its own: it does not wait for the service,
    which holds only the participant's row lock at that point.)"""
    from participants.models import Visit
    from trial.models import VisitDefinition

    participant = factories.enrolled_participant(modic, site1, clinician)
    definition = VisitDefinition.objects.get(trial=modic, code="w10")

    def edit():
        definition.offset_days = 77
        definition.save()

    _after_first_batch(monkeypatch, lambda: _elsewhere(edit))
    allocation, created = randomize(participant, clinician)
    assert created and allocation.sequence == 1
    _one_schedule(participant)
    w10 = Visit.objects.get(participant=participant, definition=definition)
    assert w10.target_date == participant.randomized_on + dt.timedelta(days=77)
    assert_counts_consistent(modic)


def test_midnight_while_waiting_for_the_lock_starts_over(modic, site1, clinician, monkeypatch):
    """The schedule is planned from the date before the trial lock; if the trial's day
    changed while waiting, the randomization starts over with the new date."""
    from django.utils import timezone

    participant = factories.enrolled_participant(modic, site1, clinician)
    zone = modic.zone
    today = timezone.localdate(timezone=zone)
    before = dt.datetime.combine(today, dt.time(23, 59, 59, 990000), tzinfo=zone)
    after = before + dt.timedelta(seconds=1)
    moments = iter([before])
    monkeypatch.setattr(timezone, "now", lambda: next(moments, after))
    allocation, created = randomize(participant, clinician)
    assert created
    participant.refresh_from_db()
    assert participant.randomized_on == today + dt.timedelta(days=1)
    assert allocation.allocated_at == participant.randomized_at == after
    _one_schedule(participant)


def test_changes_during_every_wait_end_in_a_clear_refusal_and_nothing_saved(
    modic, site1, clinician, monkeypatch
):
    """If the date (or the configuration) moves during each of the attempts' lock waits,
    the user is asked to try again; nothing is half-saved."""
    from django.utils import timezone

    from participants.models import Visit

    participant = factories.enrolled_participant(modic, site1, clinician)
    today = timezone.localdate(timezone=modic.zone)
    before = dt.datetime.combine(today, dt.time(23, 59, 59), tzinfo=modic.zone)
    moments = iter([before, before + dt.timedelta(seconds=2)] * 10)
    monkeypatch.setattr(timezone, "now", lambda: next(moments))
    with pytest.raises(ValidationError, match="changed while randomizing"):
        randomize(participant, clinician)
    assert not Allocation.objects.exists()
    assert not Visit.objects.exists() and not Visit.history.exists()
    assert Participant.objects.get(pk=participant.pk).status == Participant.Status.ENROLLED


def test_a_trial_without_a_visit_schedule_randomizes(modic, site1, clinician):
    from participants.models import Visit
    from trial.models import VisitDefinition

    participant = factories.enrolled_participant(modic, site1, clinician)
    VisitDefinition.objects.filter(trial=modic).delete()
    allocation, created = randomize(participant, clinician)
    assert created and allocation.pk
    assert not Visit.objects.filter(participant=participant).exists()
    participant.refresh_from_db()
    assert participant.status == Participant.Status.ACTIVE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_site_recoded_while_waiting_for_the_lock_numbers_with_the_new_code(
    modic, site1, clinician, monkeypatch
):
    """The site's code and counter are read after the trial lock, not from the join made
    before it."""
    from trial.models import Site

    participant = factories.enrolled_participant(modic, site1, clinician)

    def recode():
        Site.objects.filter(pk=site1.pk).update(code="09")

    _after_first_batch(monkeypatch, lambda: _elsewhere(recode))
    randomize(participant, clinician)
    participant.refresh_from_db()
    assert participant.number == "MOD-09-0001"


def test_a_configuration_edit_reaches_the_next_randomization_at_once(modic, site1, clinician):
    """The configuration cache is keyed on Trial.config_version, which every edit bumps."""
    from participants.selectors import trial_config
    from trial.models import VisitDefinition

    before = Trial.objects.get(pk=modic.pk)
    assert trial_config(before) is trial_config(before)  # cached
    visit = VisitDefinition.objects.get(trial=modic, code="w10")
    visit.offset_days = 77
    visit.save()
    after = Trial.objects.get(pk=modic.pk)
    assert after.config_version != before.config_version
    config = trial_config(after)
    assert {v.code: v.offset_days for v in config.visits}["w10"] == 77
    participant = factories.enrolled_participant(modic, site1, clinician)
    randomize(participant, clinician)
    participant.refresh_from_db()
    planned = participant.visits.get(definition__code="w10")
    assert planned.target_date == participant.randomized_on + dt.timedelta(days=77)


def test_saving_a_whole_trial_or_site_never_writes_back_old_counters(enrolled, clinician):
    """An admin form reads the trial and site, a randomization commits, the form saves: the
    counters the randomization moved must survive (else the next number is reused)."""
    trial = Trial.objects.get(pk=enrolled.trial_id)
    site = enrolled.site.__class__.objects.get(pk=enrolled.site_id)
    randomize(enrolled, clinician)
    trial.name = "Renamed in the admin"
    trial.save()
    site.name = "Renamed site"
    site.save()
    trial.refresh_from_db()
    site.refresh_from_db()
    assert (trial.name, trial.allocation_count) == ("Renamed in the admin", 1)
    assert (site.name, site.randomized_count) == ("Renamed site", 1)


def test_the_configuration_cache_keeps_the_trials_in_use_when_it_is_full(
    modic, django_assert_num_queries
):
    """Least recently used out: a full cache must not drop the configuration a busy trial
    reads on every randomization (a clear-all refill made the allocation benchmark's
    statement count flaky)."""
    from participants import selectors

    trial = Trial.objects.get(pk=modic.pk)
    selectors.trial_config(trial)
    for other in range(1, selectors._CONFIGS_MAX + 5):
        selectors._cached_config(-other, "none")  # other trials (no such rows: empty)
        with django_assert_num_queries(0):
            selectors.trial_config(trial)
