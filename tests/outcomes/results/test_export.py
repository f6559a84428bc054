"""The statistician's export bundle: every member, round trips of CSV, Stata and SPSS against
the database (labels included), no direct identifiers, blinding, date shift, progress,
download permissions and expiry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from django.urls import reverse
from django.utils import timezone

from outcomes.results import export
from outcomes.results.models import ExportJob
from outcomes.results.tasks import export_cleanup, export_run
from outcomes.sms.models import SmsQuestion
from participants.models import Allocation, Participant, Visit
from tests import factories
from tests.outcomes.results.test_analysis_data import randomized, record_w10
from tests.outcomes.sms import test_tracking
from trial import blinding
from trial.models import Arm, BlindingLog, Site

# The weekly SMS fixtures of the tracking tests (real sends to the file backend, Celery eager).
SUNDAY, at = test_tracking.SUNDAY, test_tracking.at
_celery_eager, sms_file = test_tracking._celery_eager, test_tracking.sms_file
enroll, weekly, reply = test_tracking.enroll, test_tracking.weekly, test_tracking.reply

TABLES = ["participants", "visits", "sms", "screening", "allocations"]
MEMBERS = {f"{table}.{suffix}" for table in TABLES for suffix in ("csv", "dta", "sav")} | {
    "codebook.csv", "codebook.json", "read_data.R",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"


@pytest.fixture
def data(modic, site1, site2, clinician, manager):
    people = [
        randomized(modic, site1, clinician, pain=7),
        randomized(modic, site2, manager, pain=5, sex="male"),
        randomized(modic, site1, clinician, pain=9, modic="type2"),
        randomized(modic, site2, manager, pain=6),
    ]
    record_w10(people[0], manager, pain=3, answer=1)
    record_w10(people[1], manager, pain=6, answer=5, pain_not_done="refused")
    return people


def run_export(trial, user, *, blinded: bool, shift_dates: bool = False) -> ExportJob:
    job = ExportJob.objects.create(
        trial=trial, requested_by=user, blinded=blinded, shift_dates=shift_dates
    )
    assert export_run.delay(job.pk).get() == "done"
    job.refresh_from_db()
    return job


def members(job) -> dict[str, bytes]:
    with zipfile.ZipFile(job.file_path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def read_csv(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def stat_file(tmp_path: Path, name: str, content: bytes, reader):
    path = tmp_path / name
    path.write_bytes(content)
    return reader(str(path))


def test_an_export_holds_every_table_and_matches_the_database(modic, data, statistician, tmp_path):
    job = run_export(modic, statistician, blinded=True)
    assert job.status == "done" and job.progress == 100 and job.size > 0
    assert job.expires_at > timezone.now() + dt.timedelta(hours=71)
    files = members(job)
    assert set(files) == MEMBERS

    rows = read_csv(files["participants.csv"])
    assert len(rows) == Allocation.objects.filter(trial=modic).count() == 4
    by_id = {int(r["participant_id"]): r for r in rows}
    a, b, c, d = data
    codes = blinding.blind_codes(modic)
    for p in data:
        allocation = Allocation.objects.get(participant=p)
        assert by_id[p.pk]["arm"] == codes[allocation.arm_id]
        assert by_id[p.pk]["site"] == p.site.code
        assert by_id[p.pk]["randomized_on"] == str(Participant.objects.get(pk=p.pk).randomized_on)
    assert by_id[b.pk]["factor_sex"] == "male"
    assert by_id[a.pk]["bl_pain"] == "7"
    assert float(by_id[a.pk]["pain_w10"]) == 3
    assert by_id[b.pk]["pain_w10_not_done"] == "refused"
    assert by_id[a.pk]["visit_w10_date"] == "2025-03-12"
    assert by_id[a.pk]["visit_w10_in_window"] == "1"
    assert by_id[c.pk]["pain_w10"] == ""

    visits = read_csv(files["visits.csv"])
    assert len(visits) == Visit.objects.filter(trial=modic).count()
    allocations = read_csv(files["allocations.csv"])
    assert [int(r["sequence"]) for r in allocations] == [1, 2, 3, 4]
    assert set(json.loads(allocations[-1]["probabilities"])) == set(codes.values())
    assert len(read_csv(files["screening.csv"])) == 4

    # The codebook covers every column of every CSV.
    codebook = read_csv(files["codebook.csv"])
    described = {(r["table"], r["variable"]) for r in codebook}
    for table in ["participants", "visits", "sms", "screening", "allocations"]:
        header = next(csv.reader(io.StringIO(files[f"{table}.csv"].decode())))
        assert {(table, column) for column in header} <= described, table
    assert json.loads(files["codebook.json"])["variables"] == codebook
    script = files["read_data.R"].decode()
    assert 'participants <- read.csv("participants.csv"' in script
    assert 'levels = c("A", "B"), labels = c("Arm A", "Arm B")' in script


@pytest.mark.parametrize("suffix", ["dta", "sav"])
def test_stata_and_spss_files_read_back_with_values_and_labels(
    modic, data, statistician, tmp_path, suffix
):
    job = run_export(modic, statistician, blinded=True)
    files = members(job)
    reader = pyreadstat.read_dta if suffix == "dta" else pyreadstat.read_sav
    frame, meta = stat_file(tmp_path, f"p.{suffix}", files[f"participants.{suffix}"], reader)
    assert len(frame) == 4
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["arm"] == "Randomized arm (blinded code)"
    assert labels["factor_sex"] == "Minimization factor: Sex"
    value_labels = {
        name: meta.value_labels[label] for name, label in meta.variable_to_label.items()
    }
    assert sorted(value_labels["arm"].values()) == ["Arm A", "Arm B"]
    sites = dict(Site.objects.filter(trial=modic).values_list("code", "name"))
    assert set(value_labels["site"].values()) == set(sites.values())
    assert value_labels["status"][2.0 if suffix == "sav" else 2] == "Active"
    codes = blinding.blind_codes(modic)
    frame = frame.set_index("participant_id")
    for p in data:
        p = Participant.objects.get(pk=p.pk)
        row = frame.loc[p.pk]
        assert value_labels["arm"][row["arm"]] == f"Arm {codes[p.allocation.arm_id]}"
        assert value_labels["site"][row["site"]] == p.site.name
        assert value_labels["status"][row["status"]] == p.get_status_display()
        assert pd.Timestamp(row["randomized_on"]).date() == p.randomized_on
        assert row["bl_pain"] == p.baseline["pain"]
    a, b = data[:2]
    assert frame.loc[a.pk, "pain_w10"] == 3 and pd.isna(frame.loc[b.pk, "pain_w10"])
    assert value_labels["pain_w10_not_done"][frame.loc[b.pk, "pain_w10_not_done"]] == "Refused"
    assert value_labels["global_w10"][frame.loc[a.pk, "global_w10"]] == "Much better"
    visits, vmeta = stat_file(tmp_path, f"v.{suffix}", files[f"visits.{suffix}"], reader)
    assert len(visits) == Visit.objects.filter(trial=modic).count()
    assert dict(zip(vmeta.column_names, vmeta.column_labels, strict=True))["in_window"] == (
        "Attended in window"
    )


def test_no_names_phone_numbers_or_initials_anywhere_in_the_zip(modic, data, manager):
    job = run_export(modic, manager, blinded=False)
    blob = b"".join(members(job).values())
    for p in Participant.objects.filter(trial=modic):
        assert p.full_name and p.full_name.encode() not in blob
        assert p.phone and p.phone.encode() not in blob
    assert b"full_name" not in blob and b"phone" not in blob and b"initials" not in blob


def test_a_blinded_export_shows_arm_codes_only(modic, data, statistician):
    job = run_export(modic, statistician, blinded=True)
    files = members(job)
    blob = b"".join(files.values())
    for arm in Arm.objects.filter(trial=modic):
        assert arm.name.encode() not in blob and arm.description.encode() not in blob
    text = files["allocations.csv"].decode() + files["participants.csv"].decode()
    for arm in Arm.objects.filter(trial=modic):
        assert f'"{arm.code}"' not in text and f",{arm.code}," not in text


def test_an_unblinded_export_labels_arms_with_their_names(modic, data, manager):
    job = run_export(modic, manager, blinded=False)
    codebook = read_csv(members(job)["codebook.csv"])
    arm = next(r for r in codebook if r["table"] == "participants" and r["variable"] == "arm")
    assert json.loads(arm["value_labels"]) == {"rest": "Rest", "exercise": "Exercise"}


def test_shifted_dates_move_by_one_offset_per_participant_within_180_days(
    modic, data, statistician
):
    job = run_export(modic, statistician, blinded=True, shift_dates=True)
    files = members(job)
    offsets = {}
    for row in read_csv(files["participants.csv"]):
        p = Participant.objects.get(pk=row["participant_id"])
        offsets[p.pk] = (dt.date.fromisoformat(row["randomized_on"]) - p.randomized_on).days
    assert all(-180 <= days <= 180 for days in offsets.values())
    assert len(set(offsets.values())) > 1  # 4 people sharing one offset: 1 in 361**3
    for row in read_csv(files["visits.csv"]):
        visit = Visit.objects.get(
            participant_id=row["participant_id"], definition__code=row["visit"]
        )
        shift = offsets[visit.participant_id]
        assert dt.date.fromisoformat(row["target_date"]) - visit.target_date == dt.timedelta(
            days=shift
        )
        if visit.attended_on:
            assert (dt.date.fromisoformat(row["attended_on"]) - visit.attended_on).days == shift


def test_the_offset_is_deterministic_per_salt_and_differs_between_exports():
    one, two = export.Shifter(True, b"salt-1"), export.Shifter(True, b"salt-2")
    assert one.offset(42) == export.Shifter(True, b"salt-1").offset(42)
    assert [one.offset(n) for n in range(50)] != [two.offset(n) for n in range(50)]
    assert export.Shifter(False).offset(42) == 0


# --- Views ------------------------------------------------------------------------------------


def test_a_statistician_starts_an_export_follows_it_and_downloads_it(
    client, modic, data, statistician, django_capture_on_commit_callbacks
):
    client.force_login(statistician)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("trial_export_start", args=[modic.code]))
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.requested_by == statistician and job.blinded and job.status == "done"
    status = client.get(reverse("trial_export_status", args=[modic.code, job.pk])).json()
    assert status["progress"] == 100 and status["status"] == "done"
    download = client.get(status["download_url"])
    assert download.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()
    page = client.get(reverse("trial_results", args=[modic.code])).content.decode()
    assert status["download_url"] in page and "<progress" in page and "export.js" in page
    assert not BlindingLog.objects.exists()


def test_a_trial_managers_export_while_blinded_is_audited(
    client, modic, data, manager, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("trial_export_start", args=[modic.code]), {"shift_dates": "1"})
    job = ExportJob.objects.get()
    assert not job.blinded and job.shift_dates
    log = BlindingLog.objects.get()
    assert log.user == manager and log.action == BlindingLog.Action.EXPORTED


def test_downloads_are_for_the_requester_or_a_trial_manager_until_expiry(
    client, modic, data, statistician, manager, clinician
):
    job = run_export(modic, statistician, blinded=True)
    url = reverse("trial_export_download", args=[modic.code, job.pk])
    client.force_login(clinician)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    other = factories.persona("Statistician", trial=modic, username="stat2", staff=True)
    client.force_login(other)
    assert client.get(url).status_code == 404
    assert client.get(reverse("trial_export_status", args=[modic.code, job.pk])).status_code == 404
    client.force_login(manager)
    assert client.get(url).status_code == 200
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - dt.timedelta(hours=1))
    assert client.get(url).status_code == 410
    assert export_cleanup.delay().get() == 1
    assert not Path(job.file_path).exists()
    assert client.get(url).status_code == 404


def test_a_failed_build_marks_the_job_failed_with_the_error(modic, statistician, monkeypatch):
    def boom(job):
        raise ValueError("disk full")

    monkeypatch.setattr(export, "export_build", boom)
    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    assert export_run.delay(job.pk).get() == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "disk full" in job.error
    assert export_run.delay(job.pk).get() == "skipped"


def test_the_sms_table_has_one_row_per_week_and_question_with_sent_answer_and_raw_reply(
    modic,
    statistician,
    enroll,
    weekly,
    reply,
):
    p = enroll(SUNDAY - 3 * dt.timedelta(days=1))
    weekly(at(SUNDAY, 18, 1))
    reply(p, "3 eller 4", at(SUNDAY, 19))  # not understood: the raw reply is still kept
    reply(p, "3 dage", at(SUNDAY, 19, 5))
    job = run_export(modic, statistician, blinded=True)
    files = members(job)
    rows = read_csv(files["sms.csv"])
    questions = SmsQuestion.objects.filter(trial=modic).order_by("order")
    assert [(r["week"], r["question"]) for r in rows] == [("1", q.code) for q in questions]
    first, second = rows[0], rows[1]
    assert (first["sent"], first["answered"], first["value"]) == ("1", "1", "3")
    assert first["raw_reply"] == "3 eller 4" and first["reply_kind"] == "invalid"
    assert first["sent_at"] and first["answered_at"].startswith(SUNDAY.isoformat())
    assert second["sent"] == "1" and second["answered"] == "0" and second["value"] == ""
    assert p.phone.encode() not in b"".join(files.values())


def _same_as_csv(csv_value: str, stat_value, variable: dict, value_labels: dict) -> bool:
    """Does a .dta/.sav cell hold what the CSV cell says, by the codebook's type?"""
    empty = (
        stat_value is None
        or stat_value == ""
        or (not isinstance(stat_value, str) and pd.isna(stat_value))
    )
    if csv_value == "":
        return empty
    if variable["value_labels"]:
        labels = json.loads(variable["value_labels"])
        return value_labels.get(stat_value) == labels[csv_value]
    if variable["type"] in {"integer", "number"}:
        return float(csv_value) == float(stat_value)
    if variable["type"] == "date":
        return pd.Timestamp(stat_value).date().isoformat() == csv_value
    if variable["type"] == "datetime":
        return pd.Timestamp(stat_value).to_pydatetime().isoformat(timespec="seconds") == csv_value
    return stat_value == csv_value


