"""The baseline form's instruments, decided from plain values: what is wrong with each, the
baseline values taken from their scores, and which entries to create, change or delete.

Pure: no Django. The service
(outcomes.instruments.services.participant_record_baseline_with_instruments) locks the
participant, scores what was entered (outcomes.instruments.scoring), calls `decide`, records
the rest of the baseline, and writes the entries `entry_changes` names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PAIN_NRS = "pain_nrs"  # outcomes.models.Instrument.Kind
OTHER = "other"  # outcomes.models.OutcomeEntry.NotDone: the reason that needs a note

# Why the whole form is refused (a programming or tampering error, not the user's).
NOT_DUE = "not_due"
TWICE = "twice"
# What is wrong with one instrument (the service words each next to its field).
MISSING = "missing"
UNKNOWN_NOT_DONE = "unknown_not_done"
NOTE_NEEDED = "note_needed"
UNSCORABLE = "unscorable"
SOURCED_NOT_DONE = "sourced_not_done"  # its score is a baseline variable: it must be done
SOURCED_NO_RATING = "sourced_no_rating"
SOURCED_ITEMS_MISSING = "sourced_items_missing"


def error_key(instrument_code: str, field_name: str = "__all__") -> str:
    """The key of an error about an instrument's field: the field's name on a page where the
    instrument's form carries its code as prefix (outcomes.instruments.forms); "__all__" for the
    whole instrument."""
    return f"{instrument_code}-{field_name}"


@dataclass(frozen=True)
class Due:
    """An instrument due at baseline, and the baseline variable its score is, if any."""

    id: int
    code: str
    name: str
    kind: str
    variable_code: str | None = None
    variable_label: str = ""


@dataclass(frozen=True)
class Given:
    """What the form holds for one instrument, scored by the service: `stored` is the
    (responses, score fields) to store, or `scoring_error` says why it cannot be scored and
    `scoring_field` which field that is about."""

    instrument_id: int
    name: str
    not_done: str = ""
    not_done_note: str = ""
    stored: tuple[dict, dict] | None = None
    scoring_error: str = ""
    scoring_field: str = "__all__"


@dataclass(frozen=True)
class Error:
    key: str  # error_key(...), or a baseline variable's code before `remap`
    code: str  # one of the codes above
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The form's instruments: a `refusal` of the whole (with the instrument's name), or the
    errors per field, the baseline values sourced from scores (None where there is none),
    where the baseline's own errors about those variables go (`remap`; `explained` ones are
    dropped, the instrument's error already says it) and what to store per instrument."""

    refusal: str | None = None
    refused: str = ""
    errors: tuple[Error, ...] = ()
    sourced_values: Mapping[str, int | None] = field(default_factory=dict)
    remap: Mapping[str, str] = field(default_factory=dict)
    explained: frozenset[str] = frozenset()
    store: Mapping[int, tuple[dict, dict]] = field(default_factory=dict)


def _sourced_field(kind: str) -> str:
    # The pain rating is one field; a Roland–Morris score comes from 23 items.
    return "value" if kind == PAIN_NRS else "__all__"


def _check(instrument: Due, item: Given | None, not_done_codes: Sequence[str]) -> Error | None:
    """What is wrong with one instrument's input, if anything."""
    if item is None:
        return Error(error_key(instrument.code), MISSING)
    if item.not_done and item.not_done not in not_done_codes:
        return Error(error_key(instrument.code, "not_done"), UNKNOWN_NOT_DONE)
    if item.not_done == OTHER and not item.not_done_note.strip():
        return Error(error_key(instrument.code, "not_done_note"), NOTE_NEEDED)
    if item.stored is None:
        key = error_key(instrument.code, item.scoring_field)
        return Error(key, UNSCORABLE, {"name": instrument.name, "error": item.scoring_error})
    return None


def _sourced_error(instrument: Due, item: Given, score) -> Error | None:
    """Why a sourced instrument's score cannot be the baseline value, if it cannot."""
    params = {"label": instrument.variable_label, "name": instrument.name}
    if item.not_done:
        return Error(error_key(instrument.code, "not_done"), SOURCED_NOT_DONE, params)
    if score is None:
        code = SOURCED_NO_RATING if instrument.kind == PAIN_NRS else SOURCED_ITEMS_MISSING
        return Error(error_key(instrument.code, _sourced_field(instrument.kind)), code, params)
    return None


def decide(
    *,
    due: Sequence[Due],
    given: Sequence[Given],
    not_done_codes: Sequence[str],
    own_values: Sequence[str],
) -> Decision:
    """The baseline form's instruments `given` against those `due`; `own_values` are the
    codes of the baseline values entered on the form itself.

    1. Refuse the whole form for an instrument not due at baseline or entered twice.
    2. Every instrument due needs its data, or not done with a known reason (a note for
       "other"), and data that can be scored.
    3. A baseline variable sourced from an instrument takes its score. Randomization needs
       it (a minimization factor may be derived from one), so that instrument must be done
       and scorable at baseline.
    """
    due_ids = {i.id for i in due}
    by_id: dict[int, Given] = {}
    for item in given:
        if item.instrument_id not in due_ids:
            return Decision(NOT_DUE, item.name)
        if item.instrument_id in by_id:
            return Decision(TWICE, item.name)
        by_id[item.instrument_id] = item
    errors, store = [], {}
    for instrument in due:
        error = _check(instrument, by_id.get(instrument.id), not_done_codes)
        if error:
            errors.append(error)
        else:
            store[instrument.id] = by_id[instrument.id].stored
    sourced, remap, explained = {}, {}, set()
    for instrument in due:
        variable = instrument.variable_code
        if variable is None:
            continue
        if variable in own_values:
            raise ValueError(f"{variable} is taken from {instrument.code}; do not pass it")
        remap[variable] = error_key(instrument.code, _sourced_field(instrument.kind))
        sourced[variable] = None
        if instrument.id not in store:
            explained.add(variable)  # the instrument's own error says what is wrong
            continue
        score = store[instrument.id][1]["score"]
        error = _sourced_error(instrument, by_id[instrument.id], score)
        if error:
            errors.append(error)
            explained.add(variable)
        else:
            sourced[variable] = int(score)
    return Decision(
        errors=tuple(errors),
        sourced_values=sourced,
        remap=remap,
        explained=frozenset(explained),
        store=store,
    )


@dataclass(frozen=True)
class EntryChanges:
    """Which of the participant's visit-less entries to write, by instrument id."""

    create: tuple[int, ...]
    update: tuple[int, ...]
    delete: tuple[int, ...]  # no longer due at baseline (the configuration changed)


def entry_changes(
    *, existing: Mapping[int, tuple[dict, dict]], store: Mapping[int, tuple[dict, dict]]
) -> EntryChanges:
    """Compare the stored entries (responses, score fields) with those to store: new ones
    are created, changed ones updated, unchanged ones left alone (no history row), and
    entries for instruments no longer to store deleted. In `store`'s order."""
    return EntryChanges(
        create=tuple(i for i in store if i not in existing),
        update=tuple(i for i in store if i in existing and existing[i] != store[i]),
        delete=tuple(i for i in existing if i not in store),
    )
