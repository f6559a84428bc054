"""Pages. Screening (screen → log → consent), enrollment (participant list, allocation,
balance) and follow-up (visits, contacts, status) live in their own modules; the names are
re-exported here. The pages that show outcomes (the participant's page, baseline, details,
review, worklist) are outcomes.participant_views."""

from participants.views.enrollment import (
    balance,
    home,
    participant_allocation,
    trial_home,
)
from participants.views.followup import (
    contact_log,
    followup_summary,
    participant_status,
    status_change_reverse,
    visit_attended,
    visit_missed,
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
]