@pytest.mark.parametrize("suffix", ["dta", "sav"])
def test_every_tables_stata_and_spss_files_hold_what_its_csv_holds(
    modic, data, statistician, enroll, weekly, reply, tmp_path, suffix
):
    p = enroll(SUNDAY - 3 * dt.timedelta(days=1))
    weekly(at(SUNDAY, 18, 1))
    reply(p, "4 dage, æv", at(SUNDAY, 19))
    files = members(run_export(modic, statistician, blinded=True, shift_dates=True))
    codebook = read_csv(files["codebook.csv"])
    reader = pyreadstat.read_dta if suffix == "dta" else pyreadstat.read_sav
    for table in TABLES:
        rows = read_csv(files[f"{table}.csv"])
        assert rows, table
        frame, meta = stat_file(tmp_path, f"{table}.{suffix}", files[f"{table}.{suffix}"], reader)
        assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows), table
        variables = {v["variable"]: v for v in codebook if v["table"] == table}
        labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
        for name, variable in variables.items():
            assert labels[name] == variable["label"][:80], (table, name)
            value_labels = meta.value_labels.get(meta.variable_to_label.get(name), {})
            for i, row in enumerate(rows):
                cell = frame[name].iloc[i]
                assert _same_as_csv(row[name], cell, variable, value_labels), (table, name, i)


