"""Writes: one function per change of state, each atomic.

Errors a user can fix are raised as django ValidationError, keyed by form field where
there is one, so views can show them next to the field. Nothing is half-saved: every
service runs in one transaction.
"""

from participants.services.common import normalize_phone, trial_today
from participants.services.enrollment import (
    baseline_errors_and_levels,
    participant_enroll,
    participant_record_baseline,
    participant_update_details,
)
from participants.services.followup import (
    contact_attempt_log,
    participant_status_change,
    visit_record_attendance,
    visit_record_missed,
    visits_planned,
    visits_replan,
)
from participants.services.level_counts import recount_level_counts, stored_level_counts
from participants.services.randomization import participant_randomize
from participants.services.screening import screening_decline, screening_record, screening_void
from participants.services.status import status_change_reverse

__all__ = [
    "baseline_errors_and_levels",
    "contact_attempt_log",
    "participant_status_change",
    "visit_record_attendance",
    "visit_record_missed",
    "visits_planned",
    "visits_replan",
    "normalize_phone",
    "participant_enroll",
    "participant_randomize",
    "participant_record_baseline",
    "participant_update_details",
    "recount_level_counts",
    "screening_decline",
    "stored_level_counts",
    "screening_record",
    "screening_void",
    "status_change_reverse",
    "trial_today",
]
