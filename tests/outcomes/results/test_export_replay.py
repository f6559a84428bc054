"""Every allocation replays from an unblinded export bundle alone (issue 15, item 1).

The replay below is written here, from the allocation log's own description (the codebook),
without participants.minimization: for each row in sequence order it recounts, from the
earlier rows, how many participants with this row's factor levels went to each arm's slot
(an arm with allocation ratio w has w slots), scores every slot by the weighted imbalance
after adding the participant there, gives the minimizing slots p and the others 1 − p
(equal shares; all slots alike during the initial random allocations or when all tie),
walks the draw over the slots in the logged arm order, and must land on the logged arm and
slot. Two designs: the demo's (two arms, four factors) and three arms at 2:2:1 with the site
as a factor, a site opened midway and initial random allocations.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import zipfile

import pytest

from outcomes.results import export
from outcomes.results.models import ExportJob
from outcomes.results.tasks import export_run
from participants.services import participant_randomize
from tests import factories
from trial.models import Site

N = 60


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"


def bundle(trial, user, *, blinded: bool = False) -> dict[str, bytes]:
    job = ExportJob.objects.create(trial=trial, requested_by=user, blinded=blinded)
    assert export_run.delay(job.pk).get() == "done"
    job.refresh_from_db()
    with zipfile.ZipFile(job.file_path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rows_of(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def recruit(trial, sites, by, n: int, *, seed: int, first: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(first, first + n):
        participant = factories.enrolled_participant(
            trial, sites[i % len(sites)], by,
            age=rng.randint(18, 60), pain=rng.randint(4, 10),
            modic=rng.choice(["type1", "type2"]), sex=rng.choice(["female", "male"]),
        )  # fmt: skip
        participant_randomize(participant=participant, by=by, rng=random.Random(seed * 1000 + i))


# --- The independent replay -------------------------------------------------------------------


def spread(value) -> list:
    """A logged per-arm value: one number, or a list with one per slot."""
    return value if isinstance(value, list) else [value]


def replay(log: list[dict]) -> list[tuple[str, int]]:
    """(arm, slot) that each row's draw picks, from the log alone: the counts each row saw
    are recounted from the arms and slots the earlier rows logged (a v1 log has no slot
    column: one slot per arm)."""
    tally: dict[tuple[str, str, str, int], int] = {}  # (factor, level, arm, slot) -> n
    chosen = []
    for row in sorted(log, key=lambda r: int(r["sequence"])):
        used = json.loads(row["settings_used"])
        ratios = used.get("ratios") or dict.fromkeys(used["arms"], 1)
        places = [(arm, k) for arm in used["arms"] for k in range(1, ratios[arm] + 1)]
        levels = json.loads(row["factor_levels"])
        weights = used["weights"]

        def spread_of(counts: list[float], measure=used["imbalance_measure"]) -> float:
            if measure == "range":
                return max(counts) - min(counts)
            mean = math.fsum(counts) / len(counts)
            var = sum((c - mean) ** 2 for c in counts) / len(counts)
            return var if measure == "variance" else math.sqrt(var)

        score = {}
        for place in places:
            total = 0.0
            for factor, level in levels.items():
                counts = [
                    tally.get((factor, level, *other), 0) + (other == place) for other in places
                ]
                total += float(weights[factor]) * spread_of(counts)
            score[place] = total
        # The logged counts are the recount.
        seen = json.loads(row["counts_seen"])
        for factor, level in levels.items():
            for arm in used["arms"]:
                recount = [tally.get((factor, level, arm, k), 0) for k in range(1, ratios[arm] + 1)]
                assert spread(seen[factor][arm]) == recount, (row["sequence"], factor, arm)

        initial = int(row["sequence"]) <= used["initial_random_allocations"]
        assert row["method"] == ("random" if initial else "minimization")
        lowest = min(score.values())
        best = [pl for pl in places if score[pl] - lowest <= 1e-9]
        p = float(used["preferred_probability"])
        if initial or len(best) == len(places):
            chance = {pl: 1.0 / len(places) for pl in places}
        else:
            rest = len(places) - len(best)
            chance = {pl: p / len(best) if pl in best else (1.0 - p) / rest for pl in places}
        logged = json.loads(row["probabilities"])
        for arm in used["arms"]:
            mine = [chance[(arm, k)] for k in range(1, ratios[arm] + 1)]
            assert spread(logged[arm]) == pytest.approx(mine, abs=1e-15), row["sequence"]
        logged_scores = json.loads(row["scores"])
        for arm in used["arms"]:
            mine = [score[(arm, k)] for k in range(1, ratios[arm] + 1)]
            assert spread(logged_scores[arm]) == pytest.approx(mine, abs=1e-9), row["sequence"]

        u = float(row["draw"])
        running, pick = 0.0, None
        for place in places:
            running += chance[place]
            if u < running and chance[place] > 0:
                pick = place
                break
        if pick is None:  # a sum a hair under 1: the last possible slot
            pick = next(pl for pl in reversed(places) if chance[pl] > 0)
        chosen.append(pick)
        for factor, level in levels.items():
            key = (factor, level, row["arm"], int(row.get("slot") or 1))
            tally[key] = tally.get(key, 0) + 1
    return chosen


def assert_every_allocation_replays(files: dict[str, bytes]) -> list[dict]:
    log = sorted(rows_of(files["allocations.csv"]), key=lambda r: int(r["sequence"]))
    replayed = replay(log)
    logged = [(row["arm"], int(row.get("slot") or 1)) for row in log]
    mismatches = [
        (row["sequence"], mine, theirs)
        for row, mine, theirs in zip(log, replayed, logged, strict=True)
        if mine != theirs
    ]
    assert not mismatches, f"{len(mismatches)} of {len(log)} do not replay: {mismatches[:5]}"
    return log


# --- Tests -----------------------------------------------------------------------------------


def test_every_allocation_of_the_demo_design_replays_from_the_unblinded_export(
    modic, site1, site2, clinician, manager
):
    modic.initial_random_allocations = 4
    modic.save(update_fields=["initial_random_allocations"])
    recruit(modic, [site1, site2], clinician, N, seed=1)
    files = bundle(modic, manager)
    log = assert_every_allocation_replays(files)
    assert len(log) == N
    # The configured order, not the alphabetical one: the draw walks the arms in it.
    assert {tuple(json.loads(r["settings_used"])["arms"]) for r in log} == {("rest", "exercise")}
    assert {r["arm"] for r in log} == {"rest", "exercise"}


def test_every_allocation_of_a_2_2_1_design_with_a_site_factor_replays_from_the_export(
    modic, site1, site2, clinician, manager
):
    factories.three_arm_site_design(modic, initial_random=5)
    recruit(modic, [site1, site2], clinician, N // 2, seed=2)
    # A site opens while the trial recruits: its level comes into being, and its
    # participants' allocations replay like the others.
    site3 = Site.objects.create(trial=modic, code="03", name="Third Centre")
    recruit(modic, [site1, site2, site3], clinician, N // 2, seed=3, first=N // 2)
    files = bundle(modic, manager)
    log = assert_every_allocation_replays(files)
    assert len(log) == N
    used = json.loads(log[-1]["settings_used"])
    assert used["arms"] == ["rest", "exercise", "sham"]
    assert used["ratios"] == {"rest": 2, "exercise": 2, "sham": 1}
    assert {json.loads(r["factor_levels"])["site"] for r in log} == {"01", "02", "03"}
    assert {int(r["slot"]) for r in log if r["arm"] == "rest"} == {1, 2}
    # The participants table shows the site factor with the sites' names.
    codebook = json.loads(files["codebook.json"])["variables"]
    site_factor = next(
        v for v in codebook if v["table"] == "participants" and v["variable"] == "factor_site"
    )
    assert json.loads(site_factor["value_labels"])["03"] == "Third Centre"


def test_the_codebook_says_how_to_replay_and_that_a_blinded_log_does_not_replay_the_draw(
    modic, site1, clinician, manager, statistician
):
    recruit(modic, [site1], clinician, 4, seed=4)
    for blinded, user in ((False, manager), (True, statistician)):
        files = bundle(modic, user, blinded=blinded)
        codebook = rows_of(files["codebook.csv"])
        notes = {r["variable"]: r["notes"] for r in codebook if r["table"] == "allocations"}
        assert "configured order" in notes["settings_used"]
        assert "slot" in notes
        meta = json.loads(files["codebook.json"])
        if blinded:
            assert "cannot be replayed" in notes["settings_used"]
            assert "cannot be replayed" in meta["allocation_replay"]
            used = json.loads(rows_of(files["allocations.csv"])[0]["settings_used"])
            assert used["arms"] == sorted(used["arms"]) and set(used["ratios"]) == {"A", "B"}
        else:
            assert "replays" in meta["allocation_replay"]


def test_the_arm_list_keeps_the_configured_order_unless_blinded(modic, manager, statistician):
    used = {"arms": ["rest", "exercise"], "ratios": {"rest": 2, "exercise": 1}}
    for blinded, user in ((False, manager), (True, statistician)):
        job = ExportJob.objects.create(trial=modic, requested_by=user, blinded=blinded)
        builder = export.tables.Builder(job, zipfile.ZipFile(io.BytesIO(), "w"), lambda *a: None)
        builder.arm_map = (
            {"rest": "B", "exercise": "A"} if blinded else {"rest": "rest", "exercise": "exercise"}
        )
        *_, shown = builder.allocation_json({}, {}, {}, used)
        if blinded:
            assert shown == {"arms": ["A", "B"], "ratios": {"B": 2, "A": 1}}
        else:
            assert shown == used