def test_dates_are_stata_and_spss_dates(modic, data, statistician, tmp_path):
    files = members(run_export(modic, statistician, blinded=True))
    _, dta = stat_file(tmp_path, "p.dta", files["participants.dta"], pyreadstat.read_dta)
    _, sav = stat_file(tmp_path, "p.sav", files["participants.sav"], pyreadstat.read_sav)
    assert dta.original_variable_types["randomized_on"] == "%td"
    assert sav.original_variable_types["randomized_on"].startswith("DATE")


def test_the_consort_numbers_reconcile_with_the_exported_tables(
    modic, data, statistician, manager, site1, clinician
):
    from outcomes.results.selectors import consort_counts
    from participants import services
    from trial import blinding

    duplicate = factories.screened(modic, site1, clinician)
    services.screening_void(screening=duplicate, reason="Entered twice", by=manager)
    job = run_export(modic, statistician, blinded=True)
    files = members(job)
    participants = read_csv(files["participants.csv"])
    codes = blinding.blind_codes(modic)
    arms = {arm.code: codes[arm.pk] for arm in modic.arms.all()}
    flow = consort_counts(modic, [(code, f"Arm {c}") for code, c in arms.items()], today())
    assert flow.randomized == len(participants)
    visits = read_csv(files["visits.csv"])
    for arm in flow.arms:
        rows = [p for p in participants if p["arm"] == arms[arm.code]]
        assert arm.allocated == len(rows)
        analysed = arm.visits[0]
        assert analysed.analysed == sum(1 for p in rows if p["pain_w10"] != "")
        ids = {p["participant_id"] for p in rows}
        assert len([v for v in visits if v["participant_id"] in ids and v["visit"] == "w10"]) == (
            arm.allocated
        )
    screening = read_csv(files["screening.csv"])
    assert flow.assessed == len([row for row in screening if row["voided"] == "0"])


