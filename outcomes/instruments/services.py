"""Recording outcome data: one service for a visit's entry and correction, and one for the
baseline form, whose instruments are entered at enrollment, before randomization.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from outcomes.instruments import scoring
from outcomes.instruments.models import Instrument, OutcomeEntry
from outcomes.sms.sms_use import sms_use
from participants import schedule
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
    require_followup(visit.participant)
    if visit.outcome in (Visit.Outcome.MISSED, Visit.Outcome.NOT_REQUIRED):
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
    """The key of an error about an instrument's field: the field's name on a page where the
    instrument's form carries its code as prefix (outcomes.instruments.forms); "__all__" for
    the whole instrument."""
    return f"{instrument.code}-{field_name}"


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


def _sourced_field(instrument: Instrument) -> str:
    # The pain rating is one field; a Roland–Morris score comes from 23 items.
    return "value" if instrument.kind == Instrument.Kind.PAIN_NRS else "__all__"


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

    # 2. Check and score every instrument due at baseline.
    due = baseline_instruments(participant.trial)
    due_ids = {i.pk for i in due}
    given: dict[int, EntryInput] = {}
    for item in entries:
        if item.instrument.pk not in due_ids:
            raise ValidationError(f"{item.instrument.name} is not due at baseline.")
        if item.instrument.pk in given:
            raise ValidationError(f"{item.instrument.name} was entered twice.")
        given[item.instrument.pk] = item
    errors: dict[str, list[str]] = {}
    stored: dict[int, tuple[dict, dict]] = {}
    for instrument in due:
        item = given.get(instrument.pk)
        if item is None:
            errors[instrument_error_key(instrument)] = [
                "Enter the data, or mark the instrument not done."
            ]
        elif item.not_done and item.not_done not in OutcomeEntry.NotDone.values:
            errors[instrument_error_key(instrument, "not_done")] = ["Unknown reason."]
        elif item.not_done == OutcomeEntry.NotDone.OTHER and not item.not_done_note.strip():
            errors[instrument_error_key(instrument, "not_done_note")] = ["Say why it was not done."]
        else:
            try:
                stored[instrument.pk] = _stored_values(item)
            except scoring.ScoringError as exc:
                field_name = _scoring_error_field(instrument, item.responses)
                key = instrument_error_key(instrument, field_name)
                errors[key] = [f"{instrument.name}: {exc}"]

    # 3. Baseline variables sourced from an instrument take its score. Randomization needs
    #    them (a minimization factor may be derived from one), so a sourced instrument must
    #    be done and scorable.
    all_values = dict(values)
    remap: dict[str, str] = {}  # variable code -> error key on the page
    explained: set[str] = set()  # variables whose error is already given
    for instrument in due:
        variable = instrument.baseline_variable
        if variable is None:
            continue
        if variable.code in values:
            raise ValueError(f"{variable.code} is taken from {instrument.code}; do not pass it")
        remap[variable.code] = instrument_error_key(instrument, _sourced_field(instrument))
        all_values[variable.code] = None
        item = given.get(instrument.pk)
        if instrument.pk not in stored:
            explained.add(variable.code)  # the instrument's own error says what is wrong
        elif item.not_done:
            errors[instrument_error_key(instrument, "not_done")] = [
                f"{variable.label} is needed for randomization: enter {instrument.name}; "
                "it cannot be marked not done at baseline."
            ]
            explained.add(variable.code)
        elif stored[instrument.pk][1]["score"] is None:
            what = (
                "enter the rating"
                if instrument.kind == Instrument.Kind.PAIN_NRS
                else f"answer every item of {instrument.name}"
            )
            errors[remap[variable.code]] = [
                f"{variable.label} is needed for randomization: {what}."
            ]
            explained.add(variable.code)
        else:
            all_values[variable.code] = int(stored[instrument.pk][1]["score"])

    # 4. Contact details, values and factor levels. Called even when an instrument has an
    #    error, so that every error is reported at once; raising below undoes its write.
    try:
        participant = participant_record_baseline(
            participant=participant,
            full_name=full_name,
            phone=phone,
            phone_required=sms_use(participant.trial).phone_required,
            sms_language=sms_language,
            values=all_values,
            chosen_levels=chosen_levels,
            by=by,
        )
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        for key, messages in exc.message_dict.items():
            if key in explained:
                continue
            errors.setdefault(remap.get(key, key), []).extend(messages)
    if errors:
        raise ValidationError(errors)

    # 5. The entries, without a visit until randomization links them to the baseline visit.
    # order_by("pk"): the default ordering joins the (nullable) visit, and PostgreSQL
    # cannot lock the nullable side of an outer join.
    rows = (
        OutcomeEntry.objects.select_for_update(of=("self",))
        .filter(participant=participant, visit__isnull=True)
        .order_by("pk")
    )
    existing = {e.instrument_id: e for e in rows}
    for instrument in due:
        responses, fields = stored[instrument.pk]
        entry = existing.pop(instrument.pk, None)
        if entry is None:
            entry = OutcomeEntry(
                trial_id=participant.trial_id,
                participant=participant,
                visit=None,
                instrument=instrument,
                entered_by=by,
            )
        elif entry.responses == responses and all(
            getattr(entry, f) == fields[f] for f in SCORE_FIELDS
        ):
            continue  # unchanged
        else:
            entry._change_reason = "Baseline entered again before randomization"
        entry.responses = responses
        for name, value in fields.items():
            setattr(entry, name, value)
        entry._history_user = by
        entry.save()
    for stale in existing.values():  # no longer due at baseline (configuration changed)
        stale._history_user = by
        stale._change_reason = "No longer due at baseline"
        stale.delete()
    return participant
