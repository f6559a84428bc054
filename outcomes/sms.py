"""SMS gateways. `settings.SMS_BACKEND` names the class (a dotted path), as EMAIL_BACKEND does
for e-mail:

    outcomes.sms.ConsoleBackend   development default: logs the message, sends nothing
    outcomes.sms.FileBackend      appends one JSON line per message to settings.SMS_FILE_PATH

A backend sends one message and returns the gateway's id for it. It raises TransientSmsError
for failures worth retrying (network, timeouts, rate limits, gateway 5xx) and PermanentSmsError
for ones that will fail again (invalid or blocked number); outcomes.tasks.sms_send retries the
first with backoff and marks the message failed on the second.

A real gateway (Twilio, in the two-way SMS issue) is one more class here with the same `send`,
mapping its client's errors onto these two exceptions; its credentials come from environment
variables in settings, and delivery receipts update messages by `gateway_message_id`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The gateway did not accept the message."""


class TransientSmsError(SmsError):
    """Worth retrying later: the same message may well go through."""


class PermanentSmsError(SmsError):
    """Retrying will not help: the message is marked failed."""


class BaseBackend:
    def send(self, *, to: str, body: str) -> str:
        """Send `body` to the E.164 number `to`; return the gateway's message id."""
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Log the message instead of sending it (development)."""

    def send(self, *, to: str, body: str) -> str:
        message_id = f"console-{uuid.uuid4().hex}"
        logger.info("SMS %s to %s: %s", message_id, to, body)
        return message_id


class FileBackend(BaseBackend):
    """Append each message as a JSON line to settings.SMS_FILE_PATH (tests, demos)."""

    def send(self, *, to: str, body: str) -> str:
        message_id = f"file-{uuid.uuid4().hex}"
        path = Path(settings.SMS_FILE_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"id": message_id, "to": to, "body": body, "at": dt.datetime.now(dt.UTC).isoformat()},
            ensure_ascii=False,
        )
        # One write of one line in append mode: concurrent workers' lines do not interleave.
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return message_id


def get_backend() -> BaseBackend:
    return import_string(settings.SMS_BACKEND)()
