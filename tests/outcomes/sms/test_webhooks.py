"""The SMS gateway's webhooks (outcomes.sms.webhooks), posted to as Twilio would: signed forms.

Signed, a request is acted on once however often it is delivered; unsigned or signed wrongly,
it is refused with 403 and nothing is stored; malformed, it gets a clean 4xx, never a 500.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pytest_django.live_server_helper import LiveServer
from twilio.request_validator import RequestValidator

from outcomes.sms import services, tracking, webhooks
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsAnswer, SmsWeek
from participants.models import Participant
from participants.services import participant_randomize, trial_today
from tests import factories

TOKEN = "test-webhook-token"
PUBLIC = "https://trial.example.org"
UNKNOWN = "+4599999999"


@pytest.fixture(autouse=True)
def webhook_settings(settings, tmp_path):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.SMS_WEBHOOK_BASE_URL = PUBLIC
    settings.SMS_BACKEND = "outcomes.sms.gateways.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    return settings


def new_sid() -> str:
    return f"SM{uuid.uuid4().hex}"


def post_signed(
    client: Client,
    name: str,
    fields: dict,
    *,
    token: str = TOKEN,
    signed_url: str | None = None,
    query: str = "",
    signature: str | None = None,
):
    """POST the form as Twilio does: urlencoded, signed over the public URL and the fields."""
    path = reverse(name) + (f"?{query}" if query else "")
    url = signed_url if signed_url is not None else PUBLIC + path
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, fields)
    return client.post(
        path,
        urllib.parse.urlencode(fields),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


def inbound(from_number: str, body: str, sid: str | None = None) -> dict:
    return {
        "MessageSid": sid or new_sid(),
        "SmsMessageSid": sid or "",
        "AccountSid": "AC" + "1" * 32,
        "From": from_number,
        "To": "+4570000000",
        "Body": body,
        "NumMedia": "0",
    }


def sent_sms(path: str) -> list[dict]:
    """What the FileBackend sent."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def assert_twiml(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    assert list(root) == []  # replies go through the outbox, not the TwiML


@pytest.fixture
def tracked(modic, site1, clinician):
    """A randomized participant whose SMS week is open: randomized ten days ago, so the last
    Sunday's round has been sent."""
    participant = factories.enrolled_participant(modic, site1, clinician)
    participant_randomize(participant=participant, by=clinician)
    ten_days_ago = trial_today(modic) - dt.timedelta(days=10)
    Participant.objects.filter(pk=participant.pk).update(
        consent_date=ten_days_ago, randomized_on=ten_days_ago
    )
    result = tracking.sms_weekly_send(trial=modic, now=timezone.now())
    assert result.opened == 1
    participant.refresh_from_db()
    return participant


# --- Signature --------------------------------------------------------------------------------


def test_a_signed_reply_gets_empty_twiml_and_is_stored(client, db):
    response = post_signed(client, "sms_inbound", inbound(UNKNOWN, "3"))
    assert_twiml(response)
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    "tamper",
    ["missing", "garbage", "wrong token", "other url", "changed body", "application url"],
)
def test_an_unsigned_or_wrongly_signed_request_is_refused_and_nothing_is_stored(client, db, tamper):
    fields = inbound(UNKNOWN, "3")
    kwargs = {}
    if tamper == "missing":
        kwargs["signature"] = ""
    elif tamper == "garbage":
        kwargs["signature"] = "not-a-signature=="
    elif tamper == "wrong token":
        kwargs["token"] = "someone-elses-token"
    elif tamper == "other url":
        kwargs["signed_url"] = "https://evil.example.org/sms/inbound/"
    elif tamper == "application url":
        # What the application sees behind a proxy is not what the gateway signed.
        kwargs["signed_url"] = "http://testserver/sms/inbound/"
    elif tamper == "changed body":
        kwargs["signature"] = RequestValidator(TOKEN).compute_signature(
            PUBLIC + reverse("sms_inbound"), {**fields, "Body": "7"}
        )
    response = post_signed(client, "sms_inbound", fields, **kwargs)
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_without_a_token_every_request_is_refused_and_the_reason_logged(
    client, db, webhook_settings, caplog
):
    webhook_settings.TWILIO_AUTH_TOKEN = ""
    with caplog.at_level(logging.ERROR, logger="outcomes.sms.webhooks"):
        response = post_signed(client, "sms_inbound", inbound(UNKNOWN, "3"), token="")
    assert response.status_code == 403
    assert "TWILIO_AUTH_TOKEN is not set" in caplog.text
    assert not InboundMessage.objects.exists()


