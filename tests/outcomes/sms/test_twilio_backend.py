"""The Twilio backend against a local imitation of Twilio's Messages API (no live gateway):
what it sends, and how each kind of failure maps onto retry or give up."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured
from twilio.http.http_client import TwilioHttpClient

from outcomes.sms import gateways as sms
from outcomes.sms import services
from outcomes.sms.models import OutboundMessage

ACCOUNT_SID = "AC" + "1" * 32
TOKEN = "test-auth-token"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


class FakeTwilio(ThreadingHTTPServer):
    """Answers each POST with the next queued (status, body, delay) and records the request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: queue.Queue = queue.Queue()
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, status: int, body, delay: float = 0.0) -> None:
        self.answers.put((status, body, delay))


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "form": form}
        )
        status, body, delay = self.server.answers.get_nowait()
        if delay:
            time.sleep(delay)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away

    def log_message(self, *args):
        pass


class LocalHttpClient(TwilioHttpClient):
    """The package's own HTTP client, sending to the local imitation instead of Twilio."""

    def __init__(self, base_url: str, timeout: float = 5):
        super().__init__(timeout=timeout)
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):
        parsed = urllib.parse.urlsplit(url)
        assert parsed.netloc == "api.twilio.com", url
        return super().request(method, self.base_url + parsed.path, *args, **kwargs)


@pytest.fixture
def fake_twilio():
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+4570000000"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.SMS_WEBHOOK_BASE_URL = "https://trial.example.org"
    return settings


def created(sid="SM" + "a" * 32):
    return {"sid": sid, "status": "queued", "account_sid": ACCOUNT_SID, "body": "x"}


def twilio_error(code: int, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def backend(server, timeout: float = 5) -> sms.TwilioBackend:
    return sms.TwilioBackend(http_client=LocalHttpClient(server.url, timeout=timeout))


def test_send_posts_to_from_body_and_status_callback_with_basic_auth(fake_twilio, twilio_settings):
    fake_twilio.answer(201, created("SM" + "b" * 32))

    sid = backend(fake_twilio).send(to="+4520123456", body="Hvor mange dage? Svar 0-7 æøå")

    assert sid == "SM" + "b" * 32
    [request] = fake_twilio.requests
    assert request["path"] == MESSAGES_PATH
    assert request["form"] == {
        "To": ["+4520123456"],
        "From": ["+4570000000"],
        "Body": ["Hvor mange dage? Svar 0-7 æøå"],
        "StatusCallback": ["https://trial.example.org/sms/status/"],
    }
    scheme, credentials = request["headers"]["Authorization"].split()
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{ACCOUNT_SID}:{TOKEN}"


def test_a_messaging_service_is_used_instead_of_a_from_number_when_set(
    fake_twilio, twilio_settings
):
    twilio_settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "c" * 32
    fake_twilio.answer(201, created())

    backend(fake_twilio).send(to="+4520123456", body="Hej")

    form = fake_twilio.requests[0]["form"]
    assert form["MessagingServiceSid"] == ["MG" + "c" * 32]
    assert "From" not in form


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, twilio_error(20429, "Too Many Requests", 429), "20429"),
        (500, twilio_error(20500, "Internal Server Error", 500), "20500"),
        (503, b"<html>Service Unavailable</html>", "503"),
        # Refused credentials: a person fixes the token or the account, then they must go.
        (401, twilio_error(20003, "Authenticate", 401), "20003"),
        (403, twilio_error(20003, "Permission Denied", 403), "20003"),
    ],
)
def test_rate_limits_gateway_failures_and_refused_credentials_are_transient(
    fake_twilio, twilio_settings, status, body, code
):
    fake_twilio.answer(status, body)
    with pytest.raises(sms.TransientSmsError) as caught:
        backend(fake_twilio).send(to="+4520123456", body="Hej")
    assert f"HTTP {status}" in str(caught.value)
    assert code in str(caught.value)
    assert "\033[" not in str(caught.value)  # no terminal colours in the stored error


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21211, "The 'To' number +4512 is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
    ],
)
def test_a_refused_message_is_permanent_with_twilios_error_code(
    fake_twilio, twilio_settings, code, message
):
    fake_twilio.answer(400, twilio_error(code, message, 400))
    with pytest.raises(sms.PermanentSmsError) as caught:
        backend(fake_twilio).send(to="+4512", body="Hej")
    assert str(code) in str(caught.value)
    assert message in str(caught.value)


