"""The synthetic trials of the benchmarks (trial.devtools.benchdata) hold what the services would have
stored: the project's own invariants pass on them, and the pages, the dashboard, the export
and randomization work on them. Runs on SQLite and PostgreSQL at a tiny size."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections import Counter, defaultdict

import pytest
from django.db import connection
from django.db.models import Count
from django.urls import reverse

from outcomes.instruments.models import OutcomeEntry
from outcomes.results.models import ExportJob
from outcomes.sms import sms_rules, sms_totals
from outcomes.sms.models import (
    InboundMessage,
    OutboundMessage,
    SmsAnswer,
    SmsQuestionWeekTotal,
    SmsSchedule,
    SmsWeek,
)
from participants import minimization, schedule
from participants.models import (
    Allocation,
    Participant,
    StatusChange,
    Visit,
)
from participants.services import (
    participant_randomize,
    recount_level_counts,
    stored_level_counts,
    trial_today,
)
from tests import factories
from trial.devtools import benchdata
from trial.models import Site, VisitDefinition

N, WEEKS, READY = 60, 6, 5


@pytest.fixture
def synthetic(db):
    return benchdata.build_synthetic_trial("SYN", N, weeks=WEEKS, ready=READY, seed=3)


@pytest.fixture
def coordinator_of(synthetic):
    return factories.persona("Coordinator", trial=synthetic, username="syn-coord")


def test_every_column_of_every_loaded_table_is_written():
    # COPY and INSERT apply no Django defaults: a column left out would be NULL or fail.
    for model, columns in benchdata.TABLES:
        assert sorted(columns) == sorted(f.column for f in model._meta.concrete_fields), model


def test_the_trial_has_n_randomized_and_ready_participants_awaiting_randomization(synthetic):
    assert synthetic.allocation_count == N
    assert synthetic.target_sample_size == N + READY
    assert Participant.objects.filter(trial=synthetic, randomized_at__isnull=False).count() == N
    ready = Participant.objects.filter(trial=synthetic, status=Participant.Status.ENROLLED)
    assert ready.count() == READY
    assert all(p.baseline_complete and p.number is None for p in ready)
    assert SmsSchedule.objects.get(trial=synthetic).weeks == WEEKS


def test_maintained_level_counts_equal_a_recount(synthetic):
    stored = stored_level_counts(synthetic)
    assert stored == recount_level_counts(synthetic)
    assert sum(stored.values()) == N * 4  # four factors per participant


def test_the_dashboards_sms_totals_equal_a_recount(synthetic):
    assert sms_totals.compare(synthetic.pk) == []
    assert SmsQuestionWeekTotal.objects.filter(trial=synthetic).exists()


def test_allocation_sequence_and_site_numbers_are_gap_free_and_follow_the_dates(synthetic):
    allocations = list(
        Allocation.objects.filter(trial=synthetic)
        .select_related("participant")
        .order_by("sequence")
    )
    assert [a.sequence for a in allocations] == list(range(1, N + 1))
    dates = [a.participant.randomized_on for a in allocations]
    assert dates == sorted(dates)
    for site in Site.objects.filter(trial=synthetic):
        numbers = sorted(
            Participant.objects.filter(site=site, number__isnull=False).values_list(
                "number", flat=True
            )
        )
        expected = [f"SYN-{site.code}-{i:04d}" for i in range(1, site.randomized_count + 1)]
        assert numbers == expected


def test_each_allocation_replays_from_the_counts_of_the_allocations_before_it(synthetic):
    """counts_seen is what earlier allocations add up to, and scores and probabilities are
    what minimization computes from it, as participant_randomize stores them."""
    running: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for a in Allocation.objects.filter(trial=synthetic).select_related("arm").order_by("sequence"):
        seen = {f: dict(running[(f, level)]) for f, level in a.factor_levels.items()}
        arms = a.settings_used["arms"]
        assert a.counts_seen == {f: {arm: seen[f].get(arm, 0) for arm in arms} for f in seen}
        weights = a.settings_used["weights"]
        scores = minimization.scores(arms, a.counts_seen, weights, "range")
        assert a.scores == scores
        assert a.probabilities == minimization.probabilities(arms, scores, 0.8)
        assert minimization.choose(arms, a.probabilities, a.draw) == a.arm.code
        for f, level in a.factor_levels.items():
            running[(f, level)][a.arm.code] += 1


def test_visits_are_planned_from_each_randomization_date_and_recorded_consistently(synthetic):
    definitions = list(VisitDefinition.objects.filter(trial=synthetic))
    specs = [
        schedule.VisitSpec(d.code, d.offset_days, d.window_before, d.window_after)
        for d in definitions
    ]
    today = trial_today(synthetic)
    due = defaultdict(set)
    for definition in definitions:
        due[definition.pk] = set(definition.instruments.values_list("pk", flat=True))
    entries = defaultdict(set)
    for visit_id, instrument_id in OutcomeEntry.objects.filter(trial=synthetic).values_list(
        "visit_id", "instrument_id"
    ):
        entries[visit_id].add(instrument_id)
    outcomes = Counter()
    for p in Participant.objects.filter(trial=synthetic, randomized_at__isnull=False):
        planned = {v.code: v for v in schedule.plan(p.randomized_on, specs)}
        visits = list(Visit.objects.filter(participant=p).select_related("definition"))
        assert sorted(v.definition.code for v in visits) == sorted(planned)
        for visit in visits:
            plan = planned[visit.definition.code]
            assert (visit.target_date, visit.window_start, visit.window_end) == (
                plan.target, plan.window_start, plan.window_end,
            )  # fmt: skip
            outcomes[visit.outcome] += 1
            if visit.outcome == Visit.Outcome.COMPLETED:
                assert p.randomized_on <= visit.attended_on <= today
                assert visit.in_window == schedule.in_window(
                    visit.attended_on, visit.window_start, visit.window_end
                )
                assert entries[visit.pk] == due[visit.definition_id]
            else:
                assert visit.pk not in entries
            if visit.outcome == Visit.Outcome.OPEN and visit.window_start > today:
                assert visit.recorded_at is None
    assert outcomes[Visit.Outcome.COMPLETED] > outcomes[Visit.Outcome.OPEN] > 0


def test_status_changes_are_recorded_and_follow_up_stops_as_the_service_would(synthetic):
    changed = Participant.objects.filter(trial=synthetic).exclude(
        status__in=[Participant.Status.ACTIVE, Participant.Status.ENROLLED]
    )
    assert changed.count() == StatusChange.objects.filter(participant__trial=synthetic).count()
    for p in changed:
        change = StatusChange.objects.get(participant=p)
        assert change.to_status == p.status and change.effective_on == p.status_changed_on
        if p.status == Participant.Status.WITHDRAWN and not p.followup_allowed:
            assert not Visit.objects.filter(participant=p, outcome=Visit.Outcome.OPEN).exists()
        # Visits the change closed are linked to it at its time, so it can be reversed.
        for v in Visit.objects.filter(participant=p, closed_by__isnull=False):
            assert (v.closed_by_id, v.recorded_at) == (change.pk, change.at)
            assert v.outcome in (Visit.Outcome.MISSED, Visit.Outcome.NOT_REQUIRED)
        if p.status == Participant.Status.DECEASED or not p.followup_allowed:
            assert not Visit.objects.filter(
                participant=p, outcome=Visit.Outcome.NOT_REQUIRED, closed_by__isnull=True
            ).exists()
        # No SMS week opened after the change.
        last = SmsWeek.objects.filter(participant=p).order_by("-week").first()
        assert last is None or last.send_date <= change.effective_on


def test_sms_weeks_follow_the_calendar_and_answers_match_messages(synthetic):
    config = SmsSchedule.objects.get(trial=synthetic)
    today = trial_today(synthetic)
    weeks = defaultdict(list)
    for w in SmsWeek.objects.filter(trial=synthetic).select_related("participant"):
        weeks[w.participant].append(w)
    assert len(weeks) >= N * 0.85
    for p, rows in weeks.items():
        rows.sort(key=lambda w: w.week)
        assert [w.week for w in rows] == list(range(1, len(rows) + 1))
        assert len(rows) <= WEEKS
        for w in rows:
            assert sms_rules.week_number(p.randomized_on, w.send_date) == w.week
            assert w.send_date.weekday() == config.weekday and w.send_date <= today
            assert w.site_id == p.site_id
    answers = SmsAnswer.objects.filter(trial=synthetic)
    replies = InboundMessage.objects.filter(trial=synthetic, kind="answer")
    assert answers.count() == replies.count()
    for answer in answers.select_related("message", "week"):
        assert answer.message.week_id == answer.week_id
        assert answer.message.question_id == answer.question_id
        assert answer.message.value == answer.value and 0 <= answer.value <= 7
        assert answer.week.participant_id == answer.participant_id
    per_week = dict(answers.values("week").annotate(n=Count("pk")).values_list("week", "n"))
    questions = dict(
        OutboundMessage.objects.filter(trial=synthetic, kind="sms_question")
        .values("week")
        .annotate(n=Count("pk"))
        .values_list("week", "n")
    )
    all_weeks = SmsWeek.objects.filter(trial=synthetic)
    for w in all_weeks:
        assert w.answered == per_week.get(w.pk, 0)
        assert questions[w.pk] == min(w.answered + 1, 2)  # the next question on each answer
        assert (w.completed_at is not None) == (w.answered == 2) == (w.current_question is None)
    answered = sum(1 for w in all_weeks if w.answered)
    assert 0.7 < answered / all_weeks.count() < 0.97


def test_the_same_seed_gives_the_same_trial(db):
    def digest(trial):
        return list(
            Allocation.objects.filter(trial=trial)
            .order_by("sequence")
            .values_list("arm__code", "draw", "participant__randomized_on")
        ), SmsAnswer.objects.filter(trial=trial).count()

    first = benchdata.build_synthetic_trial("SYNA", 20, weeks=3, seed=5)
    second = benchdata.build_synthetic_trial("SYNB", 20, weeks=3, seed=5)
    assert digest(first) == digest(second)


def test_worklist_and_participant_pages_render_for_a_coordinator(
    synthetic, coordinator_of, client, django_assert_max_num_queries
):
    client.force_login(coordinator_of)
    with django_assert_max_num_queries(40):
        response = client.get(reverse("worklist", kwargs={"code": synthetic.code}))
    assert response.status_code == 200
    overdue = Visit.objects.filter(trial=synthetic, outcome="open").first()
    for participant in (overdue.participant, Participant.objects.filter(trial=synthetic).first()):
        response = client.get(
            reverse("participant_detail", kwargs={"code": synthetic.code, "pk": participant.pk})
        )
        assert response.status_code == 200
        assert participant.label in response.content.decode()


def test_the_results_dashboard_computes_with_every_participant_randomized(synthetic):
    from outcomes.results import dashboard

    results = dashboard.compute(synthetic, blinded=True)
    assert results.randomized == N
    assert results.continuous and results.sms is not None


def test_the_export_bundle_builds_with_one_row_per_randomized_participant(
    synthetic, coordinator_of, settings, tmp_path
):
    from outcomes.results.export import (
        export_build,  # a module or, after its refactoring, a package
    )

    settings.EXPORT_DIR = tmp_path
    job = ExportJob.objects.create(
        trial=synthetic, requested_by=coordinator_of, blinded=True, status="running"
    )
    path = export_build(job)
    with zipfile.ZipFile(path) as zf:
        people = list(csv.DictReader(io.StringIO(zf.read("participants.csv").decode())))
        sms = list(csv.DictReader(io.StringIO(zf.read("sms.csv").decode())))
    assert len(people) == N
    assert (
        sum(row["answered"] == "1" for row in sms)
        == SmsAnswer.objects.filter(trial=synthetic).count()
    )


def test_ready_participants_randomize_through_the_service_after_the_synthetic_ones(
    synthetic, coordinator_of
):
    ready = Participant.objects.filter(trial=synthetic, status=Participant.Status.ENROLLED)
    sequences = []
    for participant in ready:
        allocation, created = participant_randomize(participant=participant, by=coordinator_of)
        assert created
        sequences.append(allocation.sequence)
        baseline = Visit.objects.get(participant=participant, definition__at_randomization=True)
        assert OutcomeEntry.objects.filter(participant=participant, visit=baseline).count() == 3
    assert sorted(sequences) == list(range(N + 1, N + READY + 1))
    stored = stored_level_counts(synthetic)
    assert stored == recount_level_counts(synthetic)


@pytest.mark.postgres
def test_a_large_load_on_postgresql_restores_every_index_and_constraint(db, monkeypatch):
    """Above DEFER_CHECKS_FROM the load drops secondary indexes and constraints and builds
    them again: the schema afterwards is exactly the schema before."""

    def schema():
        tables = [model._meta.db_table for model, _ in benchdata.TABLES]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables]
            )
            indexes = sorted(cursor.fetchall())
            cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid),"
                " condeferrable, condeferred, convalidated"
                " FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])",
                [tables],
            )
            return indexes, sorted(cursor.fetchall())

    before = schema()
    monkeypatch.setattr(benchdata, "DEFER_CHECKS_FROM", 1)
    lines = []
    trial = benchdata.build_synthetic_trial("SYNPG", 30, weeks=4, report=lines.append)
    assert schema() == before
    assert any("indexes and constraints rebuilt" in line for line in lines)
    assert trial.allocation_count == 30
    # The sequences moved past the ids taken: the next insert gets a fresh id.
    week = SmsWeek.objects.filter(trial=trial).order_by("-pk").first()
    new = SmsWeek.objects.create(
        trial=trial, site=week.site, participant=week.participant, week=99,
        send_date=week.send_date + dt.timedelta(days=7 * 90), opened_at=week.opened_at,
    )  # fmt: skip
    assert new.pk > week.pk