def test_the_signature_covers_a_query_string(client, db):
    response = post_signed(client, "sms_inbound", inbound(UNKNOWN, "3"), query="site=01")
    assert_twiml(response)


def test_the_webhooks_need_no_login_and_no_csrf_token(db):
    response = post_signed(Client(enforce_csrf_checks=True), "sms_inbound", inbound(UNKNOWN, "3"))
    assert_twiml(response)


@pytest.mark.parametrize("name", ["sms_inbound", "sms_status"])
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(client, db, name, method):
    response = getattr(client, method)(reverse(name))
    assert response.status_code == 405


# --- Inbound ----------------------------------------------------------------------------------


def test_a_reply_lands_in_the_participants_record(client, tracked):
    fields = inbound(tracked.phone, "3")
    response = post_signed(client, "sms_inbound", fields)

    assert_twiml(response)
    message = InboundMessage.objects.get(gateway_message_id=fields["MessageSid"])
    assert message.participant == tracked
    assert message.kind == InboundMessage.Kind.ANSWER
    assert message.value == 3
    answer = SmsAnswer.objects.get(participant=tracked)
    assert (answer.value, answer.question.code, answer.message) == (3, "bothersome", message)
    week = SmsWeek.objects.get(participant=tracked)
    assert week.answered == 1
    # The next question is queued in the outbox as the reply.
    assert message.reply.kind == OutboundMessage.Kind.SMS_QUESTION
    assert message.reply.question.code == "sick_leave"


def test_the_reply_is_sent_after_the_request_commits(
    client, tracked, webhook_settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, "sms_inbound", inbound(tracked.phone, "3"))
    assert_twiml(response)
    sent = sent_sms(webhook_settings.SMS_FILE_PATH)
    assert [m["to"] for m in sent] == [tracked.phone]
    assert "sygemeldt" in sent[0]["body"]


def test_a_redelivered_message_is_answered_the_same_and_acted_on_once(client, tracked):
    fields = inbound(tracked.phone, "3")
    first = post_signed(client, "sms_inbound", fields)
    outbox = OutboundMessage.objects.count()
    again = post_signed(client, "sms_inbound", fields)

    assert_twiml(again)
    assert again.content == first.content
    assert InboundMessage.objects.filter(gateway_message_id=fields["MessageSid"]).count() == 1
    assert SmsAnswer.objects.filter(participant=tracked).count() == 1
    assert OutboundMessage.objects.count() == outbox


def test_a_message_from_an_unknown_number_is_stored_and_not_answered(client, tracked):
    outbox = OutboundMessage.objects.count()
    fields = inbound(UNKNOWN, "3")
    assert_twiml(post_signed(client, "sms_inbound", fields))

    message = InboundMessage.objects.get(gateway_message_id=fields["MessageSid"])
    assert (message.kind, message.participant, message.reply) == ("unknown_number", None, None)
    assert message.body == "3"
    assert OutboundMessage.objects.count() == outbox


def test_a_missing_body_is_an_empty_message(client, tracked):
    fields = inbound(tracked.phone, "")
    del fields["Body"]
    assert_twiml(post_signed(client, "sms_inbound", fields))
    message = InboundMessage.objects.get(gateway_message_id=fields["MessageSid"])
    assert (message.body, message.kind) == ("", InboundMessage.Kind.INVALID)


@pytest.mark.parametrize(
    ("field", "value"),
    [("MessageSid", None), ("MessageSid", ""), ("MessageSid", "x" * 65), ("From", None)],
)
def test_a_missing_message_id_or_sender_is_a_bad_request(client, db, field, value):
    fields = inbound(UNKNOWN, "3")
    if value is None:
        del fields[field]
    else:
        fields[field] = value
    response = post_signed(client, "sms_inbound", fields)
    assert response.status_code == 400
    assert not InboundMessage.objects.exists()