def test_the_export_keeps_a_voided_screening_with_its_flag_and_reason(
    modic, data, statistician, manager, site1, clinician
):
    from participants import services

    duplicate = factories.screened(modic, site1, clinician)
    services.screening_void(screening=duplicate, reason="Entered twice", by=manager)
    job = run_export(modic, statistician, blinded=True)
    files = members(job)
    rows = {int(r["screening_id"]): r for r in read_csv(files["screening.csv"])}
    assert len(rows) == 5
    assert (rows[duplicate.pk]["voided"], rows[duplicate.pk]["void_reason"]) == (
        "1",
        "Entered twice",
    )
    others = [r for pk, r in rows.items() if pk != duplicate.pk]
    assert {(r["voided"], r["void_reason"]) for r in others} == {("0", "")}
    codebook = {(r["table"], r["variable"]): r for r in read_csv(files["codebook.csv"])}
    assert "not counted" in codebook[("screening", "voided")]["label"]


def today():
    from participants.services import trial_today
    from trial.models import Trial

    return trial_today(Trial.objects.get(code="MOD"))


def test_arm_codes_in_the_allocation_json_are_rewritten_by_shape_only(modic, data, statistician):
    """A factor or level whose code equals an arm code keeps it: only the positions that hold
    arm codes (counts' inner keys, scores, probabilities, the settings' arm list) change."""
    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    builder = export.tables.Builder(job, zipfile.ZipFile(io.BytesIO(), "w"), lambda *a: None)
    builder.arm_map = {"rest": "B", "exercise": "A"}
    counts, scores, probabilities, used = builder.allocation_json(
        {"rest": {"rest": 2, "exercise": 1}, "sex": {"rest": 0, "exercise": 3}},
        {"rest": 1.5, "exercise": 0.5},
        {"rest": "0.2", "exercise": "0.8"},
        {"arms": ["rest", "exercise"], "weights": {"rest": 1}, "imbalance_measure": "range"},
    )
    assert counts == {"rest": {"B": 2, "A": 1}, "sex": {"B": 0, "A": 3}}
    assert scores == {"B": 1.5, "A": 0.5} and probabilities == {"B": "0.2", "A": "0.8"}
    assert used == {"arms": ["A", "B"], "weights": {"rest": 1}, "imbalance_measure": "range"}


