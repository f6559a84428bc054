"""Reads of the weekly SMS tracking for the pages, by page: a participant's conversation
(conversation.py), a site's weekly response grid (grid.py), the worklist's alerts and the
digest's opt-outs (alerts.py). Each takes a fixed number of queries whatever the number of
participants or messages (the pages assert it)."""

from outcomes.sms.selectors.alerts import ALERT_LIMIT, SmsAlerts, sms_alerts, sms_opt_outs_between
from outcomes.sms.selectors.conversation import (
    CONVERSATION_PAGE_SIZE,
    ConversationRow,
    SmsStatus,
    participant_sms_conversation,
    participant_sms_status,
)
from outcomes.sms.selectors.grid import (
    CELL_LABELS,
    GRID_COLUMNS,
    GRID_PAGE_SIZE,
    Grid,
    sms_current_send_date,
    sms_grid_participants,
    sms_send_dates,
    sms_week_grid,
)

__all__ = [
    "ALERT_LIMIT", "CELL_LABELS", "CONVERSATION_PAGE_SIZE", "ConversationRow", "GRID_COLUMNS",
    "GRID_PAGE_SIZE", "Grid", "SmsAlerts", "SmsStatus", "participant_sms_conversation",
    "participant_sms_status", "sms_alerts", "sms_current_send_date", "sms_grid_participants",
    "sms_opt_outs_between", "sms_send_dates", "sms_week_grid",
]  # fmt: skip
