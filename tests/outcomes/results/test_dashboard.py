"""The results dashboard in the admin: who sees it, blinding, CONSORT numbers that reconcile
with the data, caching and recomputation, unblinding."""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET

import pypdf
import pytest
from django.core.cache import cache
from django.urls import reverse

from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.services import EntryInput, visit_record_outcomes
from outcomes.results import analysis_data
from participants.models import Allocation, Participant, Visit
from tests import factories
from tests.outcomes.results.test_analysis_data import randomized, record_w10
from trial import blinding
from trial.models import Arm, BlindingLog


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def trial_with_data(modic, site1, site2, clinician, manager):
    people = [
        randomized(modic, site1, clinician, pain=7),
        randomized(modic, site2, manager, pain=5, sex="male"),
        randomized(modic, site1, clinician, pain=9, modic="type2"),
        randomized(modic, site2, manager, pain=6),
        randomized(modic, site1, clinician, pain=8, sex="male", age=30),
        randomized(modic, site2, manager, pain=4, modic="type2"),
    ]
    for n, p in enumerate(people[:5]):
        record_w10(p, manager, pain=2 + n, answer=1 + n % 4)
    return modic


def url(name, trial):
    return reverse(name, args=[trial.code])


def test_a_blinded_statistician_sees_results_with_codes_and_never_arm_names(
    client, trial_with_data, statistician
):
    client.force_login(statistician)
    response = client.get(url("trial_results", trial_with_data))
    assert response.status_code == 200
    html = response.content.decode()
    for arm in Arm.objects.filter(trial=trial_with_data):
        assert arm.name not in html and arm.description not in html
        assert f"Arm {arm.blind_code}" in html
    assert "CONSORT" in html and "Intention-to-treat" in html
    assert "Adjusted difference" in html
    assert not BlindingLog.objects.exists()


def test_the_consort_numbers_reconcile_with_the_data(client, trial_with_data, statistician):
    client.force_login(statistician)
    response = client.get(url("trial_results", trial_with_data))
    result = response.context["r"]
    frame = analysis_data.analysis_frame(trial_with_data)
    assert result.consort.randomized == len(frame) == Allocation.objects.count() == 6
    assert sum(arm.allocated for arm in result.consort.arms) == 6
    analysed_w10 = sum(arm.visits[0].analysed for arm in result.consort.arms)
    assert analysed_w10 == frame["pain_w10"].notna().sum() == 5
    svg = client.get(url("trial_consort_svg", trial_with_data))
    assert svg["Content-Type"] == "image/svg+xml"
    root = ET.fromstring(svg.content)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Randomized (n = 6)" in texts
    pdf = client.get(url("trial_consort_pdf", trial_with_data))
    assert pdf["Content-Type"] == "application/pdf"
    page = pypdf.PdfReader(io.BytesIO(pdf.content), strict=True).pages[0]
    assert "Randomized (n = 6)" in page.extract_text()


@pytest.mark.parametrize("who", ["statistician", "manager"])
def test_the_consort_pdf_download_says_what_the_svg_download_says(
    client, trial_with_data, who, request
):
    """Both downloads draw the same diagram: blinded, neither names an arm; unblinded, both
    do."""
    client.force_login(request.getfixturevalue(who))
    svg = client.get(url("trial_consort_svg", trial_with_data))
    pdf = client.get(url("trial_consort_pdf", trial_with_data))
    assert (svg.status_code, pdf.status_code) == (200, 200)
    lines = [t.text for t in ET.fromstring(svg.content).iter("{http://www.w3.org/2000/svg}text")]
    text = pypdf.PdfReader(io.BytesIO(pdf.content), strict=True).pages[0].extract_text()
    assert text.splitlines() == lines
    names = [arm.name for arm in Arm.objects.filter(trial=trial_with_data)]
    shown = [name for name in names if any(name in line for line in lines)]
    assert shown == ([] if who == "statistician" else names)


