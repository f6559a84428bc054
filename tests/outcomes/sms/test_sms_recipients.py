"""Who may be sent an SMS and who is silent (outcomes.sms.sms_recipients): the pure rules, their
database twins (outcomes.sms.sms_queries), and that every user of a rule follows the one rule:
the weekly job, the reminders, a reply, the sending task, the worklist, the grid and the
participant page."""

# The weekly-SMS fixtures of test_tracking are imported and used as arguments (F811).
# ruff: noqa: F811

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from django.urls import reverse

from outcomes.sms import selectors as sms_selectors
from outcomes.sms import services as sms_services
from outcomes.sms import sms_queries, sms_recipients
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsWeek
from participants.models import Participant
from tests.outcomes.sms.test_tracking import (  # noqa: F401 (fixtures)
    DAY,
    SUNDAY,
    _celery_eager,
    at,
    enroll,
    outbox,
    remind,
    reply,
    sms_file,
    weekly,
)

Status = Participant.Status


def test_the_rules_never_import_django():
    tree = ast.parse(Path(sms_recipients.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [name for name in imported if name.split(".")[0] == "django"]


def test_the_statuses_the_rules_name_are_participant_statuses():
    assert {sms_recipients.ACTIVE, *sms_recipients.NEVER_MESSAGED} <= set(Status.values)


def test_the_worklists_partial_index_holds_exactly_the_silent_participants():
    (index,) = [i for i in Participant._meta.indexes if i.name == "participant_sms_silent"]
    assert index.condition == sms_queries.silent_q()


# Every combination of what the rules read.
COMBINATIONS = list(
    itertools.product(
        [Status.ACTIVE, Status.LOST, Status.WITHDRAWN, Status.DECEASED, Status.COMPLETED],
        [False, True],  # opted out
        ["", "+4520000001"],  # phone
        [0, 1, 2, 3],  # missed weeks
    )
)


@pytest.mark.django_db
def test_each_query_matches_exactly_the_participants_its_predicate_accepts(enroll):
    p = enroll(SUNDAY - 3 * DAY)
    rows = Participant.objects.filter(pk=p.pk)
    for status, opted_out, phone, missed in COMBINATIONS:
        rows.update(
            status=status,
            sms_opted_out_at=at(SUNDAY) if opted_out else None,
            phone=phone,
            sms_missed_weeks=missed,
        )
        fields = {"status": status, "opted_out": opted_out}
        case = (status, opted_out, phone, missed)
        assert rows.filter(sms_queries.followed_q()).exists() == sms_recipients.followed(
            **fields
        ), case
        assert rows.filter(sms_queries.tracked_q()).exists() == sms_recipients.tracked(
            **fields, phone=phone
        ), case
        assert rows.filter(sms_queries.silent_q()).exists() == sms_recipients.silent(missed), case


EXCLUDED = {
    "lost": {"status": Status.LOST},
    "completed": {"status": Status.COMPLETED},
    "withdrawn": {"status": Status.WITHDRAWN},
    "opted out": {"sms_opted_out_at": at(SUNDAY - 2 * DAY)},
    "no phone": {"phone": ""},
}


@pytest.mark.parametrize("change", ["none", *EXCLUDED])
def test_a_participant_the_rule_excludes_gets_no_weekly_sms_no_reminder_no_reply_and_is_not_silent(
    change, modic, enroll, weekly, remind, reply, outbox
):
    p = enroll(SUNDAY - 10 * DAY)
    q = enroll(SUNDAY - 10 * DAY)
    weekly(at(SUNDAY - 7 * DAY))  # week 1 for both, while both are tracked
    phone = p.phone
    rows = Participant.objects.filter(pk=p.pk)
    rows.update(sms_missed_weeks=2, **EXCLUDED.get(change, {}))
    p.refresh_from_db()
    included = sms_recipients.tracked(
        status=p.status, opted_out=p.sms_opted_out_at is not None, phone=p.phone
    )
    assert included == (change == "none")

    assert remind(at(SUNDAY - 5 * DAY)) == (2 if included else 1)
    result = weekly(at(SUNDAY, 18, 1))
    assert result.opened == (2 if included else 1)
    assert SmsWeek.objects.filter(participant=p, week=2).exists() == included
    alerts = sms_selectors.sms_alerts(modic, modic.sites.all())
    assert (p.pk in [s.pk for s in alerts.silent]) == sms_recipients.followed(
        status=p.status, opted_out=p.sms_opted_out_at is not None
    )
    if phone and p.phone:
        message = reply(p, "3", at(SUNDAY, 19))
        assert (message.kind == InboundMessage.Kind.ANSWER) == included
        if not included:
            assert message.kind == InboundMessage.Kind.NOT_TRACKED
    # The sending task asks the same rule: a question queued before the change is stopped.
    queued = OutboundMessage.objects.create(
        trial=modic, participant=p, to=phone, body="x", kind=OutboundMessage.Kind.SMS_QUESTION
    )
    outcome = sms_services.sms_send_now(message_id=queued.pk)
    assert outcome == ("sent" if included else "cancelled")
    q.refresh_from_db()
    assert len(outbox.to(q)) == 3  # question, reminder and week 2: q is unaffected


@pytest.mark.parametrize("threshold", [2, 3])
def test_the_silent_threshold_drives_the_worklist_the_grid_and_the_participant_page(
    threshold, monkeypatch, client, modic, coordinator, enroll
):
    monkeypatch.setattr(sms_recipients, "SILENT_AFTER_WEEKS", threshold)
    p = enroll(SUNDAY - 10 * DAY)
    Participant.objects.filter(pk=p.pk).update(sms_missed_weeks=2)
    Participant.objects.filter(pk=enroll(SUNDAY - 10 * DAY).pk).update(sms_missed_weeks=3)
    client.force_login(coordinator)
    silent = threshold == 2

    worklist = client.get(reverse("worklist", kwargs={"code": modic.code}))
    assert (p.pk in [s.pk for s in worklist.context["sms_alerts"].silent]) == silent
    assert f"No answer for {threshold}+ weeks in a row" in worklist.content.decode()
    grid = client.get(reverse("sms_grid", kwargs={"code": modic.code}))
    assert ("2 silent" in grid.content.decode()) == silent
    page = client.get(reverse("participant_detail", kwargs={"code": modic.code, "pk": p.pk}))
    assert page.context["sms_status"].silent == silent
    assert ('text-bg-warning">2 weeks in a row' in page.content.decode()) == silent


def test_why_not_send_names_the_first_reason_that_applies():
    base = {"status_label": "Lost to follow-up", "tracking": True, "to": "+45"}
    why = sms_recipients.why_not_send
    assert why(status="active", opted_out=True, phone="+45", **base) == sms_recipients.OPTED_OUT
    assert why(status="lost", opted_out=False, phone="+45", **base) == (
        "Participant lost to follow-up."
    )
    visit_reminder = {**base, "tracking": False}
    assert why(status="lost", opted_out=False, phone="+45", **visit_reminder) == ""
    assert why(status="active", opted_out=False, phone="+46", **base) == (
        sms_recipients.NUMBER_CHANGED
    )
    assert why(status="active", opted_out=False, phone="+45", **base) == ""


def test_a_week_queried_through_its_participant_uses_the_same_rule(modic, enroll, weekly):
    p = enroll(SUNDAY - 3 * DAY)
    weekly(at(SUNDAY, 18, 1))
    weeks = SmsWeek.objects.filter(participant=p)
    assert weeks.filter(sms_queries.tracked_q("participant__")).count() == 1
    Participant.objects.filter(pk=p.pk).update(sms_opted_out_at=at(SUNDAY, 19))
    assert weeks.filter(sms_queries.tracked_q("participant__")).count() == 0