def test_a_job_whose_worker_died_is_marked_failed_and_no_longer_blocks_a_new_one(
    client, modic, data, statistician, settings
):
    from outcomes.results import services

    settings.EXPORT_STALE_MINUTES = 20
    stuck = ExportJob.objects.create(
        trial=modic, requested_by=statistician, blinded=True, status="running", progress=40
    )
    partial = Path(settings.EXPORT_DIR) / f"{stuck.pk}-abc.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half a zip")
    now = timezone.now()
    ExportJob.objects.filter(pk=stuck.pk).update(heartbeat_at=now - dt.timedelta(minutes=5))
    assert services.export_sweep(now) == {"failed": 0, "requeued": 0}  # still beating
    later = now + dt.timedelta(minutes=30)
    assert services.export_sweep(later) == {"failed": 1, "requeued": 0}
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "start a new one" in stuck.error and not partial.exists()
    # Its requester can start again at once (a stalled job is not "pending").
    ExportJob.objects.filter(pk=stuck.pk).update(status="running")
    ExportJob.objects.filter(pk=stuck.pk).update(heartbeat_at=now - dt.timedelta(hours=1))
    client.force_login(statistician)
    response = client.post(
        reverse("trial_export_start", args=[modic.code]), HTTP_ACCEPT="application/json"
    )
    assert response.json()["id"] != stuck.pk and response.json()["status"] == "queued"


