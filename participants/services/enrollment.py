"""Consent and baseline: everything between screening (services.screening) and
randomization."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from participants import minimization
from participants.models import REASON_FOR_CHANGE_MAX, Participant, ScreeningRecord
from participants.selectors import TrialConfig, trial_config
from participants.services.common import (
    normalize_phone,
    not_in_future,
    phone_or_field_error,
    require_recruiting,
    require_within,
)
from participants.services.screening import lock_eligible_screening
from trial.models import ConsentDocument, Trial

# --- Consent --------------------------------------------------------------------------------


@transaction.atomic
def participant_enroll(
    *,
    screening: ScreeningRecord,
    consent_date: dt.date,
    consent_document: ConsentDocument,
    by,
) -> Participant:
    """Record informed consent for an eligible screened patient, creating the participant."""
    screening = lock_eligible_screening(screening)
    trial = screening.trial
    require_recruiting(trial)
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
    not_in_future(trial, "consent_date", consent_date, "consent date")
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
    phone_required: bool = True,
    reason_for_change: str = "",
) -> Participant:
    """Correct contact and consent details (allowed before and after randomization). The
    mobile number may be left empty when `phone_required` is false: the trial sends no SMS
    (outcomes.sms.sms_use says which).

    After randomization every change needs `reason_for_change`, kept in the history
    (ICH E6(R2) 4.9.3: a change to trial data is explained), as outcome corrections are.
    Saving the details unchanged writes nothing.
    """
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("trial", "screening")
        .get(pk=participant.pk)
    )
    phone_e164 = phone_or_field_error(phone) if phone.strip() or phone_required else ""
    _check_consent(
        participant.trial,
        participant.screening,
        consent_date,
        consent_document,
        randomized_on=participant.randomized_on,
    )
    new = {
        "full_name": full_name.strip(),
        "phone": phone_e164,
        "consent_date": consent_date,
        "consent_document_id": consent_document.pk,
    }
    changed = [name for name, value in new.items() if getattr(participant, name) != value]
    if not changed:
        return participant
    reason = reason_for_change.strip()
    if participant.is_randomized and not reason:
        raise ValidationError(
            {
                "reason_for_change": gettext(
                    "The participant is randomized: give the reason for this change."
                )
            }
        )
    require_within("reason_for_change", reason, REASON_FOR_CHANGE_MAX)
    for name, value in new.items():
        setattr(participant, name, value)
    participant._history_user = by
    if reason:
        participant._change_reason = reason
    participant.save(update_fields=["full_name", "phone", "consent_date", "consent_document"])
    return participant


# --- Baseline -------------------------------------------------------------------------------


def baseline_errors_and_levels(
    config: TrialConfig,
    values: Mapping[str, int | None],
    chosen: Mapping[str, str | None],
    site_id: int | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Check baseline values and factor choices; derive the factor levels (a site factor's
    from `site_id`, the participant's site, when given).

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
    levels: dict[str, str] = config.site_levels(site_id) if site_id is not None else {}
    for factor in config.factors:
        if factor.kind == "site":
            continue  # the site's level, above: nothing to choose or derive
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


def lock_for_baseline(participant: Participant) -> Participant:
    """The participant, locked for the rest of the transaction, if the baseline may still
    change (not randomized). Randomization locks the same row, so a baseline cannot change
    under an allocation being made."""
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("trial")
        .get(pk=participant.pk)
    )
    if participant.is_randomized:
        raise ValidationError(
            "Baseline values cannot change after randomization: they were used to allocate.",
            code="already_randomized",
        )
    return participant


@transaction.atomic
def participant_record_baseline(
    *,
    participant: Participant,
    full_name: str,
    phone: str,
    values: Mapping[str, int | None],
    chosen_levels: Mapping[str, str | None],
    sms_language: str = "",
    by,
    phone_required: bool = True,
) -> Participant:
    """Record contact details, SMS language, baseline values and minimization factor levels.

    `sms_language` is a code of the trial's SMS languages, or "" for the trial's default.
    The mobile number may be left empty when `phone_required` is false: the trial sends no
    SMS (outcomes.sms.sms_use says which).
    """
    participant = lock_for_baseline(participant)
    errors: dict[str, list[str]] = {}
    phone_e164 = ""
    if phone.strip() or phone_required:
        try:
            phone_e164 = normalize_phone(phone)
        except ValidationError as exc:
            errors["phone"] = exc.messages
    if not full_name.strip():
        errors["full_name"] = ["Enter the participant's name (kept for contact only)."]
    sms_language = sms_language.strip()
    if sms_language and not participant.trial.sms_languages.filter(code=sms_language).exists():
        errors["sms_language"] = [f"“{sms_language}” is not an SMS language of this trial."]
    config = trial_config(participant.trial)
    value_errors, levels = baseline_errors_and_levels(
        config, values, chosen_levels, site_id=participant.site_id
    )
    errors.update({field: [message] for field, message in value_errors.items()})
    if errors:
        raise ValidationError(errors)
    participant.full_name = full_name.strip()
    participant.phone = phone_e164
    participant.baseline = {var.code: values[var.code] for var in config.variables}
    participant.factor_levels = levels
    participant.sms_language = sms_language
    participant.baseline_completed_at = timezone.now()
    participant._history_user = by
    participant.save(
        update_fields=[
            "full_name",
            "phone",
            "sms_language",
            "baseline",
            "factor_levels",
            "baseline_completed_at",
        ]
    )
    return participant
