"""The weekly SMS pages through the test client: a participant's conversation, the weekly
response grid, the worklist's SMS panel, the participant page's SMS status, and an opt-out
reported by phone. Data is made by the tracking services (weekly send, replies) at chosen
past times, so the pages see what production stores."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from outcomes.sms import selectors as sms_selectors
from outcomes.sms.models import InboundMessage, OutboundMessage, SmsWeek
from outcomes.sms.tracking import sms_receive, sms_weekly_send
from participants import services
from participants.models import Participant
from tests import factories

_numbers = itertools.count(1)
_gateway_ids = itertools.count(1)

# Fixed bounds, whatever the number of participants or messages.
CONVERSATION_QUERY_BOUND = 14
GRID_QUERY_BOUND = 14
WORKLIST_QUERY_BOUND = 16


# --- Helpers --------------------------------------------------------------------------------


def sms_participant(trial, site, by, *, days_ago: int = 30, phone: str | None = None):
    """A participant randomized `days_ago` days ago with a phone number of their own."""
    participant = factories.enrolled_participant(trial, site, by)
    services.participant_randomize(participant=participant, by=by, rng=random.Random(1))
    p = Participant.objects.get(pk=participant.pk)
    shift = dt.timedelta(days=days_ago)
    Participant.objects.filter(pk=p.pk).update(
        consent_date=p.consent_date - shift,
        randomized_on=p.randomized_on - shift,
        randomized_at=p.randomized_at - shift,
        phone=f"+4530{next(_numbers):06d}" if phone is None else phone,
    )
    return Participant.objects.get(pk=p.pk)


def send_moment(trial, send_date: dt.date) -> dt.datetime:
    """An hour after the trial's weekly send time on `send_date`."""
    schedule = trial.sms_schedule
    local = dt.datetime.combine(send_date, schedule.send_time, tzinfo=trial.zone)
    return local + dt.timedelta(hours=1)


def first_send_date(trial, randomized_on: dt.date) -> dt.date:
    """Week 1: the first send day strictly after the randomization date."""
    weekday = trial.sms_schedule.weekday
    return randomized_on + dt.timedelta(days=(weekday - randomized_on.weekday() - 1) % 7 + 1)


def reply(participant, body: str, at: dt.datetime) -> InboundMessage:
    message, _ = sms_receive(
        gateway_message_id=f"in-{next(_gateway_ids)}",
        from_number=participant.phone,
        body=body,
        received_at=at,
    )
    return message


def url(name: str, trial, pk: int | None = None) -> str:
    kwargs = {"code": trial.code}
    if pk is not None:
        kwargs["pk"] = pk
    return reverse(name, kwargs=kwargs)


def _outbound_at_simulated_times() -> None:
    """Outbound messages are stamped with the real clock (auto_now_add); move each to the
    simulated moment it was queued: a week's first question when the week opened, a reply
    a second after the message it answers."""
    for week in SmsWeek.objects.all():
        OutboundMessage.objects.filter(
            week=week,
            kind="sms_question",
            question_id=week.messages.order_by("pk").values("question_id")[:1],
        ).update(created_at=week.opened_at)
    for message in InboundMessage.objects.filter(reply__isnull=False):
        OutboundMessage.objects.filter(pk=message.reply_id).update(
            created_at=message.received_at + dt.timedelta(seconds=1)
        )