def test_a_job_never_claimed_is_handed_to_the_broker_again(
    modic, data, statistician, django_capture_on_commit_callbacks
):
    from outcomes.results import services

    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    later = timezone.now() + dt.timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.export_sweep(later) == {"failed": 0, "requeued": 1}
    job.refresh_from_db()
    assert job.status == "done"  # the re-sent task ran (eager here) and built it
    assert export_run.delay(job.pk).get() == "skipped"  # a duplicate task is a no-op


def test_a_job_swept_while_its_worker_was_merely_slow_discards_the_late_file(
    modic, data, statistician, monkeypatch, settings
):
    from outcomes.results import services

    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    real_build = export.export_build

    def slow_build(j):
        path = real_build(j)
        services.export_sweep(timezone.now() + dt.timedelta(hours=2))  # meanwhile: swept
        return path

    monkeypatch.setattr(export, "export_build", slow_build)
    assert export_run.delay(job.pk).get() == "stalled"
    job.refresh_from_db()
    assert job.status == "failed" and not job.file_path
    assert not list(Path(settings.EXPORT_DIR).glob(f"{job.pk}-*"))


def test_names_that_are_reserved_words_in_stata_or_spss_get_a_suffix():
    assert export.safe_name("in") == "in_" and export.safe_name("TO") == "TO_"
    assert export.safe_name("str12") == "str12_" and export.safe_name("income") == "income"


def test_long_variable_names_are_cut_to_32_characters_and_stay_distinct():
    long_a = "instrument_code_of_thirty_chars_improved_y1"
    long_b = "instrument_code_of_thirty_chars_improved_y2"
    assert len(export.safe_name(long_a)) == 32
    assert export.safe_name(long_a) != export.safe_name(long_b)
    assert export.safe_name("pain_w10") == "pain_w10"


def test_a_second_start_while_one_is_pending_reuses_it(client, modic, data, statistician):
    client.force_login(statistician)
    # Not run (no on-commit execution here): the first stays queued.
    client.post(reverse("trial_export_start", args=[modic.code]))
    client.post(reverse("trial_export_start", args=[modic.code]))
    assert ExportJob.objects.count() == 1


def test_downloading_a_names_export_while_blinded_is_audited_and_refused_to_the_blinded(
    client, modic, data, manager, statistician
):
    from trial.models import BlindingLog

    job = run_export(modic, manager, blinded=False)
    client.force_login(manager)
    before = BlindingLog.objects.filter(action="exported").count()
    response = client.get(reverse("trial_export_download", args=[modic.code, job.pk]))
    assert response.status_code == 200
    assert BlindingLog.objects.filter(action="exported").count() == before + 1
    # The same person, no longer a trial manager, is blinded: the names export is gone.
    from trial.models import Membership

    Membership.objects.filter(user=manager, trial=modic).update(
        trial_manager=False, statistician=True
    )
    client.force_login(type(manager).objects.get(pk=manager.pk))
    response = client.get(reverse("trial_export_download", args=[modic.code, job.pk]))
    assert response.status_code == 404


