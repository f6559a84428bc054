"""Randomization by minimization, and the recount that audits its maintained counts."""

from __future__ import annotations

import random

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from participants import minimization
from participants.models import Allocation, FactorLevelCount, Participant, Visit
from participants.selectors import trial_config
from participants.services.common import require_recruiting
from participants.services.followup import visits_planned
from trial import batch
from trial.models import FactorLevel, Site, Trial

# --- Randomization --------------------------------------------------------------------------


class _Retry(Exception):
    """Something read before the trial lock changed while waiting for it (rare): start over."""


def participant_randomize(
    *, participant: Participant, by, rng: random.Random | None = None
) -> tuple[Allocation, bool]:
    """Allocate the participant to an arm by minimization. Returns (allocation, created).

    Idempotent: a participant who already has an allocation gets that one back, so a
    double click, a refresh or a resubmitted form never allocates twice.
    """
    for _attempt in range(RETRIES):
        try:
            return _randomize(participant, by, rng)
        except _Retry:
            continue  # everything was rolled back; read it all again
    raise ValidationError(
        "The trial's configuration changed while randomizing; nothing was saved. Try again.",
        code="retry",
    )


# Attempts when the configuration or the date changes during the wait for the trial lock:
# each is a rollback and a fresh start; running out of them means edits keep landing in
# that wait, and the user is asked to try again.
RETRIES = 3