@pytest.fixture
def week1(modic, site1, site2, manager):
    """Site 01: one participant of each kind for the first weekly round; site 02: one who
    answered everything. Returns the participants and the week's send date."""
    people = {
        "all": sms_participant(modic, site1, manager),
        "partial": sms_participant(modic, site1, manager),
        "none": sms_participant(modic, site1, manager),
        "not_sent": sms_participant(modic, site1, manager, phone=""),
        "opted_out": sms_participant(modic, site1, manager),
        "site2": sms_participant(modic, site2, manager),
    }
    send_date = first_send_date(modic, people["all"].randomized_on)
    at = send_moment(modic, send_date)
    reply(people["opted_out"], "STOP", at - dt.timedelta(days=1))
    result = sms_weekly_send(trial=modic, now=at)
    assert (result.send_date, result.opened) == (send_date, 4)
    later = at + dt.timedelta(hours=1)
    for key, answers in (("all", ["3", "2"]), ("partial", ["5"]), ("site2", ["1", "0"])):
        for n, body in enumerate(answers):
            reply(people[key], body, later + dt.timedelta(minutes=n))
    reply(people["none"], "maybe tomorrow", later)
    _outbound_at_simulated_times()
    # Given a number only after the week went out.
    Participant.objects.filter(pk=people["not_sent"].pk).update(phone="+4531999999")
    people = {key: Participant.objects.get(pk=p.pk) for key, p in people.items()}
    return people, send_date


# --- The conversation -----------------------------------------------------------------------


def test_the_conversation_shows_both_directions_newest_first_with_the_raw_unreadable_reply(
    client, modic, coordinator, week1
):
    people, _ = week1
    client.force_login(coordinator)
    response = client.get(url("participant_sms", modic, people["none"].pk))
    assert response.status_code == 200
    rows = list(response.context["page"])
    assert [(r.direction, r.kind) for r in rows] == [
        ("out", "sms_clarification"),
        ("in", "invalid"),
        ("out", "sms_question"),
    ]
    assertContains(response, "maybe tomorrow")
    assertContains(response, "Not understood")
    assertContains(response, "Vi kunne ikke læse dit svar")  # the clarification sent back
    assertContains(response, "Days with bothersome low back pain")  # the question's label
    assert rows[2].week == 1 and rows[2].status == "queued"


def test_the_conversation_shows_answers_with_the_value_read(client, modic, manager, week1):
    people, _ = week1
    client.force_login(manager)
    response = client.get(url("participant_sms", modic, people["all"].pk))
    rows = list(response.context["page"])
    answers = [(r.body, r.value) for r in rows if r.direction == "in"]
    assert answers == [("2", 2), ("3", 3)]
    assert [r.kind for r in rows if r.direction == "out"] == [
        "sms_thanks",
        "sms_question",
        "sms_question",
    ]
    assertContains(response, "Thank-you")


def test_an_opt_out_by_reply_is_shown_in_the_conversation_and_the_status(
    client, modic, coordinator, week1
):
    people, _ = week1
    client.force_login(coordinator)
    response = client.get(url("participant_sms", modic, people["opted_out"].pk))
    assert [(r.direction, r.kind) for r in response.context["page"]] == [("in", "opt_out")]
    assertContains(response, "STOP")
    assert response.context["sms_status"].opted_out_at == people["opted_out"].sms_opted_out_at
    assertContains(response, "Record an opt-in reported by phone")


def test_a_clinician_of_another_site_cannot_read_the_conversation(
    client, modic, clinician, clinician_site2, statistician, week1
):
    people, _ = week1
    path = url("participant_sms", modic, people["none"].pk)
    client.force_login(clinician_site2)
    assert client.get(path).status_code == 403
    client.force_login(statistician)
    assert client.get(path).status_code == 403
    client.force_login(clinician)
    response = client.get(path)
    assert response.status_code == 200
    # Clinicians read the conversation but do not record opt-outs (coordinators do).
    assertNotContains(response, "reported by phone")


def test_a_participant_of_another_trial_is_not_found(client, modic, coordinator, week1):
    client.force_login(coordinator)
    assert client.get(url("participant_sms", modic, 999_999)).status_code == 404


