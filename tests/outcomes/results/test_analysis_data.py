"""The analysis frames read from the database: every randomized participant, in the arm
allocated, with outcomes by instrument and visit; a fixed number of queries."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from django.db import IntegrityError, transaction

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.services import EntryInput, visit_record_outcomes
from outcomes.results import analysis_data
from participants.models import Allocation, Participant, Visit
from participants.services import participant_randomize
from tests import factories
from trial.devtools.demo import build_modic_trial


def randomized(trial, site, by, **kwargs) -> Participant:
    participant = factories.enrolled_participant(trial, site, by, instruments=True, **kwargs)
    participant_randomize(participant=participant, by=by, rng=random.Random(participant.pk))
    return Participant.objects.get(pk=participant.pk)


def record_w10(participant, by, *, pain: int, answer: int = 2, pain_not_done: str = ""):
    visit = Visit.objects.get(participant=participant, definition__code="w10")
    entries = []
    for instrument in Instrument.objects.filter(visits=visit.definition):
        if instrument.kind == "pain_nrs":
            entries.append(
                EntryInput(instrument, not_done=pain_not_done)
                if pain_not_done
                else EntryInput(instrument, {"value": pain})
            )
        elif instrument.kind == "rmdq":
            entries.append(EntryInput(instrument, {"items": [n < 5 for n in range(23)]}))
        elif instrument.kind == "eq5d_3l":
            levels = {"MO": 1, "SC": 1, "UA": 2, "PD": 2, "AD": 1}
            entries.append(EntryInput(instrument, {**levels, "vas": 70}))
        else:
            entries.append(EntryInput(instrument, {"answer": answer}))
    # Record the visit at its target date, moved into the past so it is not in the future.
    Visit.objects.filter(pk=visit.pk).update(
        target_date=dt.date(2025, 3, 10), window_start=dt.date(2025, 3, 3),
        window_end=dt.date(2025, 3, 31),
    )  # fmt: skip
    Participant.objects.filter(pk=participant.pk).update(
        randomized_on=dt.date(2024, 12, 30), consent_date=dt.date(2024, 12, 29)
    )
    visit_record_outcomes(visit=visit, entries=entries, by=by, attended_on=dt.date(2025, 3, 12))


@pytest.fixture
def three(modic, site1, site2, clinician, manager):
    a = randomized(modic, site1, clinician, pain=7)
    b = randomized(modic, site2, manager, pain=5, sex="male")
    c = randomized(modic, site1, clinician, pain=9)
    record_w10(a, manager, pain=3, answer=1)
    record_w10(b, manager, pain=6, answer=5, pain_not_done="refused")
    return a, b, c


def test_everyone_randomized_is_in_the_analysis_set_in_the_arm_allocated(modic, three):
    frame = analysis_data.analysis_frame(modic)
    assert list(frame.index) == [p.pk for p in three]
    arms = dict(Allocation.objects.values_list("participant_id", "arm__code"))
    assert frame["arm"].to_dict() == arms
    a, b, c = three
    assert frame.loc[b.pk, "site"] == "02"
    assert frame.loc[b.pk, "factor_sex"] == "male"
    assert frame.loc[a.pk, "bl_pain"] == 7


def test_outcomes_by_instrument_and_visit_with_not_done_and_missing(modic, three):
    frame = analysis_data.analysis_frame(modic)
    a, b, c = three
    assert frame.loc[a.pk, "pain_w10"] == 3
    assert frame.loc[a.pk, "pain_baseline"] == 7  # the baseline instrument, linked
    assert frame.loc[a.pk, "rmdq_w10"] == 5
    assert frame.loc[a.pk, "eq5d_vas_w10"] == 70
    assert frame.loc[a.pk, "global_w10"] == 1 and bool(frame.loc[a.pk, "global_improved_w10"])
    assert not bool(frame.loc[b.pk, "global_improved_w10"])
    assert frame.loc[b.pk, "pain_w10_not_done"] == "refused"
    assert frame[["pain_w10"]].isna().loc[[b.pk, c.pk]].all().all()
    assert frame.loc[c.pk, "pain_baseline"] == 9


def test_visits_and_sms_frames(modic, three):
    visits = analysis_data.visits_frame(modic)
    assert len(visits) == 3 * 3
    done = visits[(visits.visit == "w10") & (visits.outcome == "completed")]
    assert sorted(done.participant_id) == sorted(p.pk for p in three[:2])
    cells, means = analysis_data.sms_summaries(modic)
    assert cells.empty and means.empty


def test_the_frames_take_the_same_queries_for_few_or_many(
    modic, site1, clinician, django_assert_max_num_queries
):
    randomized(modic, site1, clinician)
    with django_assert_max_num_queries(6) as few:
        analysis_data.analysis_frame(modic)
    for _ in range(6):
        randomized(modic, site1, clinician)
    with django_assert_max_num_queries(len(few.captured_queries)):
        analysis_data.analysis_frame(modic)


def test_no_direct_identifiers_in_the_frames(modic, three):
    frame = analysis_data.analysis_frame(modic)
    text = frame.to_csv()
    for p in three:
        assert p.full_name not in text and p.phone not in text


def _records_frame(rows, columns) -> pd.DataFrame:
    """The frames as pandas builds them from whole records (the straightforward way, and
    what these frames were before they were built column by column to save memory)."""
    return pd.DataFrame.from_records(rows, columns=columns)


def test_the_column_wise_frames_equal_pandas_from_records(modic, three, site2, manager):
    # A participant whose baseline lacks a value and has one more: columns appear in order
    # of first appearance, missing = NaN, as from_records of one dict per participant.
    late = randomized(modic, site2, manager, pain=4)
    Participant.objects.filter(pk=three[0].pk).update(baseline={})
    Participant.objects.filter(pk=late.pk).update(baseline={"pain": 4, "extra": "x", "l": [1, 2]})
    frame = analysis_data.participants_frame(modic)

    records = []
    for allocation in Allocation.objects.filter(trial=modic).order_by("sequence"):
        p = Participant.objects.select_related("site").get(pk=allocation.participant_id)
        record = {
            "participant_id": p.pk, "number": p.number, "site": p.site.code,
            "arm": allocation.arm.code, "randomized_on": p.randomized_on, "status": p.status,
            "followup_allowed": p.followup_allowed,
        }  # fmt: skip
        record.update({f"factor_{k}": v for k, v in allocation.factor_levels.items()})
        record.update({f"bl_{k}": v for k, v in (p.baseline or {}).items()})
        records.append(record)
    expected = _records_frame(records, None).set_index("participant_id", drop=False)
    pd.testing.assert_frame_equal(frame, expected)
    assert list(frame.columns).index("bl_extra") > list(frame.columns).index("bl_pain")
    assert pd.isna(frame.loc[three[0].pk, "bl_pain"])

    visits = analysis_data.visits_frame(modic)
    fields = [
        "participant_id", "definition__code", "target_date", "window_start", "window_end",
        "outcome", "attended_on", "in_window", "missed_reason",
    ]  # fmt: skip
    rows = list(
        Visit.objects.filter(trial=modic)
        .order_by("participant_id", "target_date")
        .values_list(*fields)
    )
    pd.testing.assert_frame_equal(visits, _records_frame(rows, list(visits.columns)))
    other = build_modic_trial(code="EMPTY")
    for built in (analysis_data.visits_frame(other), analysis_data.participants_frame(other)):
        assert built.empty
    assert list(analysis_data.visits_frame(other).columns) == list(visits.columns)


def test_entries_at_visits_newer_than_the_visit_map_are_looked_up(modic, three):
    # A randomization committing between the two reads (the cursor path reads the entries
    # after the map) adds entries whose visits the map lacks: they are looked up, not lost.
    people = analysis_data.participants_frame(modic)
    whole = analysis_data.outcomes_frame(modic, people.index)
    visit_map, entries = analysis_data.outcome_reads(modic)
    recorded = set(
        Visit.objects.filter(trial=modic, outcome="completed").values_list("pk", flat=True)
    )
    older = visit_map[~visit_map["visit"].isin(recorded)]
    assert 0 < len(older) < len(visit_map)
    pd.testing.assert_frame_equal(
        analysis_data.outcomes_frame(modic, people.index, (older, entries)), whole
    )
    assert whole.notna().any().any()


def test_every_not_done_reason_and_global_answer_reads_back_as_stored(modic, three):
    # The two columns travel as small integer codes: every reason, and improved as
    # True, False or None (entered without an answer), must come back as stored.
    a, b, _ = three
    instrument = Instrument.objects.get(trial=modic, code="global")
    people = analysis_data.participants_frame(modic)
    for reason in OutcomeEntry.NotDone.values:
        pain = OutcomeEntry.objects.filter(
            participant=b, instrument__code="pain", visit__definition__code="w10"
        )
        pain.update(not_done=reason)
        frame = analysis_data.outcomes_frame(modic, people.index)
        assert frame.loc[b.pk, "pain_w10_not_done"] == reason
        assert frame.loc[a.pk, "pain_w10_not_done"] == ""
    for improved in (True, False, None):
        OutcomeEntry.objects.filter(participant=a, instrument=instrument).update(improved=improved)
        frame = analysis_data.outcomes_frame(modic, people.index)
        assert frame.loc[a.pk, "global_improved_w10"] is improved


def test_the_database_refuses_a_not_done_reason_the_analysis_cannot_read(modic, three):
    # b's pain at w10 is not done (no score), so only the reason can be refused here.
    pain = OutcomeEntry.objects.filter(
        participant=three[1], instrument__code="pain", visit__definition__code="w10"
    )
    assert pain.get().not_done == "refused"
    with pytest.raises(IntegrityError), transaction.atomic():
        pain.update(not_done="lost")
