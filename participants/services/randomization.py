"""Randomization by minimization: lock, decide (participants.randomization_rules), write."""

from __future__ import annotations

import random

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from participants import hooks, minimization
from participants import randomization_rules as rules
from participants.models import Allocation, FactorLevelCount, Participant, Visit
from participants.selectors import trial_config
from participants.services.common import require_recruiting
from participants.services.followup import visits_planned
from trial import batch
from trial.models import Site, Trial

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

    # 1. Lock and re-read the participant; one already randomized gets its allocation back.
    participant = _lock_participant(participant)
    if participant.is_randomized:
        existing = Allocation.objects.select_related("arm").filter(participant=participant)
        return existing.get(), False

    # 2. Preconditions (those on the trial row are checked again under its lock).
    trial = participant.trial
    config = trial_config(trial)
    ratios = {arm.code: arm.allocation_ratio for arm in config.arms}
    admission = _admit(participant, config, ratios)

    # 3. The visit schedule from today's date in the trial's zone (no randomized
    #    participant without it) and the baseline instruments' link to the baseline visit,
    #    with their history rows: one batch, before the trial lock.
    now = timezone.now()
    randomized_on = timezone.localdate(now, timezone=trial.zone)
    participant.randomized_on = randomized_on
    _plan_visits(participant, config, by, now)

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

    # 5. Read the counts and the site's counter, then decide.
    site = participant.site
    site.randomized_count, site.code, stored = _read_counts(participant, admission.level_ids)
    decision = rules.allocate(
        trial=rules.Settings(
            code=trial.code,
            imbalance_measure=trial.imbalance_measure,
            preferred_probability=trial.preferred_probability,
            initial_random_allocations=trial.initial_random_allocations,
            allocation_count=trial.allocation_count,
        ),
        arms=[rules.Arm(arm.pk, arm.code, arm.allocation_ratio) for arm in config.arms],
        factors=config.factors,
        level_ids=admission.level_ids,
        stored=stored,
        site_code=site.code,
        site_randomized=site.randomized_count,
        rng=rng or random.SystemRandom(),
    )
    if decision.missing_counts:  # only while some level has never been seen in some slot
        FactorLevelCount.objects.bulk_create(
            FactorLevelCount(trial=trial, level_id=level_id, arm_id=arm_id, slot=slot, count=0)
            for level_id, arm_id, slot in decision.missing_counts
        )

    # 6. Write (_write_allocation).
    arm = next(arm for arm in config.arms if arm.pk == decision.arm_id)
    allocation = _write_allocation(participant, trial, arm, decision, admission, by=by, now=now)
    participant.trial = trial
    return allocation, True


def _lock_participant(participant: Participant) -> Participant:
    """Lock and re-read the participant, with the site and the trial (not locked yet). A
    second request for the same participant waits here and then finds the first's
    allocation, read by a statement of its own: the rows joined to a locked row come from
    before the wait (READ COMMITTED), only the locked row itself is re-read."""
    return (
        Participant.objects.select_for_update(of=("self",), no_key=True)
        .select_related("site", "trial")
        .get(pk=participant.pk)
    )


def _admit(participant: Participant, config, ratios: dict[str, int]) -> rules.Admission:
    """Step 2: randomization_rules.admit, and the trial's room, in the order the user is
    told (a participant who is not enrolled first); raise the first refusal."""
    admission = rules.admit(
        enrolled=participant.status == Participant.Status.ENROLLED,
        baseline_complete=participant.baseline_complete,
        n_arms=len(config.arms),
        factors=config.factors,
        baseline_levels=participant.factor_levels,
        site_levels=config.site_levels(participant.site_id),
    )
    if admission.refusal == rules.NOT_ENROLLED:
        _refuse(admission, participant)
    _require_room(participant.trial, ratios)
    if admission.refusal:
        _refuse(admission, participant)
    return admission


def _refuse(admission: rules.Admission, participant: Participant) -> None:
    """Raise the refusal of randomization_rules.admit, in words, with its error code."""
    words = {
        rules.NOT_ENROLLED: (
            gettext("This participant is %(status)s and cannot be randomized."),
            "not_enrolled",
        ),
        rules.NO_BASELINE: (
            gettext("Complete the baseline form before randomizing."),
            "no_baseline",
        ),
        rules.TOO_FEW_ARMS: (gettext("The trial needs at least two arms to randomize."), "config"),
        rules.SITE_WITHOUT_LEVEL: (
            gettext(
                "The site %(site)s has no level of the factor %(factor)s yet; a trial "
                "manager can give it one by saving the site in the admin."
            ),
            "config",
        ),
        rules.MISSING_FACTORS: (
            gettext(
                "Baseline lacks the minimization factor(s) %(factors)s; enter the baseline again."
            ),
            "no_baseline",
        ),
        rules.LEVEL_GONE: (gettext("Stored level for %(factor)s no longer exists."), None),
    }
    message, code = words[admission.refusal]
    raise ValidationError(
        message
        % {
            "status": participant.get_status_display().lower(),
            "site": participant.site.code,
            "factor": admission.factor,
            "factors": ", ".join(admission.missing),
        },
        code=code,
    )


def _plan_visits(participant: Participant, config, by, now) -> None:
    """Step 3: the visits planned from `participant.randomized_on`, with their history rows,
    and what the outcomes apps do at randomization (participants.hooks: the baseline
    instruments' link), in one batch."""
    visits = visits_planned(participant=participant, by=by, definitions=config.visits, now=now)
    statements = hooks.randomized_statements(
        participant=participant, definitions=config.visits, by=by, now=now
    )
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


def _read_counts(participant: Participant, level_ids) -> tuple[int, str, dict]:
    """Step 5: the counts per arm's slot with the patient's level of each factor ((factors ×
    slots) rows, independent of trial size), with the site's number counter and code in the
    same statement (read after the trial lock: the site joined to the participant's row,
    read before, may be older). Returns (randomized count, site code, {(level id, arm id,
    slot): count})."""
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
    stored = {
        (level_id, arm_id, slot): count
        for *_, level_id, arm_id, slot, count in rows
        if level_id is not None
    }
    return rows[0][0], rows[0][1], stored


def _write_allocation(
    participant: Participant,
    trial: Trial,
    arm,
    decision: rules.Allocation,
    admission: rules.Admission,
    *,
    by,
    now,
) -> Allocation:
    """Step 6, in one batch: the trial's sequence and the site's number (safe to
    read-then-write under the trial lock: only randomization changes them), the counts, the
    participant and its history row, and last the allocation, whose key comes back."""
    q = batch.quote
    participant.status = Participant.Status.ACTIVE
    participant.number = decision.number
    participant.randomized_at = now
    allocation = Allocation(
        trial=trial,
        participant=participant,
        sequence=decision.sequence,
        arm=arm,
        slot=decision.slot,
        method=decision.method,
        factor_levels=admission.factor_levels,
        counts_seen=decision.counts_seen,
        scores=decision.scores,
        probabilities=decision.probabilities,
        draw=decision.draw,
        settings_used=decision.settings_used,
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
            [participant.site_id],
        ),
        *_count_increments(trial, arm, decision.slot, admission.level_ids.values()),
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
    return allocation


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