def test_the_conversation_takes_the_same_queries_for_5_or_50_messages(
    client, modic, site1, coordinator, manager, django_assert_max_num_queries
):
    participant = sms_participant(modic, site1, manager)
    client.force_login(coordinator)
    path = url("participant_sms", modic, participant.pk)

    def add(n: int) -> None:
        now = timezone.now()
        for i in range(n):
            at = now - dt.timedelta(minutes=i)
            OutboundMessage.objects.create(
                trial=modic, participant=participant, to=participant.phone, body=f"Q {i}",
                kind="sms_question",
            )  # fmt: skip
            InboundMessage.objects.create(
                gateway_message_id=f"bulk-{participant.pk}-{n}-{i}", trial=modic,
                participant=participant, from_number=participant.phone, body=f"{i % 8}",
                received_at=at, kind="answer", value=i % 8,
            )  # fmt: skip

    counts = []
    for n in (3, 25):  # 6, then 56 messages: past one page
        add(n)
        with (
            CaptureQueriesContext(connection) as captured,
            django_assert_max_num_queries(CONVERSATION_QUERY_BOUND),
        ):
            response = client.get(path)
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert len(response.context["page"]) == sms_selectors.CONVERSATION_PAGE_SIZE
    assert response.context["page"].paginator.count == 56
    assert counts[0] == counts[1]


def test_a_later_page_continues_where_the_first_ended(client, modic, site1, coordinator, manager):
    participant = sms_participant(modic, site1, manager)
    now = timezone.now()
    for i in range(60):
        InboundMessage.objects.create(
            gateway_message_id=f"page-{i}", trial=modic, participant=participant,
            from_number=participant.phone, body=f"msg {i}",
            received_at=now - dt.timedelta(minutes=i), kind="no_question",
        )  # fmt: skip
    client.force_login(coordinator)
    first = client.get(url("participant_sms", modic, participant.pk))
    second = client.get(url("participant_sms", modic, participant.pk) + "?page=2")
    bodies = [r.body for r in first.context["page"]] + [r.body for r in second.context["page"]]
    assert bodies == [f"msg {i}" for i in range(60)]


# --- The weekly grid ------------------------------------------------------------------------


def cells_on(response, day: dt.date) -> dict[int, str]:
    column = response.context["send_dates"].index(day)
    return {row.participant.pk: row.cells[column].state for row in response.context["page"]}


def test_the_grid_shows_who_answered_which_week(client, modic, coordinator, week1):
    people, send_date = week1
    client.force_login(coordinator)
    response = client.get(url("sms_grid", modic))
    assert response.status_code == 200
    assert response.context["send_dates"][-1] >= send_date
    cells = cells_on(response, send_date)
    assert cells == {
        people["all"].pk: "all",
        people["partial"].pk: "partial",
        people["none"].pk: "none",
        people["not_sent"].pk: "not_sent",
        people["opted_out"].pk: "opted_out",
        people["site2"].pk: "all",
    }
    # The week before anyone's week 1 was sent to nobody.
    before = send_date - dt.timedelta(days=7)
    if before in response.context["send_dates"]:
        assert set(cells_on(response, before).values()) <= {"not_sent", "opted_out"}
    column = response.context["grid"].columns[response.context["send_dates"].index(send_date)]
    assert (column.sent, column.answered, column.complete) == (4, 3, 2)
    assertContains(response, 'data-state="partial"')


def test_the_site_filter_narrows_the_grid_and_its_rates(client, modic, site1, coordinator, week1):
    people, send_date = week1
    client.force_login(coordinator)
    response = client.get(url("sms_grid", modic) + f"?site={site1.pk}")
    assert people["site2"].pk not in cells_on(response, send_date)
    column = response.context["grid"].columns[response.context["send_dates"].index(send_date)]
    assert (column.sent, column.answered) == (3, 2)


def test_a_clinician_sees_only_the_grid_of_their_own_site(
    client, modic, site1, clinician_site2, week1
):
    people, send_date = week1
    client.force_login(clinician_site2)
    response = client.get(url("sms_grid", modic))
    assert list(cells_on(response, send_date)) == [people["site2"].pk]
    # Asking for another site's grid shows nothing of it.
    response = client.get(url("sms_grid", modic) + f"?site={site1.pk}")
    assert cells_on(response, send_date) == {}
    assertNotContains(response, people["all"].number)


