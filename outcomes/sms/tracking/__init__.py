"""Weekly two-way SMS tracking: one service per change of state.

    sms_weekly_send      the week's first question to every participant due (batched job)
    sms_reminders_send   one reminder for a week still unanswered after the delay (job)
    sms_receive          an inbound SMS: answer, clarification, opt-out, opt-in, or just logged

Modules: config (the trial's SMS configuration, cached per process), weekly (the weekly round
and its reminders), inbound (replies).

The rules of reading a reply and of the calendar are pure (outcomes.sms.sms_rules,
outcomes.sms.sms_reply). Every outgoing message goes through the outbox (outcomes.sms.services),
so it is stored before it is sent and the database's unique constraints allow one question,
one reminder and one thank-you per participant and week whatever a re-run does.

Who gets messages: the participants outcomes.sms.sms_recipients calls tracked (the rule, with
its query twin in outcomes.sms.sms_queries). The check is repeated when each message is sent
(outcomes.sms.services.sms_send_now), so an opt-out in between still counts.
"""

from outcomes.sms.tracking.config import SmsConfig, clear_sms_config_cache, sms_config
from outcomes.sms.tracking.inbound import sms_receive
from outcomes.sms.tracking.weekly import WeeklyResult, sms_reminders_send, sms_weekly_send

__all__ = [
    "SmsConfig",
    "WeeklyResult",
    "clear_sms_config_cache",
    "sms_config",
    "sms_receive",
    "sms_reminders_send",
    "sms_weekly_send",
]
