"""Helpers shared by the services: the trial's today, preconditions, phone numbers."""

from __future__ import annotations

import datetime as dt

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from trial.models import Trial, preferred_probability_error


def trial_today(trial: Trial) -> dt.date:
    """Today's date in the trial's time zone."""
    return timezone.localdate(timezone=trial.zone)


def require_recruiting(trial: Trial, *, ratios: list[int] | None = None) -> None:
    """Refuse screening, enrollment and randomization unless the trial recruits and can
    randomize: its p meets the bound for its arms' ratios (`ratios`, read when not given).
    A trial set up before the bound existed (any p >= 0.5 was accepted) and locked by its
    first randomization would otherwise go on consenting patients it cannot randomize."""
    if trial.status != Trial.Status.RECRUITING:
        raise ValidationError(
            _(
                "%(code)s is not recruiting (status: %(status)s); nobody can be screened, "
                "enrolled or randomized."
            )
            % {"code": trial.code, "status": trial.get_status_display()},
            code="not_recruiting",
        )
    if ratios is None:
        ratios = list(trial.arms.values_list("allocation_ratio", flat=True))
    error = preferred_probability_error(trial.preferred_probability, ratios)
    if error:
        raise ValidationError(
            _(
                "%(error)s Screening, enrollment and randomization are paused until the "
                "minimization settings are decided again."
            )
            % {"error": error},
            code="config",
        )


def require_within(field: str, text: str, limit: int) -> None:
    """Refuse `text` longer than `limit` characters, the message next to `field`: the
    database refuses it too (a column's length or a check constraint), but as an error
    page; services are also called by commands and tasks that skip the forms."""
    if len(text) > limit:
        raise ValidationError(
            {field: gettext("Keep the reason within %(n)d characters.") % {"n": limit}},
            code="too_long",
        )


def not_in_future(trial: Trial, field: str, value: dt.date, what: str) -> None:
    if value > trial_today(trial):
        raise ValidationError({field: f"The {what} cannot be in the future."})


def screening_date_error(trial: Trial, value: dt.date) -> str | None:
    """Why `value` cannot be a screening date of `trial`, or None. The lower bound is the
    trial's recruitment start (Trial.recruitment_start says why not its set-up date)."""
    if value > trial_today(trial):
        return gettext("The screening date cannot be in the future.")
    if value < trial.recruitment_start:
        return gettext(
            "The screening date cannot precede the trial's recruitment start (%(date)s)."
        ) % {"date": date_format(trial.recruitment_start)}
    return None


def normalize_phone(raw: str) -> str:
    """Return the number in E.164 (+4512345678) or raise ValidationError with a plain
    message (never the phonenumbers library's own text, which is English-only jargon such
    as "The string supplied did not seem to be a phone number")."""
    text = (raw or "").strip()
    if not text.startswith("+"):
        raise ValidationError(
            _("Start the number with + and the country code, e.g. +45 20 12 34 56."),
            code="phone_no_country",
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            _(
                "This does not look like a phone number. Enter the mobile number with + and "
                "the country code, e.g. +45 20 12 34 56."
            ),
            code="phone_unreadable",
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            _(
                "This number does not exist in the country its code names. Check the "
                "country code and the number of digits."
            ),
            code="phone_invalid",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_or_field_error(phone: str) -> str:
    """normalize_phone, with the error keyed to the form field `phone`."""
    try:
        return normalize_phone(phone)
    except ValidationError as exc:
        raise ValidationError({"phone": exc.messages}) from exc