@pytest.mark.postgres
def test_the_servers_sms_csv_is_the_generic_paths_table_value_for_value(
    modic, statistician, enroll, weekly, reply, tmp_path
):
    """On PostgreSQL the SMS table is written by the server (COPY); on SQLite row by row in
    Python. Both must give the same table: shifted dates, local times, the first reply."""
    from outcomes.results.export import sms_copy, tables

    people = [enroll(SUNDAY - dt.timedelta(days=d)) for d in (3, 4)]
    weekly(at(SUNDAY, 18, 1))
    reply(people[0], "3 eller 4", at(SUNDAY, 19))
    reply(people[0], "2", at(SUNDAY, 19, 5))
    reply(people[0], "5", at(SUNDAY, 19, 6))
    reply(people[1], 'ææ "quoted", and a comma', at(SUNDAY, 20))
    weekly(at(SUNDAY + dt.timedelta(days=7), 18, 1))
    job = ExportJob.objects.create(
        trial=modic, requested_by=statistician, blinded=True, shift_dates=True
    )
    builder = tables.Builder(job, zipfile.ZipFile(io.BytesIO(), "w"), lambda *a: None)
    questions = list(
        SmsQuestion.objects.filter(trial=modic)
        .order_by("order", "pk")
        .values_list("pk", "code", "label", "min_value", "max_value")
    )
    builder.sms_variables(questions)
    variables = [v for v in builder.codebook if v.table == "sms"]
    generic = [
        [export.codebook.csv_cell(value, v.type) for value, v in zip(row, variables, strict=True)]
        for row in builder._sms_rows(questions, 0, 100)
    ]
    path = tmp_path / "sms.csv"
    count = sms_copy.sms_csv(modic, builder.shifter, [v.name for v in variables], path)
    with open(path, encoding="utf-8", newline="") as handle:
        served = list(csv.reader(handle))
    assert served[0] == [v.name for v in variables]
    assert count == len(generic) == len(served) - 1 == 8
    assert served[1:] == [[str(cell) for cell in row] for row in generic]
    assert any(row[-2] == 'ææ "quoted", and a comma' for row in served)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sms_copy_running_beside_the_other_tables_gives_the_same_bundle(
    modic, data, statistician, enroll, weekly, reply, monkeypatch
):
    """Outside a transaction (the export task) the server writes the SMS table on a
    connection of its own while the other tables are built; inside one (where a second
    connection could not see the rows) it is written in turn. Same bundle either way, the
    codebook in the tables' order."""
    from django.db import transaction

    from outcomes.results.export import sms_copy

    people = [enroll(SUNDAY - dt.timedelta(days=d)) for d in (3, 4, 5)]
    weekly(at(SUNDAY, 18, 1))
    reply(people[0], "3", at(SUNDAY, 19))
    reply(people[1], "nej tak, ææ", at(SUNDAY, 19, 5))  # 13 bytes: the .dta's width
    started, widths = [], []
    real = sms_copy.Background

    def spy(work, *, name):
        started.append(name)
        return real(work, name=name)

    monkeypatch.setattr(sms_copy, "Background", spy)
    real_width = sms_copy.SmsStream.reply_width
    monkeypatch.setattr(
        sms_copy.SmsStream,
        "reply_width",
        lambda self: widths.append(real_width(self)) or widths[-1],
    )
    beside = run_export(modic, statistician, blinded=True)
    # The COPY, and the width queried in its snapshot on a third connection.
    assert started == ["export-sms-copy", "export-sms-width"] and widths == [13]
    in_turn = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    with transaction.atomic():
        export.export_build(in_turn)
    assert len(started) == 2  # not again inside the transaction

    with zipfile.ZipFile(in_turn.file_path) as zf:
        expected = {name: zf.read(name) for name in zf.namelist()}
    got = members(beside)
    assert set(got) == set(expected) == MEMBERS
    for name in sorted(MEMBERS):
        assert got[name] == expected[name], name
    assert read_csv(got["sms.csv"]) and any(
        row["raw_reply"] == "nej tak, ææ" for row in read_csv(got["sms.csv"])
    )
    tables_in_order = [row["table"] for row in read_csv(got["codebook.csv"])]
    assert sorted(set(tables_in_order), key=tables_in_order.index) == TABLES


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_step_waits_for_the_sms_copy_and_leaves_no_files(
    modic, data, statistician, monkeypatch, settings
):
    from outcomes.results.export import tables

    def broken(self):
        raise RuntimeError("visits failed")

    monkeypatch.setattr(tables.Builder, "visits", broken)
    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    with pytest.raises(RuntimeError, match="visits failed"):
        export.export_build(job)
    assert list(Path(settings.EXPORT_DIR).rglob("*")) == []
    assert "export-sms-copy" not in {thread.name for thread in threading.enumerate()}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_copy_failing_midway_fails_the_export_with_its_own_error(
    modic, data, statistician, monkeypatch, settings
):
    """The stat files are read from the CSV while the COPY writes it: a COPY that breaks
    after some rows must not leave a bundle made from half a table."""
    from outcomes.results.export import sms_copy

    def broken(trial, shifter, header, path):
        path.write_bytes((",".join(header) + "\n").encode() + b"1,1,2026-01-01,pain_days,1,")
        raise RuntimeError("the COPY broke")

    monkeypatch.setattr(sms_copy, "sms_csv", broken)
    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    with pytest.raises(RuntimeError, match="the COPY broke"):
        export.export_build(job)
    assert list(Path(settings.EXPORT_DIR).rglob("*")) == []
    threads = {"export-sms-copy", "export-sms-width", "export-sms-compress"}
    assert not threads & {t.name for t in threading.enumerate()}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_a_connection_for_the_width_the_csv_is_measured_instead(
    modic, data, statistician, enroll, weekly, reply, monkeypatch, caplog
):
    """The width query's connection is killed (as a pooler or max_connections would refuse
    one): the export waits for the COPY, measures the finished CSV, and gives the bundle
    it gives inside a transaction."""
    from django.db import transaction

    from outcomes.results.export import sms_copy

    person = enroll(SUNDAY - dt.timedelta(days=3))
    weekly(at(SUNDAY, 18, 1))
    reply(person, "fire eller fem", at(SUNDAY, 19))
    monkeypatch.setattr(sms_copy, "_REPLY_WIDTH", "SELECT pg_terminate_backend(pg_backend_pid())")
    measured = run_export(modic, statistician, blinded=True)
    assert "reply width query failed" in caplog.text
    in_turn = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    with transaction.atomic():
        export.export_build(in_turn)
    with zipfile.ZipFile(in_turn.file_path) as zf:
        expected = {name: zf.read(name) for name in zf.namelist()}
    got = members(measured)
    for name in sorted(MEMBERS):
        assert got[name] == expected[name], name
    assert any(row["raw_reply"] == "fire eller fem" for row in read_csv(got["sms.csv"]))


