"""Long text in the outcomes app: a correction's reason of the length the form allows is
kept whole in the history, raw SMS replies are stored whole and cut on pages only, and the
unblinding reason and other typed text have a maximum (tests/participants/test_text_limits.py
checks every model)."""

from __future__ import annotations

import datetime as dt

from pytest_django.asserts import assertContains, assertNotContains

from outcomes.sms.models import InboundMessage
from tests.outcomes.instruments import test_entry
from tests.outcomes.instruments.test_entry import all_four, entry, record
from tests.outcomes.test_sms_views import reply, sms_participant, url
from tests.participants.test_followup_views import day

# The entry tests' fixtures: a participant whose 10-week window is open, and that visit.
active = test_entry.active
w10 = test_entry.w10


def test_a_correction_reason_of_the_full_length_is_kept_whole_in_the_history(
    modic, coordinator, manager, w10
):
    record(w10, all_four(modic), coordinator, attended_on=day(modic, -2))
    reason = "Transcription error: " + "r" * 279  # 300 characters, as the form allows
    record(
        w10,
        all_four(modic, pain_value=3),
        manager,
        attended_on=day(modic, -2),
        reason_for_change=reason,
    )
    assert entry(w10, "pain").history.first().history_change_reason == reason


def test_a_very_long_sms_reply_is_kept_whole_and_cut_only_on_the_conversation_page(
    client, modic, site1, manager, coordinator
):
    participant = sms_participant(modic, site1, manager)
    body = "3 " + "long" * 1000  # 4,002 characters
    message = reply(participant, body, dt.datetime.now(dt.UTC))
    stored = InboundMessage.objects.get(pk=message.pk)
    assert stored.body == body and not stored.body_truncated

    client.force_login(coordinator)
    response = client.get(url("participant_sms", modic, participant.pk))
    assertContains(response, body[:500])
    assertNotContains(response, body)
    assertContains(response, "shown cut")


def test_the_unblinding_reason_has_a_maximum_next_to_the_field(client, modic, manager):
    from django.urls import reverse

    from trial.models import Trial

    client.force_login(manager)
    path = reverse("trial_unblind", kwargs={"code": modic.code})
    response = client.post(path, {"reason": "x" * 2001, "confirm": "on"})
    assert response.status_code == 200
    assert "at most 2000 characters" in str(response.context["form"].errors["reason"])
    assert Trial.objects.get(pk=modic.pk).unblinded_at is None
