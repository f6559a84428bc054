"""Pages. Screening (screen → log → consent), enrollment (baseline → review → randomize)
and follow-up (worklist, visits, contacts, status) live in their own modules; the names
are re-exported here."""

from participants.views.enrollment import (
    balance,
    home,
    participant_allocation,
    participant_baseline,
    participant_detail,
    participant_edit,
    participant_review,
    trial_home,
)
from participants.views.followup import (
    contact_log,
    followup_summary,
    participant_status,
    status_change_reverse,
    visit_attended,
    visit_missed,
    worklist,
)
from participants.views.screening import (
    screening_consent,
    screening_detail,
    screening_log,
    screening_new,
    screening_void,
)

__all__ = [
    "balance",
    "contact_log",
    "followup_summary",
    "home",
    "participant_allocation",
    "participant_baseline",
    "participant_detail",
    "participant_edit",
    "participant_review",
    "participant_status",
    "screening_consent",
    "screening_detail",
    "screening_log",
    "screening_new",
    "screening_void",
    "status_change_reverse",
    "trial_home",
    "visit_attended",
    "visit_missed",
    "worklist",
]