@transaction.atomic
def _randomize(participant: Participant, by, rng) -> tuple[Allocation, bool]:
    # Randomizations in a trial queue on the trial row lock (step 4) — minimization reads
    # the per-level counts and the sequence counter, which must not change under it — and
    # every statement from that lock to COMMIT serializes every randomization of the trial
    # (make bench: bench_enroll). So the work that needs only the participant (checks,
    # visits, the baseline link) is done before taking it, and what follows it is one
    # counts read and one batch of plain statements (trial.batch). On SQLite the IMMEDIATE
    # transaction already holds the database write lock.
    #
    # Lock order: participant, then trial. No other code locks a participant while
    # holding the trial row (blinding locks the trial alone; configuration edits update
    # it and touch no participant). Both locks are FOR NO KEY UPDATE: they exclude other
    # writers of the row (the other services lock participants FOR UPDATE, which conflicts)
    # but not the key-share locks that inserting any row referencing the trial or the
    # participant takes (an SMS reply, a visit, an outcome), which FOR UPDATE would make
    # wait for us.

    # 1. Lock and re-read the participant, with the site and the trial (not locked yet). A
    #    second request for the same participant waits here and then finds the first's
    #    allocation, read by a statement of its own: the rows joined to a locked row come
    #    from before the wait (READ COMMITTED), only the locked row itself is re-read.
    participant = (
        Participant.objects.select_for_update(of=("self",), no_key=True)
        .select_related("site", "trial")
        .get(pk=participant.pk)
    )
    if participant.is_randomized:
        existing = Allocation.objects.select_related("arm").filter(participant=participant)
        return existing.get(), False

    # 2. Preconditions (those on the trial row are checked again under its lock).
    trial = participant.trial
    if participant.status != Participant.Status.ENROLLED:
        raise ValidationError(
            f"This participant is {participant.get_status_display().lower()} and cannot be "
            "randomized.",
            code="not_enrolled",
        )
    config = trial_config(trial)
    ratios = {arm.code: arm.allocation_ratio for arm in config.arms}
    _require_room(trial, ratios)
    if not participant.baseline_complete:
        raise ValidationError("Complete the baseline form before randomizing.", code="no_baseline")
    if len(config.arms) < 2:
        raise ValidationError("The trial needs at least two arms to randomize.", code="config")
    # The site factor's level is the site's, whatever the baseline stored (it may predate
    # the factor); the other levels are the baseline's.
    factor_levels = {**participant.factor_levels, **config.site_levels(participant.site_id)}
    for factor in config.factors:
        if factor.kind == "site" and factor.code not in factor_levels:
            raise ValidationError(
                gettext(
                    "The site %(site)s has no level of the factor %(factor)s yet; a trial "
                    "manager can give it one by saving the site in the admin."
                )
                % {"site": participant.site.code, "factor": factor.name},
                code="config",
            )
    missing = [f.name for f in config.factors if f.code not in factor_levels]
    if missing:
        raise ValidationError(
            f"Baseline lacks the minimization factor(s) {', '.join(missing)}; "
            "enter the baseline again.",
            code="no_baseline",
        )
    level_ids = {}
    for factor in config.factors:
        level = factor.level(factor_levels[factor.code])
        if level is None:
            raise ValidationError(f"Stored level for {factor.name} no longer exists.")
        level_ids[factor.code] = level.id

    # 3. The visit schedule from today's date in the trial's zone (no randomized
    #    participant without it) and the baseline instruments' link to the baseline visit,
    #    with their history rows: one batch, before the trial lock.
    now = timezone.now()
    randomized_on = timezone.localdate(now, timezone=trial.zone)
    participant.randomized_on = randomized_on
    visits = visits_planned(participant=participant, by=by, definitions=config.visits, now=now)
    statements = _baseline_links(participant, config.visits, by, now)
    if visits:  # a trial may have no visit schedule
        statements[:0] = [
            batch.insert(visits),
            # reason "": what simple-history's bulk_history_create records without one
            batch.history_copy(
                Visit,
                where="participant_id = %s",
                params=[participant.pk],
                history_type="+",
                user_id=by.pk,
                when=now,
                reason="",
            ),
        ]
    if statements:
        batch.execute(statements)

    # 4. Lock the trial row. If its configuration or the date moved while we waited, what
    #    was planned above may be wrong: roll back and start over.
    trial = Trial.objects.select_for_update(no_key=True).get(pk=trial.pk)
    now = timezone.now()
    if (
        trial.config_version != participant.trial.config_version
        or timezone.localdate(now, timezone=trial.zone) != randomized_on
    ):
        raise _Retry
    _require_room(trial, ratios)

    # 5. The counts per arm's slot (one slot per arm with equal ratios) with the patient's
    #    level of each factor: (factors × slots) rows, independent of trial size. Then decide.
    #    The site's number counter and code come in the same statement (read after the
    #    lock: the site joined to the participant's row, read before, may be older).
    q = batch.quote
    rows = batch.execute(
        [
            (
                f"SELECT s.randomized_count, s.code, c.level_id, c.arm_id, c.slot, c.count "
                f"FROM {q(Site._meta.db_table)} s "
                f"LEFT JOIN {q(FactorLevelCount._meta.db_table)} c ON "
                + (
                    f"c.level_id IN ({', '.join(['%s'] * len(level_ids))})"
                    if level_ids
                    else "0 = 1"
                )
                + " WHERE s.id = %s",
                [*level_ids.values(), participant.site_id],
            )
        ]
    )
    site = participant.site
    site.randomized_count, site.code = rows[0][:2]
    stored = {
        (level_id, arm_id, slot): count
        for *_, level_id, arm_id, slot, count in rows
        if level_id is not None
    }
    arm_by_code = {arm.code: arm for arm in config.arms}
    slots = [(arm_by_code[code], n) for code, n in minimization.slots(list(ratios), ratios)]
    missing_rows = [
        FactorLevelCount(trial=trial, level_id=level_id, arm=arm, slot=n, count=0)
        for level_id in level_ids.values()
        for arm, n in slots
        if (level_id, arm.pk, n) not in stored
    ]
    if missing_rows:  # only while some level has never been seen in some slot
        FactorLevelCount.objects.bulk_create(missing_rows)
    arm_codes = [arm.code for arm in config.arms]
    # In the record's shape (minimization.record): a number per arm with ratio 1, else a list.
    counts = {
        factor: minimization.record(
            arm_codes,
            ratios,
            {(arm.code, n): stored.get((level_id, arm.pk, n), 0) for arm, n in slots},
        )
        for factor, level_id in level_ids.items()
    }
    weights = {f.code: f.weight for f in config.factors}
    decision = minimization.allocate(
        arms=arm_codes,
        counts=counts,
        weights=weights,
        measure=trial.imbalance_measure,
        p=float(trial.preferred_probability),
        rng=rng or random.SystemRandom(),
        ratios=ratios,
        simple_randomization=trial.allocation_count < trial.initial_random_allocations,
    )
    arm = arm_by_code[decision.arm]

    # 6. Write, in one batch: the trial's sequence and the site's number (safe to
    #    read-then-write under the trial lock: only randomization changes them), the
    #    counts, the participant and its history row, and last the allocation, whose key
    #    comes back.
    participant.status = Participant.Status.ACTIVE
    participant.number = f"{trial.code}-{site.code}-{site.randomized_count + 1:04d}"
    participant.randomized_at = now
    allocation = Allocation(
        trial=trial,
        participant=participant,
        sequence=trial.allocation_count + 1,
        arm=arm,
        slot=decision.slot,
        method=decision.method,
        factor_levels=factor_levels,
        counts_seen=counts,
        scores=decision.scores,
        probabilities=decision.probabilities,
        draw=decision.draw,
        settings_used={
            "imbalance_measure": trial.imbalance_measure,
            "preferred_probability": str(trial.preferred_probability),
            "initial_random_allocations": trial.initial_random_allocations,
            "weights": weights,
            "arms": arm_codes,  # the order the draw walks
            "ratios": ratios,
        },
        algorithm_version=minimization.ALGORITHM_VERSION,
        allocated_by=by,
        allocated_at=now,
    )
    changed = ("status", "number", "randomized_at", "randomized_on")
    statements = [
        (
            f"UPDATE {q(Trial._meta.db_table)} SET allocation_count = allocation_count + 1 "
            "WHERE id = %s",
            [trial.pk],
        ),
        (
            f"UPDATE {q(Site._meta.db_table)} SET randomized_count = randomized_count + 1 "
            "WHERE id = %s",
            [site.pk],
        ),
        *_count_increments(trial, arm, decision.slot, level_ids.values()),
        (
            f"UPDATE {q(Participant._meta.db_table)} SET "
            + ", ".join(f"{q(name)} = %s" for name in changed)
            + " WHERE id = %s",
            [batch.db_value(Participant, name, getattr(participant, name)) for name in changed]
            + [participant.pk],
        ),
        batch.history_copy(
            Participant,
            where="id = %s",
            params=[participant.pk],
            history_type="~",
            user_id=by.pk,
            when=now,
        ),
        batch.insert([allocation], returning_pk=True),
    ]
    ((allocation.pk,),) = batch.execute(statements)
    allocation._state.adding = False
    allocation._state.db = connection.alias
    participant.trial = trial
    return allocation, True


