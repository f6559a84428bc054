"""Eligibility checklist evaluation, as a pure function of plain values (no Django)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    id: int
    kind: str  # "inclusion" or "exclusion"
    question: str
    ineligible_answer: bool


def ineligibility_reasons(criteria: Sequence[Criterion], answers: Mapping[int, bool]) -> list[str]:
    """Reasons the answers make the patient ineligible; empty means eligible.

    Every criterion must be answered: an unanswered question is not "eligible".
    """
    unanswered = [c.question for c in criteria if c.id not in answers]
    if unanswered:
        raise ValueError(f"unanswered criteria: {unanswered}")
    reasons = []
    for criterion in criteria:
        if answers[criterion.id] == criterion.ineligible_answer:
            label = (
                "Inclusion criterion not met"
                if criterion.kind == "inclusion"
                else "Exclusion criterion applies"
            )
            answer = "yes" if criterion.ineligible_answer else "no"
            reasons.append(f"{label}: {criterion.question} (answered {answer})")
    return reasons