def test_the_grid_goes_back_and_forward_a_page_of_weeks(client, modic, coordinator, week1):
    client.force_login(coordinator)
    now = client.get(url("sms_grid", modic))
    dates = now.context["send_dates"]
    assert len(dates) == sms_selectors.GRID_COLUMNS
    assert now.context["later"] is None
    earlier = client.get(url("sms_grid", modic) + f"?until={now.context['earlier']:%Y-%m-%d}")
    assert earlier.context["send_dates"][-1] == dates[0] - dt.timedelta(days=7)
    assert earlier.context["later"] == dates[-1]
    # A date in the future, or garbage, shows the current weeks.
    for value in ("2999-01-01", "yesterday", "2024-02-30"):
        assert client.get(url("sms_grid", modic) + f"?until={value}").context["send_dates"] == dates
    # A date so early that counting weeks back from it would leave the calendar: no error.
    for value in ("0001-01-01", "0002-01-01"):
        assert client.get(url("sms_grid", modic) + f"?until={value}").status_code == 200


def test_the_grid_takes_the_same_queries_for_5_or_50_participants(
    client, modic, site1, site2, coordinator, manager, django_assert_max_num_queries
):
    client.force_login(coordinator)
    path = url("sms_grid", modic)
    counts = []
    for n in (5, 45):
        people = [sms_participant(modic, (site1, site2)[i % 2], manager) for i in range(n)]
        send_date = first_send_date(modic, people[0].randomized_on)
        sms_weekly_send(trial=modic, now=send_moment(modic, send_date))
        for p in people[::3]:
            reply(p, "4", send_moment(modic, send_date) + dt.timedelta(hours=2))
        with (
            CaptureQueriesContext(connection) as captured,
            django_assert_max_num_queries(GRID_QUERY_BOUND),
        ):
            response = client.get(path)
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
    assert response.context["page"].paginator.count == 50
    assert len(response.context["page"]) == sms_selectors.GRID_PAGE_SIZE
    assert SmsWeek.objects.count() == 50
    assert counts[0] == counts[1]


# --- Worklist panel and participant page ----------------------------------------------------


def test_the_worklist_lists_silent_and_opted_out_participants_with_links(
    client, modic, coordinator, week1
):
    people, _ = week1
    Participant.objects.filter(pk=people["none"].pk).update(sms_missed_weeks=2)
    Participant.objects.filter(pk=people["partial"].pk).update(sms_missed_weeks=1)
    client.force_login(coordinator)
    response = client.get(url("worklist", modic))
    alerts = response.context["sms_alerts"]
    assert [p.pk for p in alerts.silent] == [people["none"].pk]
    assert [p.pk for p in alerts.opted_out] == [people["opted_out"].pk]
    assert (alerts.silent_count, alerts.opted_out_count) == (1, 1)
    assertContains(response, 'id="sms-alerts"')
    assertContains(response, url("participant_sms", modic, people["none"].pk))
    assertContains(response, url("participant_sms", modic, people["opted_out"].pk))


def test_the_worklist_panel_is_limited_to_the_users_sites(
    client, modic, site2, clinician_site2, manager, week1
):
    people, _ = week1
    Participant.objects.filter(pk__in=[people["none"].pk, people["site2"].pk]).update(
        sms_missed_weeks=3
    )
    client.force_login(clinician_site2)
    alerts = client.get(url("worklist", modic)).context["sms_alerts"]
    assert [p.pk for p in alerts.silent] == [people["site2"].pk]
    assert alerts.opted_out == []


def test_the_worklist_takes_the_same_queries_with_5_or_50_sms_alerts(
    client, modic, site1, site2, coordinator, manager, django_assert_max_num_queries
):
    client.force_login(coordinator)
    counts = []
    for n in (5, 45):
        people = [sms_participant(modic, (site1, site2)[i % 2], manager) for i in range(n)]
        Participant.objects.filter(pk__in=[p.pk for p in people[::2]]).update(sms_missed_weeks=2)
        Participant.objects.filter(pk__in=[p.pk for p in people[1::2]]).update(
            sms_opted_out_at=timezone.now()
        )
        with (
            CaptureQueriesContext(connection) as captured,
            django_assert_max_num_queries(WORKLIST_QUERY_BOUND),
        ):
            response = client.get(url("worklist", modic))
        counts.append(len(captured.captured_queries))
    alerts = response.context["sms_alerts"]
    assert len(alerts.silent) == sms_selectors.ALERT_LIMIT
    assert (alerts.silent_count, alerts.opted_out_count) == (26, 24)
    assertContains(response, "20 of 26 shown")
    assert counts[0] == counts[1]