def _require_room(trial: Trial, ratios: dict[str, int]) -> None:
    require_recruiting(trial, ratios=list(ratios.values()))
    if trial.allocation_count >= trial.target_sample_size:
        raise ValidationError(
            f"{trial.code} has reached its target of {trial.target_sample_size} participants; "
            "no more can be randomized.",
            code="target_reached",
        )


def _count_increments(trial: Trial, arm, slot: int, level_ids) -> list[batch.Statement]:
    """Add one to the (level, arm, slot) counts of the participant's levels. An upsert, so a
    missing row cannot be skipped silently (the rows exist: step 5 made them)."""
    table = batch.quote(FactorLevelCount._meta.db_table)
    level_ids = list(level_ids)
    if not level_ids:  # a trial without minimization factors
        return []
    return [
        (
            f"INSERT INTO {table} (trial_id, level_id, arm_id, slot, count) VALUES "
            + ", ".join(["(%s, %s, %s, %s, 1)"] * len(level_ids))
            + f" ON CONFLICT (level_id, arm_id, slot) DO UPDATE SET count = {table}.count + 1",
            [value for level_id in level_ids for value in (trial.pk, level_id, arm.pk, slot)],
        )
    ]


def _baseline_links(participant: Participant, definitions, by, now) -> list[batch.Statement]:
    """Give the participant's visit-less outcome entries (the baseline instruments, entered
    at enrollment) the visit done at randomization at which each instrument is due (the
    first such visit, in schedule order), with history rows. Without such a visit in the
    schedule they stay visit-less. One UPDATE per such visit and one INSERT of history rows,
    whatever the number of instruments. The entries need no locking read: every service
    that changes them locks the participant first, as randomization has."""
    # Imported here, not at the top: outcomes builds on participants (its models and
    # services import ours), so a module-level import would make the two apps circular.
    from outcomes.instruments.models import Instrument, OutcomeEntry

    q = batch.quote
    due = Instrument._meta.get_field("visits")
    entries, visits = q(OutcomeEntry._meta.db_table), q(Visit._meta.db_table)
    statements = [
        (
            f"UPDATE {entries} SET visit_id = (SELECT id FROM {visits} "
            "WHERE participant_id = %s AND definition_id = %s) "
            "WHERE participant_id = %s AND visit_id IS NULL AND instrument_id IN ("
            f"SELECT {q(due.m2m_column_name())} FROM {q(due.m2m_db_table())} "
            f"WHERE {q(due.m2m_reverse_name())} = %s)",
            [participant.pk, definition.pk, participant.pk, definition.pk],
        )
        for definition in definitions
        if definition.at_randomization
    ]
    if statements:
        # Entries on this participant's visits are the ones just linked: the visits are
        # created in the same batch.
        statements.append(
            batch.history_copy(
                OutcomeEntry,
                where=f"participant_id = %s AND visit_id IN "
                f"(SELECT id FROM {visits} WHERE participant_id = %s)",
                params=[participant.pk, participant.pk],
                history_type="~",
                user_id=by.pk,
                when=now,
                reason="Linked to the baseline visit at randomization",
            )
        )
    return statements


def recount_level_counts(trial: Trial) -> dict[tuple[int, int, int], int]:
    """Recount participants per (level id, arm id, slot) from the allocations themselves.

    Used by tests and audits to check the maintained FactorLevelCount rows.
    """
    levels = {
        (lv.factor.code, lv.code): lv.pk
        for lv in FactorLevel.objects.filter(factor__trial=trial).select_related("factor")
    }
    result: dict[tuple[int, int, int], int] = {}
    for factor_levels, arm_id, slot in Allocation.objects.filter(trial=trial).values_list(
        "factor_levels", "arm_id", "slot"
    ):
        for factor_code, level_code in factor_levels.items():
            key = (levels[(factor_code, level_code)], arm_id, slot)
            result[key] = result.get(key, 0) + 1
    return result


def stored_level_counts(trial: Trial) -> dict[tuple[int, int, int], int]:
    """The maintained counts, non-zero ones, keyed as recount_level_counts keys them."""
    return {
        (level_id, arm_id, slot): count
        for level_id, arm_id, slot, count in FactorLevelCount.objects.filter(
            trial=trial, count__gt=0
        ).values_list("level_id", "arm_id", "slot", "count")
    }
