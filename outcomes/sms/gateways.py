"""SMS gateways. `settings.SMS_BACKEND` names the class (a dotted path), as EMAIL_BACKEND does
for e-mail:

    outcomes.sms.gateways.ConsoleBackend  development default: logs the message, sends nothing
    outcomes.sms.gateways.FileBackend     appends one JSON line per message to
                                          settings.SMS_FILE_PATH
    outcomes.sms.gateways.TwilioBackend   production: Twilio's Messages API (the `twilio`
                                          package), with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN
                                          and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID
                                          from the environment

(The paths without `.gateways`, from before outcomes became nested apps, are still accepted:
trial/settings.py maps them.)

A backend sends one message and returns the gateway's id for it. It raises TransientSmsError
for failures worth retrying (network, timeouts, rate limits, gateway 5xx) and PermanentSmsError
for ones that will fail again (invalid or blocked number); outcomes.sms.tasks.sms_send retries the
first with backoff and marks the message failed on the second.

Twilio reports each message's delivery to the status webhook (outcomes.sms.webhooks.sms_status),
which updates the message found by `gateway_message_id`; replies arrive at the inbound webhook
(outcomes.sms.webhooks.sms_inbound).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import get_script_prefix, reverse
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

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


# A hung connection must not hold a worker (and the message's row lock, see
# outcomes.sms.services.sms_send_now) for long: a send that times out is retried.
TWILIO_TIMEOUT_SECONDS = 15


def webhook_url(path_info: str) -> str:
    """The public URL of a path of this site, as the gateway requests it (behind a proxy
    this is not the URL the application sees): SMS_WEBHOOK_BASE_URL, the site root including
    any path prefix, plus the path below it."""
    return settings.SMS_WEBHOOK_BASE_URL.rstrip("/") + "/" + path_info.lstrip("/")


def status_callback_url() -> str:
    """The public URL Twilio posts delivery reports to."""
    # reverse() puts the script prefix in front when called during a request; the base URL
    # already holds it.
    return webhook_url(reverse("sms_status")[len(get_script_prefix()) :])


class TwilioBackend(BaseBackend):
    """Send through Twilio's Messages API; delivery reports come back to the status webhook.

    `http_client` is for tests (a local imitation of the API); by default the package's own
    client with a bounded timeout.
    """

    def __init__(self, *, http_client: TwilioHttpClient | None = None) -> None:
        account_sid = settings.TWILIO_ACCOUNT_SID
        token = settings.TWILIO_AUTH_TOKEN
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", account_sid),
                # The development webhook token is no Twilio credential.
                ("TWILIO_AUTH_TOKEN", token if token != settings.DEV_WEBHOOK_TOKEN else ""),
                (
                    "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
                    settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID,
                ),
            )
            if not value
        ]
        if missing:
            raise ImproperlyConfigured(
                "outcomes.sms.gateways.TwilioBackend needs these set in the environment: "
                f"{'; '.join(missing)}."
            )
        self.client = Client(
            account_sid,
            token,
            http_client=http_client or TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS),
        )

    def send(self, *, to: str, body: str) -> str:
        sender = (
            {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
            if settings.TWILIO_MESSAGING_SERVICE_SID
            else {"from_": settings.TWILIO_FROM_NUMBER}
        )
        try:
            message = self.client.messages.create(
                to=to, body=body, status_callback=status_callback_url(), **sender
            )
        except TwilioException as exc:
            raise _twilio_error(exc) from exc
        except requests.RequestException as exc:
            # Connection refused or reset, DNS, timeouts: the request may not have arrived.
            raise TransientSmsError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        return message.sid or ""


def _twilio_error(exc: TwilioException) -> SmsError:
    """Map an error of the twilio package onto ours: rate limits (429), Twilio's own
    failures (5xx) and refused credentials (401/403: a rotated token or a suspended account,
    fixed by a person, after which the messages must still go) are retried; any other
    refusal (4xx: invalid or unsubscribed number, bad sender) would fail again."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        # Raised by the HTTP layer rather than an answer from the API.
        return TransientSmsError(f"Twilio request failed: {type(exc).__name__}: {exc}")
    code = getattr(exc, "code", None)
    # Not str(exc): TwilioRestException prints with terminal colours.
    text = getattr(exc, "msg", "") or getattr(exc, "detail", "") or getattr(exc, "title", "")
    message = f"Twilio HTTP {status}, error {code}: {text}".strip()
    if status in (401, 403, 429) or status >= 500:
        return TransientSmsError(message)
    return PermanentSmsError(message)


def get_backend() -> BaseBackend:
    return import_string(settings.SMS_BACKEND)()