def test_a_growing_file_is_read_to_its_end_as_it_is_written(tmp_path):
    from outcomes.results.export.sms_copy import _Growing

    path = tmp_path / "growing.csv"
    path.touch()
    finished = threading.Event()
    pieces = [b"participant_id,week\n"] + [f"{i},{i % 62}\n".encode() for i in range(2000)]

    def write():
        with open(path, "ab") as out:
            for i, piece in enumerate(pieces):
                out.write(piece)
                if i % 500 == 0:
                    out.flush()
                    time.sleep(0.06)  # longer than the reader's poll: it must wait, not stop
        finished.set()

    writer = threading.Thread(target=write)
    writer.start()
    with io.BufferedReader(_Growing(path, finished)) as growing:
        read = growing.read()
    writer.join()
    assert read == b"".join(pieces)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_copy_the_server_refuses_fails_the_export_with_the_servers_error(
    modic, data, statistician, monkeypatch, settings
):
    """The COPY runs inside a transaction: after the server's error the transaction is
    aborted, and cleaning up in it would raise "current transaction is aborted" instead."""
    from django.db import DataError

    from outcomes.results.export import sms_copy

    monkeypatch.setattr(sms_copy, "_QUERY", "SELECT 1 / 0")
    job = ExportJob.objects.create(trial=modic, requested_by=statistician, blinded=True)
    with pytest.raises(DataError, match="division by zero"):
        export.export_build(job)
    assert list(Path(settings.EXPORT_DIR).rglob("*")) == []
