"""Post an SMS reply to the running server's inbound webhook exactly as Twilio would: the same
form fields, signed with the configured auth token.

    DEBUG=1 .venv/bin/python manage.py sms_simulate_reply --from +4520123456 --body "3"

With DEBUG on and no TWILIO_AUTH_TOKEN, both this command and `make run` use the fixed
development token, so the signature matches. The signature covers SMS_WEBHOOK_BASE_URL (the
public URL, as Twilio signs it) whatever --url the request is actually sent to.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.urls import reverse
from twilio.request_validator import RequestValidator

from outcomes.sms import gateways as sms
from outcomes.sms.models import InboundMessage

TIMEOUT_SECONDS = 30


class Command(BaseCommand):
    help = "Post a signed inbound SMS to the webhook, as the gateway would, and show the result."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from", dest="from_number", required=True, help="sender, E.164 (+4520123456)"
        )
        parser.add_argument("--body", required=True, help='the reply text, e.g. "3"')
        parser.add_argument(
            "--to", default="", help="our number (default TWILIO_FROM_NUMBER or a placeholder)"
        )
        parser.add_argument(
            "--url",
            default="",
            help="where the server runs (default SMS_WEBHOOK_BASE_URL, e.g. http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--message-sid",
            default="",
            help="reuse a MessageSid to see a redelivery change nothing (default: a new one)",
        )

    def handle(self, *args, from_number, body, to, url, message_sid, **options):
        token = settings.TWILIO_AUTH_TOKEN
        if not token:
            raise CommandError(
                "TWILIO_AUTH_TOKEN is not set. Set it as the server has it, or run with DEBUG=1 "
                "to use the development token as `make run` does."
            )
        path = reverse("sms_inbound")
        fields = {
            "MessageSid": message_sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
            "From": from_number,
            "To": to or settings.TWILIO_FROM_NUMBER or "+4500000000",
            "Body": body,
            "NumMedia": "0",
        }
        signed_url = sms.webhook_url(path)
        signature = RequestValidator(token).compute_signature(signed_url, fields)
        target = (url or settings.SMS_WEBHOOK_BASE_URL).rstrip("/") + path
        request = urllib.request.Request(
            target,
            data=urllib.parse.urlencode(fields).encode(),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        self.stdout.write(
            f"POST {target} (signed for {signed_url}) MessageSid={fields['MessageSid']}"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                status, text = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CommandError(f"Could not reach {target}: {exc}") from exc
        self.stdout.write(f"HTTP {status}: {text.strip()[:500]}")
        if status == 403:
            self.stderr.write(
                "Refused: the server's TWILIO_AUTH_TOKEN or SMS_WEBHOOK_BASE_URL differs from "
                "this command's."
            )
        self._show_stored(fields["MessageSid"])
        if status >= 400:
            raise CommandError(f"The webhook answered {status}.")

    def _show_stored(self, message_sid: str) -> None:
        try:
            message = (
                InboundMessage.objects.select_related("participant", "question", "reply", "week")
                .filter(gateway_message_id=message_sid)
                .first()
            )
        except DatabaseError as exc:
            self.stdout.write(f"(Could not read the database to show what was stored: {exc})")
            return
        if message is None:
            self.stdout.write("Nothing stored under this MessageSid in this database.")
            return
        line = f"Stored: kind={message.kind}"
        if message.value is not None:
            line += f" value={message.value}"
        if message.question is not None:
            line += f" question={message.question.code}"
        if message.participant is not None:
            line += f" participant={message.participant.number or message.participant.pk}"
        if message.week_id is not None:
            line += f" week={message.week.week}"
        self.stdout.write(line)
        if message.reply is not None:
            self.stdout.write(f"Reply queued: {message.reply.body}")
