"""Outcome entry forms: one per instrument kind, built from the trial's configuration.

Each validates on the server: ranges, whole numbers, and "either the data or a reason it
was not done". Item wording is the paper questionnaire's (outcomes.instruments.scoring),
translated here; the forms number the items and levels so data entry follows the paper.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from outcomes.instruments import scoring
from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.services import EntryInput
from participants import schedule
from participants.forms import DateInput, EarlyConfirmation, TrialDateMixin, range_help
from participants.models import REASON_FOR_CHANGE_MAX, Visit
from participants.services import trial_today

NOT_DONE_CHOICES = [("", "Done (enter the data)")] + list(OutcomeEntry.NotDone.choices)


class InstrumentForm(forms.Form):
    """Common part: done, or not done with a reason (and a note for "other")."""

    not_done = forms.ChoiceField(
        label="Status", choices=NOT_DONE_CHOICES, required=False, initial=""
    )
    not_done_note = forms.CharField(label="Note (for other)", max_length=300, required=False)

    def __init__(self, *args, instrument: Instrument, entry: OutcomeEntry | None, **kwargs):
        self.instrument = instrument
        initial = kwargs.pop("initial", {}) or {}
        if entry is not None:
            initial = {
                "not_done": entry.not_done,
                "not_done_note": entry.not_done_note,
                **self.initial_from(entry.responses),
            }
        super().__init__(*args, initial=initial, prefix=instrument.code, **kwargs)

    def initial_from(self, responses: dict) -> dict:
        return dict(responses)

    def data_fields(self) -> list[str]:
        return [name for name in self.fields if name not in ("not_done", "not_done_note")]

    def clean(self):
        data = super().clean()
        not_done = data.get("not_done")
        # What was submitted, valid or not: an invalid value already has its own error and
        # must not also be reported as missing.
        filled = [
            f for f in self.data_fields() if self.data.get(self.add_prefix(f)) not in (None, "")
        ]
        if not_done:
            if filled:
                raise ValidationError("Either enter the data or mark it not done, not both.")
            if not_done == "other" and not data.get("not_done_note"):
                self.add_error("not_done_note", "Say why it was not done.")
        else:
            self.check_complete(data, filled)
        return data

    def check_complete(self, data: dict, filled: list[str]) -> None:
        missing = [f for f in self.data_fields() if f not in filled]
        for name in missing:
            self.add_error(name, "Enter a value, or mark the instrument not done.")

    def responses(self) -> dict:
        return {f: self.cleaned_data.get(f) for f in self.data_fields()}

    def entry_input(self) -> EntryInput:
        not_done = self.cleaned_data.get("not_done") or ""
        return EntryInput(
            instrument=self.instrument,
            responses={} if not_done else self.responses(),
            not_done=not_done,
            not_done_note=self.cleaned_data.get("not_done_note", ""),
        )


class PainForm(InstrumentForm):
    value = forms.IntegerField(
        label="Current low back pain (0 = no pain, 10 = worst imaginable)",
        min_value=0,
        max_value=10,
        required=False,
    )


YES_NO = [("yes", _("Yes")), ("no", _("No"))]


class RmdqForm(InstrumentForm):
    """23 yes/no items, each labelled with its number and statement. Unanswered items are
    allowed: the score is then missing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for n, statement in enumerate(scoring.RMDQ_ITEM_WORDING, 1):
            self.fields[f"item_{n}"] = forms.ChoiceField(
                label=format_lazy("{}. {}", n, _(statement)),
                choices=YES_NO,
                # Drawn by outcomes/_rmdq_items.html, one statement per row, not by crispy.
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
                required=False,
            )

    def initial_from(self, responses: dict) -> dict:
        items = responses.get("items") or []
        return {
            f"item_{n}": {True: "yes", False: "no"}.get(value) for n, value in enumerate(items, 1)
        }

    def check_complete(self, data: dict, filled: list[str]) -> None:
        if not filled:
            self.add_error(None, "Answer the items, or mark the questionnaire not done.")

    def responses(self) -> dict:
        answers = [self.cleaned_data.get(f"item_{n}") for n in range(1, scoring.RMDQ_ITEMS + 1)]
        return {"items": [None if a in (None, "") else a == "yes" for a in answers]}


