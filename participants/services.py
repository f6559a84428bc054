"""Writes: one function per change of state, each atomic.

Errors a user can fix are raised as django ValidationError, keyed by form field where
there is one, so views can show them next to the field. Nothing is half-saved: every
service runs in one transaction.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from participants import eligibility, minimization
from participants.models import Allocation, FactorLevelCount, Participant, ScreeningRecord
from participants.selectors import TrialConfig, trial_config
from trial.models import ConsentDocument, FactorLevel, Site, Trial


def trial_today(trial: Trial) -> dt.date:
    """Today's date in the trial's time zone."""
    return timezone.localdate(timezone=trial.zone)


def _require_recruiting(trial: Trial) -> None:
    if trial.status != Trial.Status.RECRUITING:
        raise ValidationError(
            f"{trial.code} is not recruiting (status: {trial.get_status_display()}); "
            "nobody can be screened, enrolled or randomized.",
            code="not_recruiting",
        )


def _not_in_future(trial: Trial, field: str, value: dt.date, what: str) -> None:
    if value > trial_today(trial):
        raise ValidationError({field: f"The {what} cannot be in the future."})


def normalize_phone(raw: str) -> str:
    """Return the number in E.164 (+4512345678) or raise ValidationError."""
    text = (raw or "").strip()
    if not text.startswith("+"):
        raise ValidationError(
            "Start the number with + and the country code (international E.164 format)."
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"Not a phone number: {exc}.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError("This is not a valid phone number for its country code.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- Screening ------------------------------------------------------------------------------


@transaction.atomic
def screening_record(
    *,
    trial: Trial,
    site: Site,
    initials: str,
    screened_on: dt.date,
    answers: Mapping[int, bool],
    by,
) -> ScreeningRecord:
    """Record a patient assessed for eligibility in the screening log."""
    _require_recruiting(trial)
    if site.trial_id != trial.pk:
        raise ValidationError({"site": "This site does not belong to the trial."})
    _not_in_future(trial, "screened_on", screened_on, "screening date")
    criteria = [
        eligibility.Criterion(c.pk, c.kind, c.question, c.ineligible_answer)
        for c in trial.criteria.all()
    ]
    try:
        reasons = eligibility.ineligibility_reasons(criteria, answers)
    except ValueError as exc:
        raise ValidationError("Answer every eligibility question.") from exc
    record = ScreeningRecord(
        trial=trial,
        site=site,
        initials=initials.strip().upper(),
        screened_on=screened_on,
        answers={str(k): bool(v) for k, v in answers.items()},
        outcome=ScreeningRecord.Outcome.INELIGIBLE if reasons else ScreeningRecord.Outcome.ELIGIBLE,
        ineligibility_reasons=reasons,
        screened_by=by,
    )
    record._history_user = by
    record.full_clean()
    record.save()
    return record


def _lock_eligible_screening(screening: ScreeningRecord) -> ScreeningRecord:
    # Lock the screening row: two clinicians (or a double click) must not both enroll it.
    locked = (
        ScreeningRecord.objects.select_for_update().select_related("trial").get(pk=screening.pk)
    )
    if locked.outcome != ScreeningRecord.Outcome.ELIGIBLE:
        raise ValidationError(
            f"This screening is already closed ({locked.get_outcome_display().lower()}).",
            code="screening_closed",
        )
    return locked


@transaction.atomic
def screening_decline(*, screening: ScreeningRecord, reason: str, by) -> ScreeningRecord:
    """Record that an eligible patient declined to take part."""
    screening = _lock_eligible_screening(screening)
    screening.outcome = ScreeningRecord.Outcome.DECLINED
    screening.declined_reason = reason.strip()
    screening._history_user = by
    screening.save(update_fields=["outcome", "declined_reason"])
    return screening


@transaction.atomic
def participant_enroll(
    *,
    screening: ScreeningRecord,
    consent_date: dt.date,
    consent_document: ConsentDocument,
    by,
) -> Participant:
    """Record informed consent for an eligible screened patient, creating the participant."""
    screening = _lock_eligible_screening(screening)
    trial = screening.trial
    _require_recruiting(trial)
    _check_consent(trial, screening, consent_date, consent_document, randomized_on=None)
    participant = Participant(
        trial=trial,
        site_id=screening.site_id,
        screening=screening,
        consent_date=consent_date,
        consent_document=consent_document,
        enrolled_by=by,
    )
    participant._history_user = by
    participant.save()
    screening.outcome = ScreeningRecord.Outcome.ENROLLED
    screening._history_user = by
    screening.save(update_fields=["outcome"])
    return participant


def _check_consent(
    trial: Trial,
    screening: ScreeningRecord,
    consent_date: dt.date,
    document: ConsentDocument,
    randomized_on: dt.date | None,
) -> None:
    _not_in_future(trial, "consent_date", consent_date, "consent date")
    if consent_date < screening.screened_on:
        raise ValidationError(
            {
                "consent_date": "Consent cannot precede screening "
                f"({screening.screened_on:%d %b %Y})."
            }
        )
    if randomized_on is not None and consent_date > randomized_on:
        raise ValidationError(
            {
                "consent_date": "Consent must be given before randomization "
                f"({randomized_on:%d %b %Y})."
            }
        )
    if document.trial_id != trial.pk:
        raise ValidationError({"consent_document": "That consent form belongs to another trial."})
    if consent_date < document.effective_from:
        raise ValidationError(
            {
                "consent_document": f"Version {document.version} only took effect on "
                f"{document.effective_from:%d %b %Y}, after the consent date."
            }
        )


@transaction.atomic
def participant_update_details(
    *,
    participant: Participant,
    full_name: str,
    phone: str,
    consent_date: dt.date,
    consent_document: ConsentDocument,
    by,
) -> Participant:
    """Correct contact and consent details (allowed before and after randomization)."""
    participant = (
        Participant.objects.select_for_update()
        .select_related("trial", "screening")
        .get(pk=participant.pk)
    )
    phone_e164 = _phone_or_field_error(phone)
    _check_consent(
        participant.trial,
        participant.screening,
        consent_date,
        consent_document,
        randomized_on=participant.randomized_on,
    )
    participant.full_name = full_name.strip()
    participant.phone = phone_e164
    participant.consent_date = consent_date
    participant.consent_document = consent_document
    participant._history_user = by
    participant.save(update_fields=["full_name", "phone", "consent_date", "consent_document"])
    return participant


def _phone_or_field_error(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except ValidationError as exc:
        raise ValidationError({"phone": exc.messages}) from exc


# --- Baseline -------------------------------------------------------------------------------


def baseline_errors_and_levels(
    config: TrialConfig, values: Mapping[str, int | None], chosen: Mapping[str, str | None]
) -> tuple[dict[str, str], dict[str, str]]:
    """Check baseline values and factor choices; derive the factor levels.

    Returns (errors keyed by field name, {factor code: level code}). Field names are the
    variable codes and `factor_<code>` for directly chosen factor levels.
    """
    errors: dict[str, str] = {}
    for var in config.variables:
        value = values.get(var.code)
        if value is None:
            errors[var.code] = f"{var.label} is needed for randomization."
            continue
        unit = f" {var.unit}" if var.unit else ""
        if not var.min_value <= value <= var.max_value:
            errors[var.code] = (
                f"{var.label} must be between {var.min_value} and {var.max_value}{unit}."
            )
        elif var.eligible_min is not None and value < var.eligible_min:
            errors[var.code] = (
                f"{var.label} {value}{unit} is below the eligibility criterion "
                f"(at least {var.eligible_min}): this patient is not eligible."
            )
        elif var.eligible_max is not None and value > var.eligible_max:
            errors[var.code] = (
                f"{var.label} {value}{unit} is above the eligibility criterion "
                f"(at most {var.eligible_max}): this patient is not eligible."
            )
    levels: dict[str, str] = {}
    for factor in config.factors:
        if factor.kind == "choice":
            code = chosen.get(factor.code)
            if not code:
                errors[f"factor_{factor.code}"] = f"Choose the {factor.name.lower()}."
            elif factor.level(code) is None:
                errors[f"factor_{factor.code}"] = f"“{code}” is not a level of {factor.name}."
            else:
                levels[factor.code] = code
        else:
            value = values.get(factor.variable_code)
            if value is None or factor.variable_code in errors:
                continue
            try:
                levels[factor.code] = minimization.level_for_value(
                    [(lv.code, lv.lower, lv.upper) for lv in factor.levels], value
                )
            except minimization.MinimizationError:
                errors[factor.variable_code] = (
                    f"No level of the factor “{factor.name}” covers {value}: ask the trial "
                    "manager to fix the cut points."
                )
    return errors, levels


@transaction.atomic
def participant_record_baseline(
    *,
    participant: Participant,
    full_name: str,
    phone: str,
    values: Mapping[str, int | None],
    chosen_levels: Mapping[str, str | None],
    by,
) -> Participant:
    """Record contact details, baseline values and minimization factor levels."""
    participant = (
        Participant.objects.select_for_update().select_related("trial").get(pk=participant.pk)
    )
    if participant.is_randomized:
        raise ValidationError(
            "Baseline values cannot change after randomization: they were used to allocate.",
            code="already_randomized",
        )
    errors: dict[str, list[str]] = {}
    try:
        phone_e164 = normalize_phone(phone)
    except ValidationError as exc:
        errors["phone"] = exc.messages
    if not full_name.strip():
        errors["full_name"] = ["Enter the participant's name (kept for contact only)."]
    config = trial_config(participant.trial)
    value_errors, levels = baseline_errors_and_levels(config, values, chosen_levels)
    errors.update({field: [message] for field, message in value_errors.items()})
    if errors:
        raise ValidationError(errors)
    participant.full_name = full_name.strip()
    participant.phone = phone_e164
    participant.baseline = {var.code: values[var.code] for var in config.variables}
    participant.factor_levels = levels
    participant.baseline_completed_at = timezone.now()
    participant._history_user = by
    participant.save(
        update_fields=["full_name", "phone", "baseline", "factor_levels", "baseline_completed_at"]
    )
    return participant


# --- Randomization --------------------------------------------------------------------------


@transaction.atomic
def participant_randomize(
    *, participant: Participant, by, rng: random.Random | None = None
) -> tuple[Allocation, bool]:
    """Allocate the participant to an arm by minimization. Returns (allocation, created).

    Idempotent: a participant who already has an allocation gets that one back, so a
    double click, a refresh or a resubmitted form never allocates twice.
    """
    # 1. Lock the trial row. Minimization reads the per-level counts and the sequence
    #    counter; concurrent randomizations in the same trial must not see them change
    #    under them, so they queue here. (On SQLite, the IMMEDIATE transaction already
    #    holds the database write lock.)
    trial = Trial.objects.select_for_update().get(pk=participant.trial_id)
    # 2. Re-read the participant under the lock; a second request finds the first's
    #    allocation here and returns it.
    participant = Participant.objects.select_related("site").get(pk=participant.pk)
    existing = Allocation.objects.filter(participant=participant).select_related("arm").first()
    if existing is not None:
        return existing, False

    # 3. Preconditions.
    _require_recruiting(trial)
    if trial.allocation_count >= trial.target_sample_size:
        raise ValidationError(
            f"{trial.code} has reached its target of {trial.target_sample_size} participants; "
            "no more can be randomized.",
            code="target_reached",
        )
    if not participant.baseline_complete:
        raise ValidationError("Complete the baseline form before randomizing.", code="no_baseline")
    config = trial_config(trial)
    if len(config.arms) < 2:
        raise ValidationError("The trial needs at least two arms to randomize.", code="config")
    missing = [f.name for f in config.factors if f.code not in participant.factor_levels]
    if missing:
        raise ValidationError(
            f"Baseline lacks the minimization factor(s) {', '.join(missing)}; "
            "enter the baseline again.",
            code="no_baseline",
        )

    # 4. The patient's level of each factor, and the counts per arm with that level:
    #    (factors × arms) rows, independent of trial size.
    level_ids = {}
    for factor in config.factors:
        level = factor.level(participant.factor_levels[factor.code])
        if level is None:
            raise ValidationError(f"Stored level for {factor.name} no longer exists.")
        level_ids[factor.code] = level.id
    stored = {
        (row.level_id, row.arm_id): row.count
        for row in FactorLevelCount.objects.filter(level_id__in=level_ids.values())
    }
    missing_rows = [
        FactorLevelCount(trial=trial, level_id=level_id, arm=arm, count=0)
        for level_id in level_ids.values()
        for arm in config.arms
        if (level_id, arm.pk) not in stored
    ]
    if missing_rows:  # only while some level has never been seen in some arm
        FactorLevelCount.objects.bulk_create(missing_rows)
    arm_by_code = {arm.code: arm for arm in config.arms}
    counts = {
        factor: {arm.code: stored.get((level_id, arm.pk), 0) for arm in config.arms}
        for factor, level_id in level_ids.items()
    }
    weights = {f.code: f.weight for f in config.factors}

    # 5. Decide.
    decision = minimization.allocate(
        arms=[arm.code for arm in config.arms],
        counts=counts,
        weights=weights,
        measure=trial.imbalance_measure,
        p=float(trial.preferred_probability),
        rng=rng or random.SystemRandom(),
        simple_randomization=trial.allocation_count < trial.initial_random_allocations,
    )
    arm = arm_by_code[decision.arm]

    # 6. Write: sequence and per-site number (safe to read-then-write under the trial lock),
    #    the allocation, the counts and the participant, all in this transaction.
    now = timezone.now()
    sequence = trial.allocation_count + 1
    Trial.objects.filter(pk=trial.pk).update(allocation_count=F("allocation_count") + 1)
    site = Site.objects.get(pk=participant.site_id)
    Site.objects.filter(pk=site.pk).update(randomized_count=F("randomized_count") + 1)
    number = f"{trial.code}-{site.code}-{site.randomized_count + 1:04d}"

    allocation = Allocation.objects.create(
        trial=trial,
        participant=participant,
        sequence=sequence,
        arm=arm,
        method=decision.method,
        factor_levels=dict(participant.factor_levels),
        counts_seen=counts,
        scores=decision.scores,
        probabilities=decision.probabilities,
        draw=decision.draw,
        settings_used={
            "imbalance_measure": trial.imbalance_measure,
            "preferred_probability": str(trial.preferred_probability),
            "initial_random_allocations": trial.initial_random_allocations,
            "weights": weights,
            "arms": [a.code for a in config.arms],
        },
        algorithm_version=minimization.ALGORITHM_VERSION,
        allocated_by=by,
        allocated_at=now,
    )
    updated = FactorLevelCount.objects.filter(level_id__in=level_ids.values(), arm=arm).update(
        count=F("count") + 1
    )
    if updated != len(level_ids):
        raise RuntimeError(f"expected {len(level_ids)} count rows to update, updated {updated}")

    participant.status = Participant.Status.RANDOMIZED
    participant.number = number
    participant.randomized_at = now
    participant.randomized_on = timezone.localdate(now, timezone=trial.zone)
    participant._history_user = by
    participant.save(update_fields=["status", "number", "randomized_at", "randomized_on"])
    allocation.participant = participant
    return allocation, True


def recount_level_counts(trial: Trial) -> dict[tuple[int, int], int]:
    """Recount participants per (level id, arm id) from the allocations themselves.

    Used by tests and audits to check the maintained FactorLevelCount rows.
    """
    levels = {
        (lv.factor.code, lv.code): lv.pk
        for lv in FactorLevel.objects.filter(factor__trial=trial).select_related("factor")
    }
    result: dict[tuple[int, int], int] = {}
    for factor_levels, arm_id in Allocation.objects.filter(trial=trial).values_list(
        "factor_levels", "arm_id"
    ):
        for factor_code, level_code in factor_levels.items():
            key = (levels[(factor_code, level_code)], arm_id)
            result[key] = result.get(key, 0) + 1
    return result
