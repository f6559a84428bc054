"""Recording outcome data: one service for a visit's entry and correction
(visit.visit_record_outcomes), and one for the baseline form, whose instruments are entered
at enrollment, before randomization (baseline.participant_record_baseline_with_instruments).
What is stored for one instrument's input is in entries.
"""

from outcomes.instruments.services.baseline import (
    instrument_error_key,
    participant_record_baseline_with_instruments,
)
from outcomes.instruments.services.entries import EntryInput, score_fields
from outcomes.instruments.services.visit import visit_record_outcomes

__all__ = [
    "EntryInput",
    "instrument_error_key",
    "participant_record_baseline_with_instruments",
    "score_fields",
    "visit_record_outcomes",
]
