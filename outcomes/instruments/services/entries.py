"""What is stored for one instrument's input: its responses and the score fields
(outcomes.instruments.scoring), shared by a visit's entry and the baseline form."""

from __future__ import annotations

from dataclasses import dataclass, field

from outcomes.instruments import scoring
from outcomes.instruments.models import Instrument

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


def stored_values(item: EntryInput) -> tuple[dict, dict]:
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