def test_a_trial_manager_sees_names_and_each_view_is_audited(client, trial_with_data, manager):
    client.force_login(manager)
    html = client.get(url("trial_results", trial_with_data)).content.decode()
    for arm in Arm.objects.filter(trial=trial_with_data):
        assert arm.name in html
    client.get(url("trial_results", trial_with_data))
    assert BlindingLog.objects.filter(action="viewed", user=manager).count() == 2


@pytest.mark.parametrize("who", ["clinician", "coordinator"])
def test_clinicians_and_coordinators_are_kept_out(client, trial_with_data, request, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    response = client.get(url("trial_results", trial_with_data))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_staff_statistician_of_another_trial_gets_404(client, trial_with_data):
    from trial.devtools.demo import build_modic_trial

    knee = build_modic_trial(code="KNEE")
    other = factories.persona("Statistician", trial=knee, username="stat2", staff=True)
    client.force_login(other)
    assert client.get(url("trial_results", trial_with_data)).status_code == 404


def test_results_are_cached_until_the_data_change(
    client, trial_with_data, statistician, manager, django_assert_max_num_queries
):
    client.force_login(statistician)
    first = client.get(url("trial_results", trial_with_data)).context["r"]
    with django_assert_max_num_queries(20):
        again = client.get(url("trial_results", trial_with_data)).context["r"]
    assert again.computed_at == first.computed_at
    # New data: the next view computes afresh.
    last = trial_with_data.participants.order_by("-pk").first()
    record_w10(last, manager, pain=3)
    fresh = client.get(url("trial_results", trial_with_data)).context["r"]
    assert fresh.computed_at > first.computed_at
    assert sum(arm.visits[0].analysed for arm in fresh.consort.arms) == 6


def test_a_configuration_edit_or_a_new_day_computes_afresh(
    client, trial_with_data, statistician, monkeypatch
):
    from outcomes.instruments.models import Instrument
    from outcomes.results import dashboard

    client.force_login(statistician)
    first = client.get(url("trial_results", trial_with_data)).context["r"]
    # An admin renames an instrument: the cached tables would show the old name.
    instrument = Instrument.objects.get(trial=trial_with_data, primary=True)
    instrument.name = "Pain now (NRS 0-10)"
    instrument.save()
    renamed = client.get(url("trial_results", trial_with_data))
    assert renamed.context["r"].computed_at > first.computed_at
    assert "Pain now (NRS 0-10)" in renamed.content.decode()
    # Midnight: visits become due or missed without any write.
    before = dashboard.fingerprint(trial_with_data)
    tomorrow = dashboard.timezone.localdate(timezone=trial_with_data.zone) + dt.timedelta(days=1)
    monkeypatch.setattr(dashboard.timezone, "localdate", lambda *a, **k: tomorrow)
    assert dashboard.fingerprint(trial_with_data) != before


def test_compute_again_on_demand(client, trial_with_data, statistician):
    client.force_login(statistician)
    first = client.get(url("trial_results", trial_with_data)).context["r"]
    response = client.post(url("trial_results", trial_with_data))
    assert response.status_code == 302
    after = client.get(url("trial_results", trial_with_data)).context["r"]
    assert after.computed_at > first.computed_at


def test_unblinding_through_the_page(client, trial_with_data, manager, statistician):
    client.force_login(manager)
    page = url("trial_unblind", trial_with_data)
    assert client.get(page).status_code == 200
    refused = client.post(page, {"reason": "", "confirm": "on"})
    assert refused.status_code == 200 and refused.context["form"].errors
    assert (
        client.post(page, {"reason": "Final analysis signed off", "confirm": "on"}).status_code
        == 302
    )
    assert BlindingLog.objects.filter(action="unblinded").count() == 1
    client.force_login(statistician)
    html = client.get(url("trial_results", trial_with_data)).content.decode()
    for arm in Arm.objects.filter(trial=trial_with_data):
        assert arm.name in html
    assert client.get(page).status_code == 403  # statisticians cannot unblind


def test_an_empty_trial_shows_a_dashboard(client, modic, statistician):
    client.force_login(statistician)
    response = client.get(url("trial_results", modic))
    assert response.status_code == 200
    assert "No results yet" in response.content.decode()


def test_the_admin_home_links_the_results(client, trial_with_data, statistician):
    client.force_login(statistician)
    html = client.get(reverse("admin:index")).content.decode()
    assert reverse("results_index") in html
    index = client.get(reverse("results_index")).content.decode()
    assert url("trial_results", trial_with_data) in index
    assert not re.search(r"Arm admin|/admin/trial/arm/", html)  # no model rights
    assert blinding.is_blinded(statistician, trial_with_data)


def test_blinded_rows_follow_the_codes_not_the_real_arm_codes(
    client, trial_with_data, statistician
):
    # "exercise" sorts before "rest": give exercise the code B, so sorting by the real arm
    # code would put B first and give the mapping away.
    Arm.objects.filter(trial=trial_with_data).update(blind_code="")  # drawn at creation
    Arm.objects.filter(trial=trial_with_data, code="exercise").update(blind_code="B")
    Arm.objects.filter(trial=trial_with_data, code="rest").update(blind_code="A")
    client.force_login(statistician)
    results = client.get(url("trial_results", trial_with_data)).context["r"]
    for visit in ("10 weeks", "1 year"):
        labels = [r["arm_label"] for r in results.completeness if r["definition__label"] == visit]
        assert labels == ["Arm A", "Arm B"]


def test_consort_from_the_analysis_frame_equals_consort_read_from_the_database(
    trial_with_data, manager
):
    # The dashboard passes its analysis frame so the participants and the primary outcome
    # are not read twice; the flow must be the same as from the database alone.
    from outcomes.results.selectors import consort_counts

    people = list(Participant.objects.filter(trial=trial_with_data).order_by("pk"))
    record_w10(people[5], manager, pain=0, pain_not_done="refused")
    Participant.objects.filter(pk=people[1].pk).update(status="withdrawn")
    Participant.objects.filter(pk=people[2].pk).update(status="lost")
    labels = [(arm.code, arm.name) for arm in Arm.objects.filter(trial=trial_with_data)]

    def same_both_ways() -> set[str]:
        frame = analysis_data.analysis_frame(trial_with_data)
        reasons = set()
        for today in (dt.date(2025, 3, 20), dt.date(2029, 1, 1)):
            from_database = consort_counts(trial_with_data, labels, today)
            assert consort_counts(trial_with_data, labels, today, frame) == from_database
            for arm in from_database.arms:
                for visit in arm.visits:
                    reasons |= set(visit.not_analysed)
        return reasons

    assert {"Outcome not done", "Withdrew", "Lost to follow-up"} <= same_both_ways()
    # Two instruments marked primary (nothing forbids it): a score on either is analysed.
    Instrument.objects.filter(trial=trial_with_data, kind="rmdq").update(primary=True)
    OutcomeEntry.objects.filter(
        participant=people[0], instrument__kind="rmdq", visit__definition__code="w10"
    ).update(score=None, not_done="refused")
    assert "Outcome not done" not in same_both_ways()


def test_the_improvement_result_counts_the_answers_of_the_analysis_frame(trial_with_data):
    from outcomes.results.dashboard import compute

    # One answer entered as "no answer" (None), which is missing, not "not improved".
    OutcomeEntry.objects.filter(
        trial=trial_with_data, instrument__kind="global_7", improved=False
    ).filter(pk__in=OutcomeEntry.objects.filter(improved=False).values("pk")[:1]).update(
        improved=None
    )
    results = compute(trial_with_data, blinded=False)
    frame = analysis_data.analysis_frame(trial_with_data)
    assert frame[[c for c in frame if c.endswith("_improved_w10")][0]].isna().sum() == 2
    (result,) = [r for r in results.binary if r.outcome.endswith("_improved_w10")]
    improved = frame[result.outcome]
    assert set(improved.dropna()) == {True, False}
    for arm in result.arms:
        in_arm = improved[frame["arm"] == arm.arm]
        assert arm.n_analysed == in_arm.notna().sum()
        assert arm.n_events == (in_arm == True).sum()  # noqa: E712
    assert sum(arm.n_analysed for arm in result.arms) == 4


def test_completeness_rows_add_up_to_the_visits_planned(client, trial_with_data, manager):
    # A participant who died has visits "not required": a column of their own, so each
    # row's columns add up to what was planned.
    from participants import services

    last = Participant.objects.filter(trial=trial_with_data).order_by("pk").last()
    services.participant_status_change(
        participant=last, to_status="deceased", effective_on=last.randomized_on,
        reason="Died", by=manager,
    )  # fmt: skip
    client.force_login(manager)
    response = client.get(url("trial_results", trial_with_data))
    rows = response.context["r"].completeness
    assert sum(row["n_not_required"] for row in rows) == 2  # the 10-week and 1-year visits
    for row in rows:
        parts = ("n_in_window", "n_late", "n_missing", "n_not_yet_due", "n_not_required")
        assert sum(row[key] for key in parts) == row["n_total"]
    assert "Not required</th>" in response.content.decode()


def test_the_results_say_how_many_analysed_values_were_measured_outside_their_window(
    client, trial_with_data, site1, clinician, manager, statistician
):
    """The audit's case: 1-year outcomes of a participant randomized that day, recorded
    (now only with a confirmed reason) and counted in the 1-year analysis at once."""
    early = randomized(trial_with_data, site1, clinician, pain=6)
    y1 = Visit.objects.get(participant=early, definition__code="y1")
    entries = factories.baseline_entries(trial_with_data, pain=3)  # pain, RMDQ, EQ-5D
    entries.append(
        EntryInput(Instrument.objects.get(trial=trial_with_data, code="global"), {"answer": 2})
    )
    visit_record_outcomes(
        visit=y1, entries=entries, by=manager, attended_on=early.randomized_on,
        early_reason="Emigrates next month",
    )  # fmt: skip
    client.force_login(statistician)
    response = client.get(url("trial_results", trial_with_data))
    rows = {(row.label, row.visit): row for row in response.context["r"].outside_window}
    pain_y1 = rows[("Current low back pain (0–10)", "1 year")]
    assert (pain_y1.n_analysed, pain_y1.n_outside) == (1, 1)
    pain_w10 = rows[("Current low back pain (0–10)", "10 weeks")]
    assert (pain_w10.n_analysed, pain_w10.n_outside) == (5, 0)
    assert rows[("Global assessment: improved", "1 year")].n_outside == 1
    html = response.content.decode()
    assert 'id="outside-window"' in html
    assert "Values measured outside their visit window" in html


def test_values_entered_ahead_of_the_window_count_as_outside_it_while_the_visit_is_open(
    client, trial_with_data, site1, clinician, manager, statistician
):
    # Only part of the 1-year instruments entered, a year early: the visit stays open (not
    # attended, so no in-window flag), yet its pain score is analysed.
    early = randomized(trial_with_data, site1, clinician, pain=6)
    y1 = Visit.objects.get(participant=early, definition__code="y1")
    pain = factories.baseline_entries(trial_with_data, pain=3)[:1]
    visit_record_outcomes(
        visit=y1, entries=pain, by=manager, attended_on=early.randomized_on,
        early_reason="Emigrates next month",
    )  # fmt: skip
    y1.refresh_from_db()
    assert y1.outcome == Visit.Outcome.OPEN and y1.early_reason
    client.force_login(statistician)
    response = client.get(url("trial_results", trial_with_data))
    rows = {(row.label, row.visit): row for row in response.context["r"].outside_window}
    assert (rows[("Current low back pain (0–10)", "1 year")].n_outside) == 1
