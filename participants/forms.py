"""Forms validate one field at a time and across fields in clean(); services re-check.

Fields that depend on the trial's configuration (criteria, baseline variables, factors)
are built from it, so the next trial needs no code change.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Sequence

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Layout, Submit
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from participants import schedule
from participants.models import (
    EARLY_REASON_MAX,
    NOTE_MAX,
    REASON_FOR_CHANGE_MAX,
    REASON_MAX,
    ContactAttempt,
    ScreeningRecord,
    Visit,
)
from participants.selectors import TrialConfig
from participants.services import baseline_errors_and_levels, normalize_phone, trial_today
from participants.services.common import screening_date_error
from trial.models import ConsentDocument, Site, Trial

YES_NO = [("yes", "Yes"), ("no", "No")]


class DateInput(forms.DateInput):
    """A browser date picker. Its value must be ISO (YYYY-MM-DD) whatever the locale,
    or the browser shows the field empty."""

    input_type = "date"

    def __init__(self, attrs=None, format="%Y-%m-%d"):
        super().__init__(attrs=attrs, format=format)


def _helper(submit_label: str, css_class: str = "btn-primary") -> FormHelper:
    helper = FormHelper()
    submit = Submit("submit", submit_label, css_class=css_class)
    # Only the colour asked for: crispy's Submit puts btn-primary before it, and which of
    # two colour classes wins depends on stylesheet order (black on blue, 3.3:1, once our
    # stylesheet darkened the primary colour).
    submit.field_classes = f"btn {css_class}"
    helper.add_input(submit)
    return helper


class TrialDateMixin:
    """Date fields must not lie in the future of the trial's local date."""

    trial: Trial

    def _past_or_today(self, field: str, what: str):
        value = self.cleaned_data.get(field)
        if value and value > trial_today(self.trial):
            raise ValidationError(f"The {what} cannot be in the future.")
        return value


def new_form_token() -> str:
    """A one-time token for a form that creates a record (see ScreeningForm)."""
    return secrets.token_urlsafe(32)


FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


class ScreeningForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none(), empty_label=None)
    initials = forms.CharField(
        max_length=4,
        min_length=2,
        help_text="2–4 letters. The screening log holds no names.",
    )
    screened_on = forms.DateField(label="Screening date", widget=DateInput)
    # Issued with the empty form (nothing is written on GET) and stored with the record it
    # creates: submitting the same form again finds that record (services.screening_record).
    form_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, trial: Trial, sites, criteria, **kwargs):
        super().__init__(*args, **kwargs)
        self.trial = trial
        self.criteria = criteria
        self.fields["site"].queryset = sites
        self.fields["screened_on"].initial = trial_today(trial)
        if not self.is_bound:
            self.fields["form_token"].initial = new_form_token()
        for criterion in criteria:
            self.fields[f"criterion_{criterion.pk}"] = forms.ChoiceField(
                label=criterion.question,
                choices=YES_NO,
                widget=forms.RadioSelect,
                help_text=criterion.get_kind_display() + " criterion",
                error_messages={"required": "Answer this question."},
            )
        self.helper = _helper("Record screening")
        # Back after submitting fetches the form again (the view is never cached) with a new
        # token; a browser that then restored the answers typed before would make a resubmit
        # a second record. Not restoring them makes going back show an empty form.
        self.helper.attrs = {"autocomplete": "off"}

    def clean_initials(self):
        value = self.cleaned_data["initials"].strip()
        if not value.isalpha():
            raise ValidationError("Use letters only.")
        return value.upper()

    def clean_screened_on(self):
        value = self.cleaned_data["screened_on"]
        error = screening_date_error(self.trial, value)
        if error:
            raise ValidationError(error)
        return value

    def clean_form_token(self):
        value = self.cleaned_data.get("form_token", "")
        if not FORM_TOKEN.fullmatch(value):
            # A hidden field: said above the form, where the user can act on it.
            self.add_error(
                None,
                _(
                    "This form could not be matched to the page it came from; reload the "
                    "page and enter the screening again."
                ),
            )
        return value

    def answers(self) -> dict[int, bool]:
        return {c.pk: self.cleaned_data[f"criterion_{c.pk}"] == "yes" for c in self.criteria}


class ScreeningVoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is this record void?"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_('e.g. "Entered twice: the same patient as the record of 3 March".'),
        error_messages={"required": _("Give the reason for voiding the record.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(_("Void the record"), css_class="btn-danger")


class ConsentForm(TrialDateMixin, forms.Form):
    DECISIONS = [("consented", "Gave written informed consent"), ("declined", "Declined")]

    decision = forms.ChoiceField(choices=DECISIONS, widget=forms.RadioSelect, initial="consented")
    consent_date = forms.DateField(widget=DateInput, required=False)
    consent_document = forms.ModelChoiceField(
        label="Consent form version", queryset=ConsentDocument.objects.none(), required=False
    )
    declined_reason = forms.CharField(
        label="Reason for declining (optional)",
        required=False,
        max_length=ScreeningRecord._meta.get_field("declined_reason").max_length,
    )

    def __init__(self, *args, trial: Trial, **kwargs):
        super().__init__(*args, **kwargs)
        self.trial = trial
        documents = ConsentDocument.objects.filter(trial=trial, active=True)
        self.fields["consent_document"].queryset = documents
        if documents.count() == 1:
            self.fields["consent_document"].initial = documents.first()
        self.fields["consent_date"].initial = trial_today(trial)
        self.helper = _helper("Save")

    def clean_consent_date(self):
        return self._past_or_today("consent_date", "consent date")

    def clean(self):
        data = super().clean()
        if data.get("decision") == "consented":
            if not data.get("consent_date") and "consent_date" not in self.errors:
                self.add_error("consent_date", "Enter the date consent was signed.")
            if not data.get("consent_document") and "consent_document" not in self.errors:
                self.add_error("consent_document", "Choose the consent form version signed.")
        return data


class PhoneField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        return normalize_phone(value) if value else value


def optional_phone(field: PhoneField, required: bool) -> None:
    """A trial that sends no SMS (outcomes.sms.sms_use) needs no mobile number."""
    if not required:
        field.required = False
        field.help_text = _(
            "Optional: this trial sends no SMS. With + and country code, e.g. +45 20 12 34 56."
        )


def range_help(var) -> str:
    """The help text of a baseline variable's field: its eligible range and its scale."""
    if var.eligible_min is None and var.eligible_max is None:
        return f"{var.min_value}–{var.max_value}."
    low = var.eligible_min if var.eligible_min is not None else var.min_value
    high = var.eligible_max if var.eligible_max is not None else var.max_value
    return f"Eligible: {low}–{high} (the scale runs {var.min_value}–{var.max_value})."


class BaselineForm(forms.Form):
    """Contact details, SMS language, baseline values and directly chosen factor levels.

    Variables in `sourced` are an instrument's score (Instrument.baseline_variable): they
    are entered on that instrument's form, not here. The page renders the <form> tag and
    the button, since the baseline instruments' forms go in the same <form>.
    """

    full_name = forms.CharField(
        max_length=200, help_text="For contact only; never exported or shown in results."
    )
    phone = PhoneField(
        label="Mobile phone",
        max_length=20,
        help_text="Mobile number with + and country code, e.g. +45 20 12 34 56 "
        "(used for the weekly SMS).",
    )

    def __init__(
        self,
        *args,
        config: TrialConfig,
        sourced: Collection[str] = (),
        sms_languages: Sequence[tuple[str, str]] = (),
        phone_required: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.config = config
        optional_phone(self.fields["phone"], phone_required)
        self.sourced = frozenset(sourced)
        if sms_languages:
            self.fields["sms_language"] = forms.ChoiceField(
                label="SMS language",
                choices=list(sms_languages),
                help_text="The language of the weekly SMS questions.",
                error_messages={"required": "Choose the language of the weekly SMS."},
            )
        for var in self.asked_variables():
            unit = f" ({var.unit})" if var.unit else ""
            self.fields[var.code] = forms.IntegerField(
                label=f"{var.label}{unit}",
                help_text=range_help(var),
                error_messages={"required": f"{var.label} is needed for randomization."},
            )
        for factor in config.factors:
            if factor.kind == "choice":
                self.fields[f"factor_{factor.code}"] = forms.ChoiceField(
                    label=factor.name,
                    choices=[(lv.code, lv.label) for lv in factor.levels],
                    widget=forms.RadioSelect,
                    help_text="Minimization factor.",
                    error_messages={"required": f"Choose the {factor.name.lower()}."},
                )
        self.helper = FormHelper()
        self.helper.form_tag = False

    def asked_variables(self) -> list:
        return [var for var in self.config.variables if var.code not in self.sourced]

    def clean(self):
        data = super().clean()
        values = {var.code: data.get(var.code) for var in self.config.variables}
        chosen = {
            f.code: data.get(f"factor_{f.code}") for f in self.config.factors if f.kind == "choice"
        }
        errors, _ = baseline_errors_and_levels(self.config, values, chosen)
        for field, message in errors.items():
            # Sourced variables are checked with their instrument's score, by the service.
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return data

    def values(self) -> dict[str, int | None]:
        """The variables asked on this form (not those sourced from an instrument)."""
        return {var.code: self.cleaned_data.get(var.code) for var in self.asked_variables()}

    def sms_language(self) -> str:
        return self.cleaned_data.get("sms_language", "")

    def chosen_levels(self) -> dict[str, str | None]:
        return {
            f.code: self.cleaned_data.get(f"factor_{f.code}")
            for f in self.config.factors
            if f.kind == "choice"
        }


class ParticipantDetailsForm(TrialDateMixin, forms.Form):
    full_name = forms.CharField(max_length=200)
    phone = PhoneField(
        label="Mobile phone",
        max_length=20,
        help_text="With + and country code, e.g. +45 20 12 34 56.",
    )
    consent_date = forms.DateField(widget=DateInput)
    consent_document = forms.ModelChoiceField(
        label="Consent form version", queryset=ConsentDocument.objects.none()
    )
    # Asked only once the participant is randomized (the service says when it is needed).
    reason_for_change = forms.CharField(
        label=_("Reason for change (needed for any change after randomization)"),
        max_length=REASON_FOR_CHANGE_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the audit trail with who made the change and when."),
    )

    def __init__(
        self, *args, trial: Trial, phone_required: bool = True, randomized: bool = False, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.trial = trial
        self.fields["consent_document"].queryset = ConsentDocument.objects.filter(trial=trial)
        optional_phone(self.fields["phone"], phone_required)
        if not randomized:
            del self.fields["reason_for_change"]
        self.helper = _helper("Save changes")

    def details(self) -> dict:
        """The participant's details as entered (without the reason for change)."""
        return {k: v for k, v in self.cleaned_data.items() if k != "reason_for_change"}

    def clean_consent_date(self):
        return self._past_or_today("consent_date", "consent date")


class RandomizeForm(forms.Form):
    """Confirms the review; carries nothing but the CSRF token."""

    confirm = forms.BooleanField(
        label="I have checked the baseline values above; they cannot change after randomization.",
        error_messages={"required": "Tick the box to confirm the values are correct."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper("Randomize", css_class="btn-success btn-lg")
        self.helper.form_id = "randomize-form"


# --- Follow-up ------------------------------------------------------------------------------

EARLY_FIELDS = ("confirm_early", "early_reason")


class EarlyConfirmation:
    """The confirmation a visit recorded ahead of its window needs (participants.schedule:
    attended before the window opens, missed before it closes): a tick and a reason. The
    fields are always on the form; a page shows them when `show_early` is true: when the
    visit is ahead of its window today, or once an error asks for them. Whether a given
    recording is early the service decides (services.followup.early_attendance_reason,
    early_miss_reason), after its other checks, and its error names `early_reason`; the
    form passes the reason on only when the box is ticked."""

    early_expected = False

    def _add_early_fields(self, confirm_label) -> None:
        self.fields["confirm_early"] = forms.BooleanField(label=confirm_label, required=False)
        self.fields["early_reason"] = forms.CharField(
            label=_("Reason for recording it ahead of the window"),
            max_length=EARLY_REASON_MAX,
            required=False,
            widget=forms.Textarea(attrs={"rows": 2}),
        )

    def clean(self):
        """The reason is passed on only when the box is ticked."""
        data = super().clean()
        reason = (data.get("early_reason") or "").strip()
        if reason and not data.get("confirm_early"):
            self.add_error("confirm_early", _("Tick the box to confirm, or clear the reason."))
        data["early_reason"] = reason if data.get("confirm_early") else ""
        return data

    @property
    def show_early(self) -> bool:
        submitted = any(self.data.get(self.add_prefix(name)) for name in EARLY_FIELDS)
        return self.early_expected or submitted or any(f in self.errors for f in EARLY_FIELDS)

    def layout_names(self) -> list[str]:
        return [name for name in self.fields if name not in EARLY_FIELDS]

    def _early_helper(self, submit_label=None, css_class: str = "") -> FormHelper:
        """A layout of the form's fields, the confirmation last when it is shown; a submit
        button when `submit_label` is given."""
        helper = FormHelper()
        parts = list(self.layout_names())
        if self.show_early:
            parts.append(Div(*EARLY_FIELDS, css_class="alert alert-warning", css_id="early"))
        helper.layout = Layout(*parts)
        if submit_label:
            helper.add_input(Submit("submit", submit_label, css_class=css_class))
        return helper


class AttendanceForm(EarlyConfirmation, TrialDateMixin, forms.Form):
    attended_on = forms.DateField(label="Date attended", widget=DateInput)

    def __init__(self, *args, trial: Trial, visit: Visit, **kwargs):
        super().__init__(*args, **kwargs)
        self.trial = trial
        today = trial_today(trial)
        window = (visit.window_start, visit.window_end)
        self.fields["attended_on"].initial = schedule.default_visit_date(today, *window)
        # Before the window opens, every date up to today is ahead of it. (A visit already
        # recorded is refused by the service, with its own message.)
        self.early_expected = visit.outcome == Visit.Outcome.OPEN and schedule.attended_early(
            today, *window
        )
        self._add_early_fields(_("I confirm the visit took place before its window opened."))

    @property
    def helper(self) -> FormHelper:
        return self._early_helper("Mark attended", css_class="btn-success")

    def clean_attended_on(self):
        return self._past_or_today("attended_on", "attendance date")


class MissedForm(EarlyConfirmation, forms.Form):
    reason = forms.CharField(
        label="Why was the visit missed?",
        max_length=300,
        error_messages={"required": "Say why the visit was missed."},
    )

    def __init__(self, *args, trial: Trial, visit: Visit, **kwargs):
        super().__init__(*args, **kwargs)
        self.early_expected = visit.outcome == Visit.Outcome.OPEN and schedule.missed_early(
            trial_today(trial), visit.window_start, visit.window_end
        )
        self._add_early_fields(
            _("I confirm the visit is missed although its window has not closed.")
        )

    @property
    def helper(self) -> FormHelper:
        return self._early_helper("Record as missed", css_class="btn-outline-danger")


class ContactForm(forms.Form):
    method = forms.ChoiceField(choices=ContactAttempt.Method.choices, initial="phone")
    # No default (it was "Reached"): a preset result is too easily saved unread.
    result = forms.ChoiceField(
        choices=[("", _("— Choose the result —")), *ContactAttempt.Result.choices],
        error_messages={"required": _("Choose the result of the attempt.")},
    )
    visit = forms.ModelChoiceField(
        queryset=Visit.objects.none(), required=False, empty_label="(not about one visit)"
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=NOTE_MAX
    )

    def __init__(self, *args, participant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["visit"].queryset = participant.visits.select_related("definition")
        self.fields["visit"].label_from_instance = lambda v: (
            f"{v.definition.label} (window {v.window_start:%d %b %Y}–{v.window_end:%d %b %Y})"
        )
        self.helper = _helper("Log contact attempt")


class StatusChangeForm(TrialDateMixin, forms.Form):
    # No preselected status: a change of status is a decision, so nothing is chosen for the
    # user (as the contact attempt's result).
    to_status = forms.ChoiceField(
        label=_("New status"),
        error_messages={"required": _("Choose the new status.")},
    )
    effective_on = forms.DateField(label="Effective date", widget=DateInput)
    reason = forms.CharField(max_length=REASON_MAX, widget=forms.Textarea(attrs={"rows": 3}))
    followup_allowed = forms.TypedChoiceField(
        label="For withdrawals: may follow-up data still be collected?",
        choices=[("", "—"), ("yes", "Yes, follow-up data may be collected"), ("no", "No")],
        coerce=lambda value: value == "yes",
        empty_value=None,
        required=False,
    )

    def __init__(self, *args, trial: Trial, allowed: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.trial = trial
        self.fields["to_status"].choices = [("", _("— Choose the new status —")), *allowed]
        self.fields["effective_on"].initial = trial_today(trial)
        self.helper = _helper("Change status", css_class="btn-warning")

    def clean_effective_on(self):
        return self._past_or_today("effective_on", "date")

    def clean(self):
        data = super().clean()
        if data.get("to_status") == "withdrawn" and data.get("followup_allowed") is None:
            self.add_error("followup_allowed", "Say whether follow-up data may still be collected.")
        return data


class StatusReverseForm(forms.Form):
    """Reverses the status change shown on the page: its id comes back with the form, so a
    change recorded by someone else in the meantime is never reversed in its place."""

    change = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    reason = forms.CharField(
        label=_("Why is the change reversed?"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_('e.g. "Entered for the wrong participant (MOD-01-0012 withdrew)".'),
        error_messages={"required": _("Give the reason for the reversal.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(_("Reverse the change"), css_class="btn-danger")