class Eq5dForm(InstrumentForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for dim in scoring.EQ5D_DIMENSIONS:
            self.fields[dim] = forms.TypedChoiceField(
                label=_(scoring.EQ5D_DIMENSION_LABELS[dim]),
                choices=[
                    (level, format_lazy("{} – {}", level, _(statement)))
                    for level, statement in enumerate(scoring.EQ5D_LEVEL_NAMES, 1)
                ],
                coerce=int,
                empty_value=None,
                widget=forms.RadioSelect,
                required=False,
            )
        self.fields["vas"] = forms.IntegerField(
            label=_("EQ VAS (0–100)"),
            help_text=_(
                "Health today: 100 = the best health you can imagine, "
                "0 = the worst health you can imagine."
            ),
            min_value=0,
            max_value=100,
            required=False,
        )


class GlobalForm(InstrumentForm):
    answer = forms.TypedChoiceField(
        label=_(scoring.GLOBAL_QUESTION),
        choices=[(value, _(label)) for value, label in scoring.GLOBAL_CHOICES],
        coerce=int,
        empty_value=None,
        widget=forms.RadioSelect,
        required=False,
    )


FORM_FOR_KIND = {
    Instrument.Kind.PAIN_NRS: PainForm,
    Instrument.Kind.RMDQ: RmdqForm,
    Instrument.Kind.EQ5D_3L: Eq5dForm,
    Instrument.Kind.GLOBAL_7: GlobalForm,
}


def baseline_instrument_forms(
    instruments: list[Instrument],
    data,
    entries: dict[int, OutcomeEntry],
    baseline: dict,
) -> list[InstrumentForm]:
    """The forms of the instruments due at baseline, for the baseline page (entered before
    randomization): saved entries are shown; an instrument that is a baseline variable says
    it is needed for randomization, and a pain rating already in `baseline` (the
    participant's stored values) is shown when there is no entry yet."""
    result = []
    for instrument in instruments:
        variable = instrument.baseline_variable
        initial = {}
        if (
            variable is not None
            and instrument.kind == Instrument.Kind.PAIN_NRS
            and baseline.get(variable.code) is not None
        ):
            initial = {"value": baseline[variable.code]}
        form = FORM_FOR_KIND[instrument.kind](
            data, instrument=instrument, entry=entries.get(instrument.pk), initial=initial
        )
        if variable is not None:
            form.fields["not_done"].help_text = (
                f"Needed for randomization (it is the baseline value “{variable.label}”): "
                "it cannot be marked not done."
            )
            if "value" in form.fields:
                form.fields["value"].help_text = range_help(variable)
        result.append(form)
    return result


class VisitOutcomesForm(EarlyConfirmation, TrialDateMixin, forms.Form):
    """The visit's date and reasons. Recorded ahead of its window (attended before it
    opens, or every instrument not done, hence missed, before it closes) the visit needs
    the confirmation of participants.forms.EarlyConfirmation."""

    attended_on = forms.DateField(label="Date of the visit", widget=DateInput, required=False)
    reason_for_change = forms.CharField(
        label=_("Reason for change (needed when correcting saved values)"),
        max_length=REASON_FOR_CHANGE_MAX,
        required=False,
    )

    def __init__(self, *args, trial, visit, **kwargs):
        super().__init__(*args, prefix="visit", **kwargs)
        self.trial = trial
        today = trial_today(trial)
        window = (visit.window_start, visit.window_end)
        self.fields["attended_on"].initial = visit.attended_on or schedule.default_visit_date(
            today, *window
        )
        self.early_expected = visit.outcome == Visit.Outcome.OPEN and schedule.attended_early(
            today, *window
        )
        self._add_early_fields(
            _("I confirm the visit is recorded ahead of its window (see the dates above).")
        )

    @property
    def helper(self):
        helper = self._early_helper()  # the page's own button saves the instruments too
        helper.form_tag = False
        return helper

    def clean_attended_on(self):
        return self._past_or_today("attended_on", "visit date")
