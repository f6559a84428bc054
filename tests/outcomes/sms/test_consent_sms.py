"""Opt-out and opt-in of the SMS (outcomes.sms.consent_sms): one service writes each, whether the
participant replied STOP/START or told the staff, and both leave the same state."""

from __future__ import annotations

# The weekly-SMS fixtures of test_tracking are imported and used as arguments (F811).
# ruff: noqa: F811
import pytest
from django.urls import reverse

from outcomes.sms import consent_sms, sms_recipients
from outcomes.sms.models import OutboundMessage
from participants.models import Participant
from tests.outcomes.sms.test_tracking import (  # noqa: F401 (fixtures)
    DAY,
    SUNDAY,
    _celery_eager,
    at,
    enroll,
    outbox,
    reply,
    sms_file,
    weekly,
)


@pytest.fixture
def calls(monkeypatch):
    """Which of the opt-out and opt-in services ran, the real ones running all the same."""
    seen = []
    for name in ("sms_opt_out", "sms_opt_in"):
        real = getattr(consent_sms, name)

        def spy(*, _real=real, _name=name, **kwargs):
            seen.append((_name, sorted(p.pk for p in kwargs["participants"])))
            return _real(**kwargs)

        monkeypatch.setattr(consent_sms, name, spy)
    return seen


def queue(participant: Participant) -> OutboundMessage:
    return OutboundMessage.objects.create(
        trial_id=participant.trial_id,
        participant=participant,
        to=participant.phone,
        body="Visit reminder",
        kind=OutboundMessage.Kind.VISIT_REMINDER,
    )


def test_a_stop_reply_and_an_opt_out_reported_to_staff_go_through_the_one_service(
    calls, client, modic, coordinator, enroll, reply
):
    by_reply, by_staff = enroll(SUNDAY - 3 * DAY), enroll(SUNDAY - 3 * DAY)
    queued = [queue(by_reply), queue(by_staff)]

    reply(by_reply, "STOP", at(SUNDAY, 12))
    client.force_login(coordinator)
    path = reverse("participant_sms_consent", kwargs={"code": modic.code, "pk": by_staff.pk})
    assert client.post(path, {"reason": "Phoned the site"}).status_code == 302

    assert calls == [("sms_opt_out", [by_reply.pk]), ("sms_opt_out", [by_staff.pk])]
    for message in queued:
        message.refresh_from_db()
        assert (message.status, message.last_error) == ("cancelled", sms_recipients.OPTED_OUT)
    reasons = [
        Participant.objects.get(pk=p.pk).history.order_by("-history_id")[0].history_change_reason
        for p in (by_reply, by_staff)
    ]
    assert reasons == [
        "Opted out of SMS by reply",
        "Opted out of SMS, reported to staff: Phoned the site",
    ]

    reply(by_reply, "START", at(SUNDAY, 13))
    assert client.post(path, {"reason": "Changed their mind"}).status_code == 302
    assert calls[2:] == [("sms_opt_in", [by_reply.pk]), ("sms_opt_in", [by_staff.pk])]
    assert not Participant.objects.filter(sms_opted_out_at__isnull=False).exists()


def test_stop_from_a_number_two_participants_share_opts_out_both_at_once(calls, enroll, reply):
    first, second = enroll(SUNDAY - 3 * DAY), enroll(SUNDAY - 3 * DAY)
    Participant.objects.filter(pk=second.pk).update(phone=first.phone)
    second.refresh_from_db()
    queued = queue(second)

    reply(first, "STOP", at(SUNDAY, 12))

    assert calls == [("sms_opt_out", sorted([first.pk, second.pk]))]
    assert Participant.objects.filter(sms_opted_out_at=at(SUNDAY, 12)).count() == 2
    queued.refresh_from_db()
    assert queued.status == "cancelled"