def test_the_participant_page_shows_the_sms_status_and_links_the_conversation(
    client, modic, coordinator, week1
):
    people, _ = week1
    Participant.objects.filter(pk=people["none"].pk).update(sms_missed_weeks=2)
    client.force_login(coordinator)
    response = client.get(url("participant_detail", modic, people["none"].pk))
    status = response.context["sms_status"]
    assert (status.weeks_sent, status.weeks_answered, status.silent_weeks) == (1, 0, 2)
    assert (status.language, status.language_is_default) == ("Dansk", True)
    assertContains(response, "0 of 1 sent")
    assertContains(response, "2 weeks in a row without an answer")
    assertContains(response, url("participant_sms", modic, people["none"].pk))

    response = client.get(url("participant_detail", modic, people["partial"].pk))
    status = response.context["sms_status"]
    assert (status.weeks_sent, status.weeks_answered, status.weeks_complete) == (1, 1, 0)

    response = client.get(url("participant_detail", modic, people["opted_out"].pk))
    assertContains(response, "since ")
    assert response.context["sms_status"].opted_out_at is not None


def test_the_nav_links_the_grid_for_roles_that_follow_up(
    client, modic, coordinator, statistician, week1
):
    client.force_login(coordinator)
    assertContains(client.get(url("worklist", modic)), url("sms_grid", modic))
    client.force_login(statistician)
    assertNotContains(client.get(url("balance", modic)), url("sms_grid", modic))


# --- Opt-out and opt-in reported by phone ---------------------------------------------------


def test_a_coordinator_records_an_opt_out_reported_by_phone_and_queued_messages_stop(
    client, modic, coordinator, week1
):
    people, _ = week1
    participant = people["partial"]
    queued = OutboundMessage.objects.filter(participant=participant, status="queued")
    assert queued.exists()
    client.force_login(coordinator)
    path = url("participant_sms_consent", modic, participant.pk)
    response = client.post(path, {"reason": "Phoned the site: no more texts"})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.sms_opted_out_at is not None
    assert not queued.exists()
    assert OutboundMessage.objects.filter(participant=participant, status="cancelled").exists()
    latest = participant.history.order_by("-history_date", "-history_id").first()
    assert latest.history_user == coordinator
    assert "Phoned the site" in latest.history_change_reason

    # And back in, again with a reason.
    response = client.post(path, {"reason": "Changed their mind at the visit"})
    assert response.status_code == 302
    participant.refresh_from_db()
    assert participant.sms_opted_out_at is None


def test_an_opt_out_needs_a_reason_and_a_coordinator(client, modic, clinician, coordinator, week1):
    people, _ = week1
    participant = people["none"]
    path = url("participant_sms_consent", modic, participant.pk)
    client.force_login(coordinator)
    response = client.post(path, {"reason": "  "})
    assert response.status_code == 200
    assert response.context["form"].errors
    client.force_login(clinician)
    assert client.post(path, {"reason": "Asked me"}).status_code == 403
    participant.refresh_from_db()
    assert participant.sms_opted_out_at is None


def test_the_open_week_is_shown_as_open_not_as_missed(client, modic, site1, coordinator, manager):
    participant = sms_participant(modic, site1, manager, days_ago=10)
    result = sms_weekly_send(trial=modic, now=timezone.now())
    assert result.opened == 1
    client.force_login(coordinator)
    response = client.get(url("sms_grid", modic))
    assert cells_on(response, result.send_date)[participant.pk] == "open"
    # A week later the same unanswered week is a missed one.
    with mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + dt.timedelta(days=7)
    ):
        later = client.get(url("sms_grid", modic) + f"?until={result.send_date:%Y-%m-%d}")
    assert cells_on(later, result.send_date)[participant.pk] == "none"
