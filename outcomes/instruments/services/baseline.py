"""The baseline form as a whole, whose instruments are entered at enrollment, before
randomization: decided by outcomes.instruments.baseline_rules, written here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy

from outcomes.instruments import baseline_rules, scoring
from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.instruments.selectors import baseline_instruments
from outcomes.instruments.services.entries import SCORE_FIELDS, EntryInput, stored_values
from outcomes.sms.sms_use import sms_use
from participants.models import Participant
from participants.services.enrollment import lock_for_baseline, participant_record_baseline


def instrument_error_key(instrument: Instrument, field_name: str = "__all__") -> str:
    """The key of an error about an instrument's field
    (outcomes.instruments.baseline_rules.error_key)."""
    return baseline_rules.error_key(instrument.code, field_name)


def _scoring_error_field(instrument: Instrument, responses: dict) -> str:
    """The form field a scoring error is about, as far as one can tell."""
    kind = instrument.kind
    if kind == Instrument.Kind.PAIN_NRS:
        return "value"
    if kind == Instrument.Kind.GLOBAL_7:
        return "answer"
    if kind == Instrument.Kind.EQ5D_3L:
        try:
            scoring.eq5d_vas(responses.get("vas"))
        except scoring.ScoringError:
            return "vas"
        for dim in scoring.EQ5D_DIMENSIONS:
            try:
                scoring.eq5d_profile({dim: responses.get(dim)})
            except scoring.ScoringError:
                return dim
    return "__all__"


@transaction.atomic
def participant_record_baseline_with_instruments(
    *,
    participant: Participant,
    full_name: str,
    phone: str,
    sms_language: str = "",
    values: Mapping[str, int | None],
    chosen_levels: Mapping[str, str | None],
    entries: list[EntryInput],
    by,
) -> Participant:
    """Record the baseline form as a whole, before randomization: contact details, SMS
    language, baseline values, factor levels, and the instruments due at the baseline visit.

    `values` holds only the baseline variables not sourced from an instrument: a variable
    named by an instrument's `baseline_variable` is that instrument's score, so it cannot be
    marked not done. The instrument entries are stored without a visit; randomization links
    them to the baseline visit. Submitting again before randomization replaces them.

    Errors are keyed by the baseline page's field names, instrument fields as
    "<instrument code>-<field>" (instrument_error_key), and all are reported together.
    """
    # 1. Lock the participant: randomization locks it too, so the baseline cannot change
    #    under an allocation being made, nor entries appear after it.
    participant = lock_for_baseline(participant)

    # 2. Score what was entered, and decide (outcomes.instruments.baseline_rules).
    due = baseline_instruments(participant.trial)
    decision = baseline_rules.decide(
        due=[
            baseline_rules.Due(
                id=i.pk,
                code=i.code,
                name=i.name,
                kind=i.kind,
                variable_code=i.baseline_variable.code if i.baseline_variable else None,
                variable_label=i.baseline_variable.label if i.baseline_variable else "",
            )
            for i in due
        ],
        given=[_scored(item) for item in entries],
        not_done_codes=OutcomeEntry.NotDone.values,
        own_values=list(values),
    )
    if decision.refusal:
        raise ValidationError(BASELINE_REFUSALS[decision.refusal] % {"name": decision.refused})
    errors: dict[str, list[str]] = {}
    for error in decision.errors:
        errors.setdefault(error.key, []).append(BASELINE_ERRORS[error.code] % error.params)

    # 3. Contact details, values (with those sourced from instruments) and factor levels.
    #    Called even when an instrument has an error, so that every error is reported at
    #    once; raising below undoes its write.
    try:
        participant = participant_record_baseline(
            participant=participant,
            full_name=full_name,
            phone=phone,
            phone_required=sms_use(participant.trial).phone_required,
            sms_language=sms_language,
            values={**values, **decision.sourced_values},
            chosen_levels=chosen_levels,
            by=by,
        )
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        for key, messages in exc.message_dict.items():
            if key not in decision.explained:
                errors.setdefault(decision.remap.get(key, key), []).extend(messages)
    if errors:
        raise ValidationError(errors)

    # 4. The entries, without a visit until randomization links them to the baseline visit.
    _write_baseline_entries(participant, due, decision.store, by)
    return participant


BASELINE_REFUSALS = {
    baseline_rules.NOT_DUE: gettext_lazy("%(name)s is not due at baseline."),
    baseline_rules.TWICE: gettext_lazy("%(name)s was entered twice."),
}
BASELINE_ERRORS = {
    baseline_rules.MISSING: gettext_lazy("Enter the data, or mark the instrument not done."),
    baseline_rules.UNKNOWN_NOT_DONE: gettext_lazy("Unknown reason."),
    baseline_rules.NOTE_NEEDED: gettext_lazy("Say why it was not done."),
    baseline_rules.UNSCORABLE: gettext_lazy("%(name)s: %(error)s"),
    baseline_rules.SOURCED_NOT_DONE: gettext_lazy(
        "%(label)s is needed for randomization: enter %(name)s; it cannot be marked not done "
        "at baseline."
    ),
    baseline_rules.SOURCED_NO_RATING: gettext_lazy(
        "%(label)s is needed for randomization: enter the rating."
    ),
    baseline_rules.SOURCED_ITEMS_MISSING: gettext_lazy(
        "%(label)s is needed for randomization: answer every item of %(name)s."
    ),
}


def _scored(item: EntryInput) -> baseline_rules.Given:
    """One instrument's input as baseline_rules takes it: scored, or why it cannot be."""
    given = baseline_rules.Given(
        instrument_id=item.instrument.pk,
        name=item.instrument.name,
        not_done=item.not_done,
        not_done_note=item.not_done_note,
    )
    try:
        return replace(given, stored=stored_values(item))
    except scoring.ScoringError as exc:
        return replace(
            given,
            scoring_error=str(exc),
            scoring_field=_scoring_error_field(item.instrument, item.responses),
        )


def _write_baseline_entries(participant: Participant, due, store, by) -> None:
    """Create, change or delete the participant's visit-less entries as
    baseline_rules.entry_changes says, each with its history row."""
    # order_by("pk"): the default ordering joins the (nullable) visit, and PostgreSQL
    # cannot lock the nullable side of an outer join.
    rows = (
        OutcomeEntry.objects.select_for_update(of=("self",))
        .filter(participant=participant, visit__isnull=True)
        .order_by("pk")
    )
    existing = {e.instrument_id: e for e in rows}
    changes = baseline_rules.entry_changes(
        existing={
            pk: (e.responses, {f: getattr(e, f) for f in SCORE_FIELDS})
            for pk, e in existing.items()
        },
        store=store,
    )
    instruments = {i.pk: i for i in due}
    for pk in store:
        if pk in changes.create:
            entry = OutcomeEntry(
                trial_id=participant.trial_id,
                participant=participant,
                visit=None,
                instrument=instruments[pk],
                entered_by=by,
            )
        elif pk in changes.update:
            entry = existing[pk]
            entry._change_reason = "Baseline entered again before randomization"
        else:
            continue  # unchanged
        entry.responses, fields = store[pk]
        for name, value in fields.items():
            setattr(entry, name, value)
        entry._history_user = by
        entry.save()
    for pk in changes.delete:  # no longer due at baseline (configuration changed)
        stale = existing[pk]
        stale._history_user = by
        stale._change_reason = "No longer due at baseline"
        stale.delete()
