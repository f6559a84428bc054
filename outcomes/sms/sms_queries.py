"""The SMS recipient rules (outcomes.sms.sms_recipients) as database filters.

Each function returns the `Q` that matches exactly the participants its pure predicate of
the same name accepts; `prefix` is the path to the participant from the model queried
("participant__" from an SmsWeek). tests/outcomes/test_sms_recipients.py checks each pair
agrees over every combination of the fields they read.
"""

from __future__ import annotations

from django.db.models import Q

from outcomes.sms import sms_recipients


def followed_q(prefix: str = "") -> Q:
    return Q(
        **{f"{prefix}status": sms_recipients.ACTIVE, f"{prefix}sms_opted_out_at__isnull": True}
    )


def tracked_q(prefix: str = "") -> Q:
    return followed_q(prefix) & ~Q(**{f"{prefix}phone": ""})


def silent_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}sms_missed_weeks__gte": sms_recipients.SILENT_AFTER_WEEKS})