def test_a_long_body_is_stored_whole(client, db):
    """The gateway's raw text is never refused or cut: no data lost (pages cut it for display
    only; the request size limit bounds it)."""
    fields = inbound(UNKNOWN, "3" + "x" * 100_000)
    assert_twiml(post_signed(client, "sms_inbound", fields))
    message = InboundMessage.objects.get(gateway_message_id=fields["MessageSid"])
    assert not message.body_truncated
    assert message.body == fields["Body"]


def test_an_absurdly_large_request_is_refused_cleanly(client, db, webhook_settings):
    webhook_settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    response = post_signed(client, "sms_inbound", inbound(UNKNOWN, "x" * 200_000))
    assert response.status_code == 413
    assert not InboundMessage.objects.exists()


def test_too_many_fields_are_refused_cleanly(client, db):
    fields = {**inbound(UNKNOWN, "3"), **{f"F{i}": "x" for i in range(1100)}}
    response = post_signed(client, "sms_inbound", fields)
    assert response.status_code == 413


def test_a_broken_multipart_body_is_a_bad_request(client, db):
    response = client.post(
        reverse("sms_inbound"),
        b"--xx\r\nbroken",
        content_type="multipart/form-data; boundary=xx",
        headers={"X-Twilio-Signature": "x"},
    )
    assert response.status_code in (400, 403)


def test_nul_characters_are_stored_as_replacement_characters(client, db):
    fields = inbound(UNKNOWN + "\x00", "3\x00 dage")
    assert_twiml(post_signed(client, "sms_inbound", fields))
    message = InboundMessage.objects.get(gateway_message_id=fields["MessageSid"])
    assert message.body == "3\ufffd dage"


# --- Fuzz: never a server error ---------------------------------------------------------------

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=50)
bodies = st.one_of(
    text,
    st.just(""),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1500, max_size=3000),
    st.sampled_from(["3", "STOP", "start", "tre", "3-4", "٣", "７ dage", " ", "\x00"]),
)
MISSING = object()


def maybe(strategy):
    return st.one_of(st.just(MISSING), strategy)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sid=maybe(st.one_of(st.just("valid"), text)),
    from_number=maybe(st.one_of(st.just("participant"), st.just(UNKNOWN), text)),
    body=maybe(bodies),
    to=maybe(text),
    extra=st.dictionaries(text.filter(bool), text, max_size=3),
)
@example(sid="valid", from_number="participant", body="3", to=MISSING, extra={})
@example(sid="valid", from_number=" ", body=MISSING, to=MISSING, extra={})
@example(sid="valid", from_number="\x00", body="\x00", to="\x00", extra={})
@example(sid="\x00", from_number=MISSING, body=MISSING, to=MISSING, extra={})
def test_fuzzed_signed_inbound_requests_are_stored_or_cleanly_refused(
    client, tracked, sid, from_number, body, to, extra
):
    fields = {k: v for k, v in extra.items()}
    if sid is not MISSING:
        fields["MessageSid"] = new_sid() if sid == "valid" else sid
    if from_number is not MISSING:
        fields["From"] = tracked.phone if from_number == "participant" else from_number
    if body is not MISSING:
        fields["Body"] = body
    if to is not MISSING:
        fields["To"] = to
    before = InboundMessage.objects.count()
    # An arbitrary id may repeat one of an earlier example: then it is a redelivery.
    # (Only a well-formed id is looked up: PostgreSQL refuses NUL in a query parameter.)
    sid_given = fields.get("MessageSid", "").strip()
    seen = bool(
        webhooks.MESSAGE_SID.fullmatch(sid_given)
        and InboundMessage.objects.filter(gateway_message_id=sid_given).exists()
    )

    response = post_signed(client, "sms_inbound", fields)

    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert_twiml(response)
        stored = InboundMessage.objects.get(gateway_message_id=fields["MessageSid"].strip())
        if seen:
            assert InboundMessage.objects.count() == before
        else:
            raw = fields.get("Body", "").replace("\x00", "\ufffd")
            assert stored.body == raw
            assert not stored.body_truncated
    else:
        assert InboundMessage.objects.count() == before


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sid=maybe(text),
    status=maybe(st.one_of(text, st.sampled_from(["delivered", "sent", "FAILED", "read"]))),
    error_code=maybe(text),
)
def test_fuzzed_signed_status_callbacks_never_fail(client, db, sid, status, error_code):
    fields = {}
    for name, value in (("MessageSid", sid), ("MessageStatus", status), ("ErrorCode", error_code)):
        if value is not MISSING:
            fields[name] = value
    response = post_signed(client, "sms_status", fields)
    assert response.status_code in (204, 400), response.content


