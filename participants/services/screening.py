"""Screening: the screening log's records (one per submitted form), voiding a record
entered in error, and an eligible patient declining."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from participants import eligibility
from participants.models import REASON_MAX, ScreeningRecord
from participants.services.common import (
    require_recruiting,
    require_within,
    screening_date_error,
)
from trial.models import Site, Trial


@transaction.atomic
def screening_record(
    *,
    trial: Trial,
    site: Site,
    initials: str,
    screened_on: dt.date,
    answers: Mapping[int, bool],
    by,
    form_token: str | None = None,
) -> tuple[ScreeningRecord, bool]:
    """Record a patient assessed for eligibility in the screening log. Returns (record,
    created).

    `form_token` is the screening form's one-time token: a form submitted again (back and
    resubmit, a double click) gets the record its first submission made, and nothing new.
    """
    if form_token:
        existing = _screening_for_token(trial, form_token)
        if existing is not None:
            return existing, False
    require_recruiting(trial)
    if site.trial_id != trial.pk:
        raise ValidationError({"site": "This site does not belong to the trial."})
    date_error = screening_date_error(trial, screened_on)
    if date_error:
        raise ValidationError({"screened_on": date_error})
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
        form_token=form_token or None,
    )
    record._history_user = by
    record.full_clean(validate_constraints=False)
    try:
        # A savepoint: the same form submitted twice at once. On PostgreSQL the second insert
        # waits on the unique index until the first commits, then fails; that record, now
        # visible (READ COMMITTED), is the answer. SQLite's IMMEDIATE transactions queue the
        # two whole submissions instead, and the second finds the first above.
        with transaction.atomic():
            record.save()
    except IntegrityError:
        existing = _screening_for_token(trial, form_token) if form_token else None
        if existing is None:
            raise
        return existing, False
    return record, True


def _screening_for_token(trial: Trial, form_token: str) -> ScreeningRecord | None:
    existing = ScreeningRecord.objects.filter(form_token=form_token).first()
    if existing is not None and existing.trial_id != trial.pk:
        # Tokens are random and issued per form; one from another trial's form is a
        # tampered or mixed-up submission.
        raise ValidationError(
            gettext("This form cannot be submitted again; reload the page and start over.")
        )
    return existing


@transaction.atomic
def screening_void(*, screening: ScreeningRecord, reason: str, by) -> ScreeningRecord:
    """Mark a screening record entered in error (a duplicate, the wrong patient) as void.

    The record stays in the log and the export, marked voided with who, when and why (also
    in its history); CONSORT no longer counts it as assessed. A record that enrolled a
    participant cannot be voided (a database constraint says so too).
    """
    # Lock the row: a consent being recorded for it at the same moment must not interleave.
    screening = ScreeningRecord.objects.select_for_update(of=("self",)).get(pk=screening.pk)
    reason = (reason or "").strip()
    if screening.is_voided:
        raise ValidationError(gettext("This screening record is already voided."))
    if screening.outcome == ScreeningRecord.Outcome.ENROLLED:
        raise ValidationError(
            gettext(
                "This screening enrolled a participant and cannot be voided: correct the "
                "participant's details, or record a withdrawal."
            )
        )
    if not reason:
        raise ValidationError({"reason": gettext("Give the reason for voiding the record.")})
    require_within("reason", reason, REASON_MAX)
    screening.voided_at = timezone.now()
    screening.voided_by = by
    screening.void_reason = reason
    screening._history_user = by
    screening._change_reason = gettext("Voided: %(reason)s") % {"reason": reason}
    screening.save(update_fields=["voided_at", "voided_by", "void_reason"])
    return screening


def lock_eligible_screening(screening: ScreeningRecord) -> ScreeningRecord:
    # Lock the screening row: two clinicians (or a double click) must not both enroll it.
    locked = (
        ScreeningRecord.objects.select_for_update(of=("self",))
        .select_related("trial")
        .get(pk=screening.pk)
    )
    if locked.is_voided:
        raise ValidationError(
            gettext("This screening record was voided; nobody can be enrolled from it."),
            code="screening_voided",
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
    limit = ScreeningRecord._meta.get_field("declined_reason").max_length
    require_within("declined_reason", reason.strip(), limit)
    screening = lock_eligible_screening(screening)
    screening.outcome = ScreeningRecord.Outcome.DECLINED
    screening.declined_reason = reason.strip()
    screening._history_user = by
    screening.save(update_fields=["outcome", "declined_reason"])
    return screening
