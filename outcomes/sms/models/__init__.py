"""The weekly SMS's models, by subject: configuration (config), the outbox and inbox
(messages), each participant's weeks and answers (weeks), and the dashboard's running totals
(totals). Every model is imported here, where Django looks for an app's models.

The tables keep the `outcomes_` names (db_table) of the outcomes app the SMS models started
in: the nested app took them over without renaming any (outcomes migration 0011), so no
migration rebuilds or renames a table that holds trial data.
"""

from outcomes.sms.models.config import SmsLanguage, SmsQuestion, SmsQuestionText, SmsSchedule
from outcomes.sms.models.messages import InboundMessage, OutboundMessage
from outcomes.sms.models.totals import SmsParticipantTotal, SmsQuestionWeekTotal, SmsWeekTotal
from outcomes.sms.models.weeks import SmsAnswer, SmsWeek

__all__ = [
    "InboundMessage",
    "OutboundMessage",
    "SmsAnswer",
    "SmsLanguage",
    "SmsParticipantTotal",
    "SmsQuestion",
    "SmsQuestionText",
    "SmsQuestionWeekTotal",
    "SmsSchedule",
    "SmsWeek",
    "SmsWeekTotal",
]