# --- Delivery status --------------------------------------------------------------------------


@pytest.fixture
def sent_message(tracked):
    message = OutboundMessage.objects.get(participant=tracked)
    assert services.sms_send_now(message_id=message.pk) == "sent"
    message.refresh_from_db()
    assert message.gateway_message_id
    return message


def status(sid: str, value: str, error_code: str = "") -> dict:
    fields = {"MessageSid": sid, "MessageStatus": value, "AccountSid": "AC" + "1" * 32}
    if error_code:
        fields["ErrorCode"] = error_code
    return fields


def test_a_delivery_report_updates_the_message(client, sent_message):
    response = post_signed(client, "sms_status", status(sent_message.gateway_message_id, "sent"))
    assert response.status_code == 204
    sent_message.refresh_from_db()
    assert sent_message.delivery_status == "sent"
    assert sent_message.delivery_updated_at is not None


def test_a_failed_delivery_keeps_twilios_error_code(client, sent_message):
    fields = status(sent_message.gateway_message_id, "undelivered", error_code="30003")
    assert post_signed(client, "sms_status", fields).status_code == 204
    sent_message.refresh_from_db()
    assert (sent_message.delivery_status, sent_message.delivery_error_code) == (
        "undelivered",
        "30003",
    )


def test_an_older_status_arriving_late_does_not_overwrite_a_newer_one(client, sent_message):
    sid = sent_message.gateway_message_id
    for value in ("queued", "delivered", "sent", "queued"):
        assert post_signed(client, "sms_status", status(sid, value)).status_code == 204
    sent_message.refresh_from_db()
    assert sent_message.delivery_status == "delivered"


def test_a_report_for_an_unknown_message_is_accepted_so_the_gateway_stops(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="outcomes.sms.webhooks"):
        response = post_signed(client, "sms_status", status(new_sid(), "delivered"))
    assert response.status_code == 204
    assert "unknown message" in caplog.text


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus"])
def test_a_report_without_id_or_status_is_a_bad_request(client, db, missing):
    fields = status(new_sid(), "delivered")
    del fields[missing]
    assert post_signed(client, "sms_status", fields).status_code == 400


def test_an_unsigned_report_is_refused(client, sent_message):
    fields = status(sent_message.gateway_message_id, "failed")
    assert post_signed(client, "sms_status", fields, signature="").status_code == 403
    sent_message.refresh_from_db()
    assert sent_message.delivery_status == ""


# --- The simulator, against a running server --------------------------------------------------


@pytest.fixture(scope="module")
def live_server(request):
    """A live server speaking plain http (see tests/test_browser.py for why the override has
    to be in force before it starts)."""
    with override_settings(SECURE_SSL_REDIRECT=False):
        server = LiveServer(os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS") or "localhost")
        try:
            yield server
        finally:
            server.stop()


def test_the_simulator_posts_a_signed_reply_that_lands_in_the_record(
    live_server, tracked, webhook_settings, capsys
):
    # Signed for the public URL, sent to wherever the server listens, as behind a proxy.
    call_command(
        "sms_simulate_reply", "--from", tracked.phone, "--body", "3 dage", "--url", live_server.url
    )

    out = capsys.readouterr().out
    assert "HTTP 200" in out
    assert "kind=answer value=3" in out
    answer = SmsAnswer.objects.get(participant=tracked)
    assert answer.value == 3
    # The reply (the next question) went out through the outbox once the request committed.
    sent = sent_sms(webhook_settings.SMS_FILE_PATH)
    assert [m["to"] for m in sent][-1] == tracked.phone
