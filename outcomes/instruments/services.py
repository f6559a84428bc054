"""Recording outcome data: one service for a visit's entry and correction, and one for the
baseline form, whose instruments are entered at enrollment, before randomization.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy

from outcomes.instruments import baseline_rules, scoring
from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.sms.sms_use import sms_use
from participants import schedule, status_rules
from participants.models import REASON_FOR_CHANGE_MAX, Participant, Visit
from participants.services.common import not_in_future, require_within, trial_today
from participants.services.enrollment import lock_for_baseline, participant_record_baseline
from participants.services.followup import (
    early_attendance_reason,
    require_followup,
    visit_record_attendance,
    visit_record_missed,
)

SCORE_FIELDS = ("score", "eq5d_profile", "eq5d_vas", "improved", "not_done", "not_done_note")


@dataclass(frozen=True)
class EntryInput:
    """What a form collected for one instrument: responses, or a not-done reason."""

    instrument: Instrument
    responses: dict = field(default_factory=dict)
    not_done: str = ""
    not_done_note: str = ""


def score_fields(instrument: Instrument, responses: dict) -> dict:
    """The stored score fields for an instrument's responses (outcomes.instruments.scoring
    rules)."""
    kind = instrument.kind
    out = {"score": None, "eq5d_profile": "", "eq5d_vas": None, "improved": None}
    if kind == Instrument.Kind.PAIN_NRS:
        out["score"] = scoring.pain_nrs(responses.get("value"))
    elif kind == Instrument.Kind.RMDQ:
        out["score"] = scoring.rmdq(responses.get("items") or [None] * scoring.RMDQ_ITEMS)
    elif kind == Instrument.Kind.EQ5D_3L:
        profile = scoring.eq5d_profile(responses)
        value_set = scoring.EQ5DValueSet.from_dict(
            instrument.value_set.code, instrument.value_set.coefficients
        )
        out["eq5d_profile"] = profile or ""
        out["score"] = scoring.eq5d_index(profile, value_set)
        out["eq5d_vas"] = scoring.eq5d_vas(responses.get("vas"))
    elif kind == Instrument.Kind.GLOBAL_7:
        answer = responses.get("answer")
        out["score"] = answer
        out["improved"] = scoring.global_improved(answer)
    return out


def _stored_values(item: EntryInput) -> tuple[dict, dict]:
    """(responses, score and not-done fields) to store for one instrument's input.

    Raises scoring.ScoringError when the responses cannot be scored.
    """
    if item.not_done:
        values = {"score": None, "eq5d_profile": "", "eq5d_vas": None, "improved": None}
    else:
        values = score_fields(item.instrument, item.responses)
    values["not_done"] = item.not_done
    values["not_done_note"] = item.not_done_note.strip()
    return ({} if item.not_done else item.responses), values


# long: one locked transaction over a visit's entries (lock, check, save each entry, close
# the visit); its steps share the locked rows and read in the order they happen.
@transaction.atomic
def visit_record_outcomes(
    *,
    visit: Visit,
    entries: list[EntryInput],
    by,
    attended_on: dt.date | None = None,
    reason_for_change: str = "",
    early_reason: str = "",
) -> Visit:
    """Save the instruments entered for a visit, then close the visit when every instrument
    due at it is recorded: attended on `attended_on` when any has data, missed when all
    were not done. Changing saved values needs `reason_for_change` (kept in the history).
    Attended before the window opens, or missed before it closes, needs `early_reason`
    (participants.schedule), as on the visit's own pages.
    """
    # Lock the visit: two people entering the same visit must not interleave.
    visit = (
        Visit.objects.select_for_update(of=("self",))
        .select_related("participant__trial", "definition")
        .get(pk=visit.pk)
    )
    if not status_rules.outcomes_enterable(
        in_followup=visit.participant.in_followup, visit_outcome=visit.outcome
    ):
        require_followup(visit.participant)  # says why the participant is out of follow-up
        raise ValidationError(
            f"This visit is recorded as {visit.get_outcome_display().lower()}; "
            "no outcome data can be entered."
        )
    # Data entered before the window opens would count for a time point not yet reached
    # (participants.schedule): only with a confirmed reason, kept on the visit, whether or
    # not this entry completes it.
    today = trial_today(visit.participant.trial)
    entered_early = (
        bool(entries)
        and visit.outcome == Visit.Outcome.OPEN
        and schedule.attended_early(today, visit.window_start, visit.window_end)
    )
    if entered_early:
        early_reason = early_attendance_reason(visit, today, early_reason)
    due = {
        i.pk: i
        for i in Instrument.objects.filter(trial_id=visit.trial_id, visits=visit.definition_id)
    }
    existing = {
        e.instrument_id: e for e in OutcomeEntry.objects.select_for_update().filter(visit=visit)
    }
    reason = reason_for_change.strip()
    require_within("reason_for_change", reason, REASON_FOR_CHANGE_MAX)
    for item in entries:
        if item.instrument.pk not in due:
            raise ValidationError(f"{item.instrument.name} is not due at {visit.definition.label}.")
        if item.not_done and item.not_done not in OutcomeEntry.NotDone.values:
            raise ValidationError(f"{item.instrument.name}: unknown reason for not done.")
        try:
            responses, values = _stored_values(item)
        except scoring.ScoringError as exc:
            raise ValidationError(f"{item.instrument.name}: {exc}") from exc
        entry = existing.get(item.instrument.pk)
        if entry is None:
            entry = OutcomeEntry(
                trial_id=visit.trial_id,
                participant_id=visit.participant_id,
                visit=visit,
                instrument=item.instrument,
                entered_by=by,
            )
        elif entry.responses == responses and all(
            getattr(entry, f) == values[f] for f in SCORE_FIELDS
        ):
            continue  # unchanged
        elif not reason:
            raise ValidationError(
                {"reason_for_change": "Saved values are being changed: give the reason."}
            )
        else:
            entry._change_reason = reason
        entry.responses = responses
        for name, value in values.items():
            setattr(entry, name, value)
        entry._history_user = by
        entry.save()
        existing[item.instrument.pk] = entry

    if entered_early and visit.early_reason != early_reason:
        visit.early_reason = early_reason
        visit._history_user = by
        visit.save(update_fields=["early_reason"])

    if due and visit.outcome == Visit.Outcome.OPEN and set(due) <= set(existing):
        recorded = [existing[pk] for pk in due]
        if all(e.not_done for e in recorded):
            reasons = sorted({e.get_not_done_display() for e in recorded})
            visit = visit_record_missed(
                visit=visit,
                reason="Outcomes not done: " + ", ".join(reasons),
                by=by,
                early_reason=early_reason,
            )
        else:
            if attended_on is None:
                raise ValidationError({"attended_on": "Enter the date of the visit."})
            visit = visit_record_attendance(
                visit=visit, attended_on=attended_on, by=by, early_reason=early_reason
            )
    elif (
        visit.outcome == Visit.Outcome.COMPLETED
        and attended_on is not None
        and attended_on != visit.attended_on
    ):
        visit = _correct_visit_date(visit, attended_on, reason, by, early_reason)
    return visit


def _correct_visit_date(
    visit: Visit, attended_on: dt.date, reason: str, by, early_reason: str
) -> Visit:
    """A completed visit's date changed on the outcomes page: a correction like any other;
    moved before the window opens, it needs the confirmed reason an attendance would."""
    participant = visit.participant
    if not reason:
        raise ValidationError(
            {"reason_for_change": "The visit date is being changed: give the reason."}
        )
    not_in_future(participant.trial, "attended_on", attended_on, "visit date")
    if attended_on < participant.randomized_on:
        raise ValidationError(
            {
                "attended_on": "A follow-up visit cannot precede randomization "
                f"({participant.randomized_on:%d %b %Y})."
            }
        )
    visit.early_reason = early_attendance_reason(visit, attended_on, early_reason)
    visit.attended_on = attended_on
    visit.in_window = schedule.in_window(attended_on, visit.window_start, visit.window_end)
    visit._history_user = by
    visit._change_reason = reason
    visit.save(update_fields=["attended_on", "in_window", "early_reason"])
    return visit


# --- Baseline, before randomization -----------------------------------------------------------


def baseline_instruments(trial) -> list[Instrument]:
    """The instruments due at the trial's baseline (the visit done at randomization)."""
    return list(
        Instrument.objects.filter(trial=trial, visits__at_randomization=True)
        .select_related("value_set", "baseline_variable")
        .distinct()
        .order_by("order", "pk")
    )


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
        return replace(given, stored=_stored_values(item))
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
