"""The SMS gateway's webhooks (Twilio): inbound messages and delivery reports.

Both are public (the gateway has no login) and trust a request only when it carries Twilio's
signature of the public URL and the form fields (X-Twilio-Signature, HMAC-SHA1 with the auth
token); anything else gets 403 and nothing is read or stored. Both are idempotent, because the
gateway retries: a redelivered message or report changes nothing.

    sms_inbound   MessageSid, From (required), Body, To: stored raw and acted on by
                  outcomes.sms.tracking.sms_receive; answered with empty TwiML. Replies go through
                  the outbox (stored, retried, reported), never in the TwiML.
    sms_status    MessageSid, MessageStatus (required), ErrorCode: updates the message's
                  delivery state (outcomes.sms.services.sms_delivery_status).

Malformed requests get a short 4xx text (400 for missing fields, 413 for an absurd size),
never a server error.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from outcomes.sms import gateways as sms
from outcomes.sms import services, tracking
from trial.bad_input import nul_characters_allowed

logger = logging.getLogger(__name__)

# Twilio's message ids are "SM"/"MM" and 32 hex digits; anything of this shape fits the
# stored column (64 characters) and the logs.
MESSAGE_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# PostgreSQL text cannot hold NUL characters; a body with one is kept with U+FFFD instead
# (the webhooks are exempt from trial.bad_input's refusal: a participant's reply is never lost).
NUL = "\x00"


def _text(response_text: str, status: int) -> HttpResponse:
    return HttpResponse(response_text, status=status, content_type="text/plain; charset=utf-8")


def _signed_form(request: HttpRequest):
    """The request's form fields if the gateway signed them, else the response to refuse."""
    try:
        form = request.POST
    except (RequestDataTooBig, TooManyFieldsSent):
        # Django's DATA_UPLOAD_MAX_* limits: an SMS is never near them.
        return None, _text("Request too large.", 413)
    except (MultiPartParserError, UnreadablePostError):
        # Twilio posts urlencoded forms; a broken multipart body or a dropped connection
        # is nothing it sent.
        return None, _text("Unreadable request.", 400)
    token = settings.TWILIO_AUTH_TOKEN
    if not token:
        logger.error(
            "SMS webhook %s refused: TWILIO_AUTH_TOKEN is not set, so no request can be verified.",
            request.path,
        )
        return None, _text("Forbidden.", 403)
    url = sms.webhook_url(request.path_info)
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(token).validate(url, form, signature):
        # Logged without the fields: they may be a participant's message.
        logger.warning("SMS webhook %s: missing or invalid signature for %s", request.path, url)
        return None, _text("Forbidden.", 403)
    return form, None


def _clean(value: str) -> str:
    return value.replace(NUL, "\ufffd")


@csrf_exempt
@login_not_required
@nul_characters_allowed
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """An SMS to our number: store it, act on it, answer empty TwiML."""
    form, refusal = _signed_form(request)
    if refusal:
        return refusal
    message_sid = form.get("MessageSid", "").strip()
    from_number = _clean(form.get("From", "").strip())
    if not MESSAGE_SID.fullmatch(message_sid):
        return _text("MessageSid missing or malformed.", 400)
    if not from_number:
        return _text("From missing.", 400)
    message, created = tracking.sms_receive(
        gateway_message_id=message_sid,
        from_number=from_number,
        body=_clean(form.get("Body", "")),
        to_number=_clean(form.get("To", "").strip()),
    )
    if not created:
        logger.info("SMS %s delivered again; already stored as %s", message_sid, message.pk)
    return HttpResponse(str(MessagingResponse()), content_type="text/xml")


@csrf_exempt
@login_not_required
@nul_characters_allowed
@require_POST
def sms_status(request: HttpRequest) -> HttpResponse:
    """A delivery report for a message we sent: record it."""
    form, refusal = _signed_form(request)
    if refusal:
        return refusal
    message_sid = form.get("MessageSid", "").strip()
    # Twilio sends the status as MessageStatus and, in older accounts, also as SmsStatus.
    status = form.get("MessageStatus", "").strip() or form.get("SmsStatus", "").strip()
    if not MESSAGE_SID.fullmatch(message_sid):
        return _text("MessageSid missing or malformed.", 400)
    if not status:
        return _text("MessageStatus missing.", 400)
    error_code = _clean(form.get("ErrorCode", "").strip())
    if not services.sms_delivery_status(
        gateway_message_id=message_sid, status=_clean(status), error_code=error_code
    ):
        # Still a success for the gateway, which would otherwise retry a report we cannot
        # use (a message sent by another system on the account, or an unknown status).
        logger.info("Delivery report %r for unknown message %s ignored", status[:20], message_sid)
    return HttpResponse(status=204)