def test_a_timeout_is_transient(fake_twilio, twilio_settings):
    fake_twilio.answer(201, created(), delay=2)
    started = time.monotonic()
    with pytest.raises(sms.TransientSmsError):
        backend(fake_twilio, timeout=0.3).send(to="+4520123456", body="Hej")
    assert time.monotonic() - started < 1.5


def test_an_unreachable_gateway_is_transient(twilio_settings):
    server = FakeTwilio()
    url = server.url
    server.server_close()  # nothing listens on that port now
    with pytest.raises(sms.TransientSmsError):
        sms.TwilioBackend(http_client=LocalHttpClient(url, timeout=2)).send(
            to="+4520123456", body="Hej"
        )


def test_the_default_http_client_has_a_bounded_timeout(twilio_settings):
    client = sms.TwilioBackend().client.http_client
    assert 0 < client.timeout <= 30


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("TWILIO_ACCOUNT_SID", "", "TWILIO_ACCOUNT_SID"),
        ("TWILIO_AUTH_TOKEN", "", "TWILIO_AUTH_TOKEN"),
        ("TWILIO_AUTH_TOKEN", "dev-webhook-token", "TWILIO_AUTH_TOKEN"),
        ("TWILIO_FROM_NUMBER", "", "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
    ],
)
def test_missing_credentials_are_a_clear_configuration_error(
    twilio_settings, setting, value, named
):
    setattr(twilio_settings, setting, value)
    with pytest.raises(ImproperlyConfigured, match=named):
        sms.TwilioBackend()


# --- Through the outbox -----------------------------------------------------------------------


class LocalTwilioBackend(sms.TwilioBackend):
    """What settings.SMS_BACKEND names in the outbox tests: Twilio, at the local imitation."""

    url = ""

    def __init__(self):
        super().__init__(http_client=LocalHttpClient(self.url))


@pytest.fixture
def outbox_backend(fake_twilio, twilio_settings, monkeypatch):
    monkeypatch.setattr(LocalTwilioBackend, "url", fake_twilio.url)
    twilio_settings.SMS_BACKEND = f"{__name__}.LocalTwilioBackend"
    return fake_twilio


@pytest.fixture
def participant(modic, site1, clinician):
    from tests import factories

    return factories.enrolled_participant(modic, site1, clinician)


def test_a_message_sent_through_twilio_keeps_twilios_id(outbox_backend, participant):
    outbox_backend.answer(201, created("SM" + "d" * 32))
    message = services.sms_queue(participant=participant, body="Hej", kind="visit_reminder")

    assert services.sms_send_now(message_id=message.pk) == "sent"

    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert message.gateway_message_id == "SM" + "d" * 32
    assert outbox_backend.requests[0]["form"]["To"] == [participant.phone]


def test_a_message_twilio_refuses_is_failed_with_the_error_code(outbox_backend, participant):
    outbox_backend.answer(400, twilio_error(21211, "Invalid 'To' Phone Number", 400))
    message = services.sms_queue(participant=participant, body="Hej", kind="visit_reminder")

    assert services.sms_send_now(message_id=message.pk) == "failed"

    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED
    assert "21211" in message.last_error


def test_a_rate_limited_message_stays_queued_for_a_retry(outbox_backend, participant):
    outbox_backend.answer(429, twilio_error(20429, "Too Many Requests", 429))
    message = services.sms_queue(participant=participant, body="Hej", kind="visit_reminder")

    with pytest.raises(sms.TransientSmsError):
        services.sms_send_now(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED
    assert message.attempts == 1
    assert "20429" in message.last_error


# --- The deploy check -------------------------------------------------------------------------


def test_the_deploy_check_warns_when_twilio_is_chosen_without_credentials(twilio_settings):
    from trial.checks import twilio_credentials

    twilio_settings.SMS_BACKEND = "outcomes.sms.gateways.TwilioBackend"
    assert twilio_credentials(None) == []
    twilio_settings.TWILIO_AUTH_TOKEN = "dev-webhook-token"
    twilio_settings.TWILIO_FROM_NUMBER = ""
    twilio_settings.SMS_WEBHOOK_BASE_URL = "http://trial.example.org"
    warnings = twilio_credentials(None)
    assert [w.id for w in warnings] == ["trial.W001", "trial.W002"]
    assert "TWILIO_AUTH_TOKEN" in warnings[0].msg
    assert "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID" in warnings[0].msg
    # Another gateway needs none of it.
    twilio_settings.SMS_BACKEND = "outcomes.sms.gateways.FileBackend"
    assert twilio_credentials(None) == []
