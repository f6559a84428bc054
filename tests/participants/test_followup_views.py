"""The follow-up pages through the Django test client: the coordinator's worklist (tabs,
filters, ordering, counts, who sees what), recording attendance, misses, contact attempts
and status changes, the participant's timeline, the statistician's summary, bad input
shown next to its field, no 500 for garbage input, and a constant number of queries.

Participants are randomized today through the real services; tests that need the past
move the randomization (and the planned visits) back with `backdate`, or place one visit's
window relative to today with `place`.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from outcomes import participant_views
from participants import services
from participants.models import ContactAttempt, Participant, StatusChange, Visit
from tests import factories
from tests.participants.test_views import randomized_participant, url
from trial.models import Trial

Status = Participant.Status
Outcome = Visit.Outcome


# --- Helpers --------------------------------------------------------------------------------


def today(trial: Trial) -> dt.date:
    return services.trial_today(trial)


def day(trial: Trial, offset: int) -> dt.date:
    """`offset` days from the trial's today (negative: in the past)."""
    return today(trial) + dt.timedelta(days=offset)


def visit_of(participant: Participant, code: str) -> Visit:
    return Visit.objects.select_related("definition").get(
        participant=participant, definition__code=code
    )


def place(visit: Visit, start: int, end: int) -> Visit:
    """Move one visit's window to [today+start, today+end] (target at the window start)."""
    trial = visit.participant.trial
    Visit.objects.filter(pk=visit.pk).update(
        window_start=day(trial, start), target_date=day(trial, start), window_end=day(trial, end)
    )
    return Visit.objects.select_related("definition", "participant").get(pk=visit.pk)


def backdate(participant: Participant, n: int) -> Participant:
    """Pretend the participant consented and was randomized `n` days earlier: every date,
    the planned visits included, moves back by `n` days."""
    p = Participant.objects.get(pk=participant.pk)
    shift = dt.timedelta(days=n)
    Participant.objects.filter(pk=p.pk).update(
        consent_date=p.consent_date - shift,
        randomized_on=p.randomized_on - shift,
        randomized_at=p.randomized_at - shift,
    )
    for v in Visit.objects.filter(participant=p):
        Visit.objects.filter(pk=v.pk).update(
            target_date=v.target_date - shift,
            window_start=v.window_start - shift,
            window_end=v.window_end - shift,
            attended_on=v.attended_on - shift if v.attended_on else None,
        )
    return Participant.objects.get(pk=p.pk)


def change_status(participant, to_status, by, **kwargs) -> Participant:
    return services.participant_status_change(
        participant=participant,
        to_status=to_status,
        effective_on=today(participant.trial),
        reason="Reason given",
        by=by,
        **kwargs,
    )


def rows(response) -> list[tuple[str, str]]:
    """(participant number, visit code) of each worklist row, in page order."""
    return [(v.participant.number, v.definition.code) for v in response.context["page"]]


def state(participant: Participant):
    """Everything stored about a participant's follow-up, to show nothing changed."""
    return (
        Participant.objects.filter(pk=participant.pk).values().get(),
        list(Visit.objects.filter(participant=participant).order_by("pk").values()),
        list(ContactAttempt.objects.filter(participant=participant).values()),
        list(StatusChange.objects.filter(participant=participant).values()),
        participant.history.count(),
        Visit.history.filter(participant_id=participant.pk).count(),
    )


def field_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return dict(response.context["form"].errors)


def attended_post(on: dt.date | str, **extra) -> dict:
    value = on.isoformat() if isinstance(on, dt.date) else on
    return {"attended_on": value, **extra}


# The confirmation a visit recorded ahead of its window needs (a miss while the window is
# open, an attendance before it opens).
EARLY = {"confirm_early": "on", "early_reason": "Told us it will not happen"}


def status_post(to_status: str, *, on: dt.date, reason: str = "Moved abroad", **extra) -> dict:
    return {"to_status": to_status, "effective_on": on.isoformat(), "reason": reason, **extra}


# --- 1. The worklist ------------------------------------------------------------------------


@pytest.fixture
def followup_set(modic, site1, site2, manager):
    """Randomized participants of both sites, their 10-week visit placed in time.

    Open visits needing attention (most urgent first):
        a  site 01  10 weeks  overdue by 20 days
        b  site 02  10 weeks  overdue by 5 days
        k  site 01  1 year    overdue by 1 day (its 10-week visit was missed)
        c  site 01  10 weeks  due, window closes in 3 days
        d  site 02  10 weeks  due, window closes in 10 days
    Upcoming: e (site 01, opens in 5 days), f (site 02, opens in 20 days).
    Never on the worklist: g (withdrew, refused follow-up), h (died), i (10-week visit
    attended), j (10-week visit missed), and everyone's 1-year visit except k's.
    """
    p = {name: randomized_participant(modic, site, manager) for name, site in [
        ("a", site1), ("b", site2), ("c", site1), ("d", site2), ("e", site1), ("f", site2),
        ("g", site1), ("h", site2), ("i", site1), ("j", site2), ("k", site1),
    ]}  # fmt: skip
    place(visit_of(p["a"], "w10"), -48, -20)
    place(visit_of(p["b"], "w10"), -33, -5)
    place(visit_of(p["c"], "w10"), -25, 3)
    place(visit_of(p["d"], "w10"), -18, 10)
    place(visit_of(p["e"], "w10"), 5, 33)
    place(visit_of(p["f"], "w10"), 20, 48)
    place(visit_of(p["g"], "w10"), -40, -12)
    change_status(p["g"], Status.WITHDRAWN, manager, followup_allowed=False)
    place(visit_of(p["h"], "w10"), -3, 25)
    change_status(p["h"], Status.DECEASED, manager)
    place(visit_of(p["i"], "w10"), -40, -12)
    services.visit_record_attendance(
        visit=visit_of(p["i"], "w10"), attended_on=today(modic), by=manager
    )
    place(visit_of(p["j"], "w10"), -3, 25)
    early = EARLY["early_reason"]
    services.visit_record_missed(
        visit=visit_of(p["j"], "w10"), reason="Ill", early_reason=early, by=manager
    )
    services.visit_record_missed(
        visit=visit_of(p["k"], "w10"), reason="Away", early_reason=early, by=manager
    )
    place(visit_of(p["k"], "y1"), -20, -1)
    return {name: Participant.objects.get(pk=participant.pk) for name, participant in p.items()}


def expected(p: dict, *names: str) -> list[tuple[str, str]]:
    return [(p[name].number, "y1" if name == "k" else "w10") for name in names]


def test_the_worklist_shows_an_unrestricted_coordinator_due_and_overdue_visits_of_all_sites_most_overdue_first(
    client, modic, coordinator, followup_set
):
    client.force_login(coordinator)
    response = client.get(url("worklist", modic))
    assert response.status_code == 200
    assert response.context["bucket"] == "attention"
    assert rows(response) == expected(followup_set, "a", "b", "k", "c", "d")
    a = followup_set["a"]
    assertContains(response, url("participant_detail", modic, a.pk))
    assertContains(response, "Overdue 20 d")
    assertContains(response, "Overdue 5 d")
    assertContains(response, '<span class="badge text-bg-warning">Due</span>', count=2, html=True)


def test_the_worklist_shows_a_site_01_clinician_only_site_01_visits(
    client, modic, clinician, followup_set
):
    client.force_login(clinician)
    p = followup_set
    assert rows(client.get(url("worklist", modic))) == expected(p, "a", "k", "c")
    assert rows(client.get(url("worklist", modic), {"bucket": "overdue"})) == expected(p, "a", "k")
    assert rows(client.get(url("worklist", modic), {"bucket": "due"})) == expected(p, "c")
    assert rows(client.get(url("worklist", modic), {"bucket": "upcoming"})) == expected(p, "e")
    response = client.get(url("worklist", modic))
    assert response.context["counts"] == {"overdue": 2, "due": 1, "upcoming": 1}
    for other in ("b", "d", "f"):
        assertNotContains(response, p[other].number)
    # Asking for site 02 by its id shows nothing of site 02.
    site2 = modic.sites.get(code="02")
    assert rows(client.get(url("worklist", modic), {"site": site2.pk})) == []
    assert [s.code for s in response.context["sites"]] == ["01"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        pytest.param({"bucket": "overdue"}, "abk", id="overdue, most overdue first"),
        pytest.param({"bucket": "due"}, "cd", id="due, by window end"),
        pytest.param({"bucket": "upcoming"}, "e", id="upcoming in the default 14 days"),
        pytest.param({"bucket": "upcoming", "days": "30"}, "ef", id="upcoming in 30 days"),
        pytest.param({"bucket": "upcoming", "days": "4"}, "", id="upcoming in 4 days"),
        pytest.param({"site": "SITE2"}, "bd", id="site 02"),
        pytest.param({"site": "SITE1", "bucket": "overdue"}, "ak", id="site 01 overdue"),
        pytest.param({"visit": "w10"}, "abcd", id="10-week visits"),
        pytest.param({"visit": "y1"}, "k", id="1-year visits"),
        pytest.param({"visit": "y1", "site": "SITE2"}, "", id="1-year visits at site 02"),
        pytest.param({"bucket": "nonsense"}, "abkcd", id="unknown tab means attention"),
    ],
)
def test_the_worklist_tabs_and_filters_show_the_right_visits(
    client, modic, coordinator, followup_set, params, names
):
    ids = {
        "SITE1": str(modic.sites.get(code="01").pk),
        "SITE2": str(modic.sites.get(code="02").pk),
        "w10": str(modic.visit_definitions.get(code="w10").pk),
        "y1": str(modic.visit_definitions.get(code="y1").pk),
    }
    query = {key: ids.get(value, value) for key, value in params.items()}
    client.force_login(coordinator)
    response = client.get(url("worklist", modic), query)
    assert response.status_code == 200
    assert rows(response) == expected(followup_set, *names)
    if not names:
        assertContains(response, "Nothing here.")


def test_the_worklist_count_badges_match_the_tabs(client, modic, coordinator, followup_set):
    client.force_login(coordinator)
    for days, upcoming in ((14, 1), (30, 2)):
        response = client.get(url("worklist", modic), {"days": days})
        counts = response.context["counts"]
        assert counts == {"overdue": 3, "due": 2, "upcoming": upcoming}
        html = response.content.decode()
        for css, n in [
            ("text-bg-danger", 3),
            ("text-bg-warning", 2),
            ("text-bg-secondary", upcoming),
            ("text-bg-dark", 5),
        ]:
            assert re.search(rf'<span class="badge {css}">{n}</span>', html), (css, n)
        for bucket, n in [("attention", 5), ("overdue", 3), ("due", 2), ("upcoming", upcoming)]:
            tab = client.get(url("worklist", modic), {"bucket": bucket, "days": days})
            assert len(tab.context["page"]) == n, bucket


def test_the_worklist_count_badges_follow_the_site_and_visit_filters(
    client, modic, site1, coordinator, followup_set
):
    client.force_login(coordinator)
    for params in ({"site": site1.pk}, {"visit": modic.visit_definitions.get(code="w10").pk}):
        response = client.get(url("worklist", modic), params)
        counts = response.context["counts"]
        for bucket in ("overdue", "due"):
            tab = client.get(url("worklist", modic), {"bucket": bucket, **params})
            assert counts[bucket] == tab.context["page"].paginator.count, (params, bucket)


def test_an_empty_post_shows_the_errors_instead_of_an_empty_form(
    client, modic, coordinator, active
):
    client.force_login(coordinator)
    visit = visit_of(active, "w10")
    response = client.post(url("visit_missed", modic, visit.pk), {})
    assert response.status_code == 200
    assert "reason" in field_errors(response)
    visit.refresh_from_db()
    assert visit.outcome == Visit.Outcome.OPEN


def test_the_worklist_shows_the_participants_phone_name_and_last_contact(
    client, modic, coordinator, followup_set
):
    a = followup_set["a"]
    services.contact_attempt_log(participant=a, method="phone", result="no_answer", by=coordinator)
    client.force_login(coordinator)
    response = client.get(url("worklist", modic))
    assertContains(response, f'<a href="tel:{a.phone}">{a.phone}</a>', html=True)
    assertContains(response, "Test Person")
    row = next(v for v in response.context["page"] if v.participant_id == a.pk)
    assert row.last_contact_result == "no_answer"
    log = url("contact_log", modic, a.pk)
    assertContains(response, f"{log}?visit={visit_of(a, 'w10').pk}&next=worklist")


@pytest.mark.parametrize("bucket", ["attention", "overdue", "due", "upcoming"])
def test_the_worklist_never_shows_withdrawn_without_follow_up_deceased_or_recorded_visits(
    client, modic, coordinator, followup_set, bucket
):
    client.force_login(coordinator)
    response = client.get(url("worklist", modic), {"bucket": bucket, "days": 365})
    shown = {number for number, _ in rows(response)}
    for name in "ghij":
        assert followup_set[name].number not in shown
        assertNotContains(response, followup_set[name].number)
    g = visit_of(followup_set["g"], "w10")
    h = visit_of(followup_set["h"], "w10")
    assert (g.outcome, h.outcome) == (Outcome.NOT_REQUIRED, Outcome.NOT_REQUIRED)


def test_a_withdrawn_participant_who_allows_follow_up_stays_on_the_worklist(
    client, modic, coordinator, site1, manager
):
    participant = randomized_participant(modic, site1, manager)
    place(visit_of(participant, "w10"), -30, -2)
    change_status(participant, Status.WITHDRAWN, manager, followup_allowed=True)
    client.force_login(coordinator)
    response = client.get(url("worklist", modic))
    assert rows(response) == [(participant.number, "w10")]
    assertContains(response, "· withdrawn")


def test_the_worklist_pagination_keeps_the_tab_and_filters(
    client, modic, coordinator, site1, manager, monkeypatch
):
    """Page 2 of the overdue tab of site 01 must still be the overdue tab of site 01."""
    monkeypatch.setattr(participant_views, "PAGE_SIZE", 2)
    for offset in (-30, -20, -10):
        place(visit_of(randomized_participant(modic, site1, manager), "w10"), offset - 28, offset)
    due = randomized_participant(modic, site1, manager)
    place(visit_of(due, "w10"), -5, 5)
    client.force_login(coordinator)
    response = client.get(url("worklist", modic), {"bucket": "overdue", "site": site1.pk})
    assert len(response.context["page"]) == 2
    html = response.content.decode()
    next_link = re.search(r'<a class="page-link" href="([^"]+)">Next</a>', html)
    assert next_link, "no link to the next page"
    href = next_link.group(1).replace("&amp;", "&")
    assert "bucket=overdue" in href and f"site={site1.pk}" in href, (
        f"the Next link {href!r} drops the tab and filters: page 2 shows the default "
        "'Due and overdue' tab of all sites instead of page 2 of the overdue visits"
    )


# --- 2. Query counts ------------------------------------------------------------------------

# Measured: 16 and 18 whatever the number of rows (session, user, roles, trial, sites three
# times, then one query per list); the bound is the measurement, so any extra query fails.
WORKLIST_QUERY_BOUND = 16
DETAIL_QUERY_BOUND = 18


def _overdue_participants(trial, sites, by, count: int) -> None:
    for i in range(count):
        participant = randomized_participant(trial, sites[i % 2], by)
        place(visit_of(participant, "w10"), -30 - i % 7, -(i % 5) - 1)
        if i % 3 == 0:
            services.contact_attempt_log(
                participant=participant, method="sms", result="message", by=by
            )


def _count_queries(client, path, bound, django_assert_max_num_queries) -> tuple[int, object]:
    with (
        CaptureQueriesContext(connection) as captured,
        django_assert_max_num_queries(bound),
    ):
        response = client.get(path)
    assert response.status_code == 200
    return len(captured.captured_queries), response


def test_the_worklist_takes_the_same_few_queries_for_5_or_40_participants(
    client, modic, site1, site2, coordinator, manager, django_assert_max_num_queries
):
    client.force_login(coordinator)
    path = url("worklist", modic)
    _overdue_participants(modic, [site1, site2], manager, 5)
    with_5, response = _count_queries(
        client, path, WORKLIST_QUERY_BOUND, django_assert_max_num_queries
    )
    assert len(response.context["page"]) == 5
    _overdue_participants(modic, [site1, site2], manager, 35)
    with_40, response = _count_queries(
        client, path, WORKLIST_QUERY_BOUND, django_assert_max_num_queries
    )
    assert len(response.context["page"]) == 40
    assert with_5 == with_40


def test_the_participant_page_takes_the_same_queries_whatever_its_follow_up_history(
    client, modic, site1, coordinator, manager, django_assert_max_num_queries
):
    client.force_login(coordinator)
    quiet = randomized_participant(modic, site1, manager)
    busy = backdate(randomized_participant(modic, site1, manager), 100)
    w10, y1 = visit_of(busy, "w10"), visit_of(busy, "y1")
    services.visit_record_attendance(visit=w10, attended_on=day(modic, -10), by=coordinator)
    for i, result in enumerate(["no_answer", "message", "reached", "declined", "other"]):
        services.contact_attempt_log(
            participant=busy,
            method="phone",
            result=result,
            note=f"Attempt {i}",
            visit=(w10, y1, None)[i % 3],
            by=coordinator if i % 2 else manager,
        )
    change_status(busy, Status.LOST, coordinator)
    change_status(busy, Status.ACTIVE, manager)
    change_status(busy, Status.WITHDRAWN, coordinator, followup_allowed=True)

    with_none, response = _count_queries(
        client, url("participant_detail", modic, quiet.pk), DETAIL_QUERY_BOUND,
        django_assert_max_num_queries,
    )  # fmt: skip
    assert len(response.context["contacts"]) == 0
    with_much, response = _count_queries(
        client, url("participant_detail", modic, busy.pk), DETAIL_QUERY_BOUND,
        django_assert_max_num_queries,
    )  # fmt: skip
    assert len(response.context["contacts"]) == 5
    assert len(response.context["status_changes"]) == 3
    assert with_none == with_much


# --- 3. Recording follow-up through the pages -----------------------------------------------


@pytest.fixture
def active(modic, site1, manager) -> Participant:
    """A site-01 participant randomized 80 days ago: the 10-week window is open
    (it opened 17 days ago and closes in 11 days)."""
    return backdate(randomized_participant(modic, site1, manager), 80)


def test_logging_a_contact_attempt_stores_it_and_returns_to_the_participant(
    client, modic, coordinator, active
):
    w10 = visit_of(active, "w10")
    client.force_login(coordinator)
    response = client.get(url("contact_log", modic, active.pk), {"visit": w10.pk})
    assert response.status_code == 200
    assert response.context["form"].initial["visit"] == w10.pk
    assertContains(response, active.phone)

    response = client.post(
        url("contact_log", modic, active.pk),
        {"method": "phone", "result": "reached", "note": "  Comes on Monday ", "visit": w10.pk},
    )
    assertRedirects(response, url("participant_detail", modic, active.pk))
    attempt = ContactAttempt.objects.get()
    assert (attempt.participant, attempt.visit, attempt.by) == (active, w10, coordinator)
    assert (attempt.method, attempt.result, attempt.note) == ("phone", "reached", "Comes on Monday")


def test_logging_a_contact_attempt_from_the_worklist_returns_to_the_worklist(
    client, modic, coordinator, active
):
    client.force_login(coordinator)
    response = client.post(
        url("contact_log", modic, active.pk),
        {"method": "sms", "result": "message", "note": "", "visit": "", "next": "worklist"},
        follow=True,
    )
    assertRedirects(response, url("worklist", modic))
    assertContains(response, f"Contact attempt logged for {active.number}.")
    attempt = ContactAttempt.objects.get()
    assert (attempt.visit, attempt.method, attempt.result) == (None, "sms", "message")


def test_an_unknown_next_is_ignored_and_returns_to_the_participant(
    client, modic, coordinator, active
):
    client.force_login(coordinator)
    response = client.post(
        url("contact_log", modic, active.pk) + "?next=https://evil.example/",
        {"method": "phone", "result": "reached", "next": "https://evil.example/"},
    )
    assertRedirects(response, url("participant_detail", modic, active.pk))


def test_marking_a_visit_attended_inside_its_window_completes_it(
    client, modic, coordinator, active
):
    w10 = visit_of(active, "w10")
    client.force_login(coordinator)
    response = client.get(url("visit_attended", modic, w10.pk))
    assert response.status_code == 200
    assertContains(response, f'value="{today(modic).isoformat()}"')  # ISO for the date input

    attended_on = day(modic, -2)
    page = client.post(
        url("visit_attended", modic, w10.pk), attended_post(attended_on), follow=True
    )
    assertRedirects(page, url("participant_detail", modic, active.pk))
    w10.refresh_from_db()
    assert w10.outcome == Outcome.COMPLETED
    assert w10.attended_on == attended_on
    assert w10.in_window is True
    assert w10.recorded_by == coordinator
    assertContains(page, f"attended {attended_on:%d %b %Y}, inside the window.")
    assertContains(page, f"Attended {attended_on.day} {attended_on:%b %Y}")
    assertNotContains(page, "outside window")


def test_marking_a_visit_attended_outside_its_window_says_so(
    client, modic, coordinator, site1, manager
):
    participant = backdate(randomized_participant(modic, site1, manager), 100)
    w10 = visit_of(participant, "w10")
    assert w10.window_end == day(modic, -9)
    client.force_login(coordinator)
    response = client.post(
        url("visit_attended", modic, w10.pk),
        attended_post(today(modic), next="worklist"),
        follow=True,
    )
    assertRedirects(response, url("worklist", modic))
    assertContains(response, "OUTSIDE the window")
    w10.refresh_from_db()
    assert (w10.outcome, w10.attended_on, w10.in_window) == (
        Outcome.COMPLETED,
        today(modic),
        False,
    )
    page = client.get(url("participant_detail", modic, participant.pk))
    assertContains(page, "outside window")


def test_recording_a_missed_visit_keeps_the_reason(client, modic, coordinator, active):
    w10 = visit_of(active, "w10")
    client.force_login(coordinator)
    page = client.post(
        url("visit_missed", modic, w10.pk), {"reason": " In hospital ", **EARLY}, follow=True
    )
    assertRedirects(page, url("participant_detail", modic, active.pk))
    w10.refresh_from_db()
    assert (w10.outcome, w10.missed_reason, w10.attended_on) == (
        Outcome.MISSED,
        "In hospital",
        None,
    )
    assertContains(page, f"{active.number} 10 weeks: missed.")
    assertContains(page, "In hospital")


def test_withdrawing_without_follow_up_makes_the_open_visits_not_required(
    client, modic, coordinator, active
):
    client.force_login(coordinator)
    response = client.get(url("participant_status", modic, active.pk))
    assert [c for c, _ in response.context["form"].fields["to_status"].choices] == [
        "",
        "withdrawn",
        "lost",
        "deceased",
        "completed",
    ]
    page = client.post(
        url("participant_status", modic, active.pk),
        status_post("withdrawn", on=day(modic, -1), followup_allowed="no"),
        follow=True,
    )
    assertRedirects(page, url("participant_detail", modic, active.pk))
    assertContains(page, "Status changed.")
    active.refresh_from_db()
    assert active.status == Status.WITHDRAWN
    assert active.followup_allowed is False
    assert active.status_changed_on == day(modic, -1)
    assert set(
        Visit.objects.filter(participant=active).values_list("definition__code", "outcome")
    ) == {
        ("baseline", Outcome.COMPLETED),
        ("w10", Outcome.NOT_REQUIRED),
        ("y1", Outcome.NOT_REQUIRED),
    }
    change = StatusChange.objects.get(participant=active)
    assert (change.from_status, change.to_status, change.followup_allowed, change.by) == (
        Status.ACTIVE,
        Status.WITHDRAWN,
        False,
        coordinator,
    )
    assertContains(page, "(follow-up refused)")
    # Nothing left to record: no Attended/Missed buttons.
    assertNotContains(page, url("visit_attended", modic, visit_of(active, "y1").pk))


def test_the_participant_page_shows_the_visit_timeline_contacts_and_status_history(
    client, modic, coordinator, site1, manager
):
    participant = backdate(randomized_participant(modic, site1, manager), 100)
    w10, y1 = visit_of(participant, "w10"), visit_of(participant, "y1")
    services.visit_record_attendance(visit=w10, attended_on=day(modic, -12), by=coordinator)
    services.contact_attempt_log(
        participant=participant,
        method="phone",
        result="reached",
        note="Booked the 10-week visit",
        visit=w10,
        by=coordinator,
    )
    change_status(participant, Status.WITHDRAWN, coordinator, followup_allowed=True)
    client.force_login(coordinator)
    response = client.get(url("participant_detail", modic, participant.pk))
    assert [(v.definition.code, v.status_today) for v in response.context["visits"]] == [
        ("baseline", "completed"),
        ("w10", "completed"),
        ("y1", "upcoming"),
    ]
    html = response.content.decode()
    timeline = html[
        html.index('id="visit-timeline"') : html.index(
            "</table>", html.index('id="visit-timeline"')
        )
    ]
    attended = day(modic, -12)
    assert f"Attended {attended.day} {attended:%b %Y}" in timeline
    assert "Upcoming" in timeline
    assert url("visit_attended", modic, y1.pk) in timeline  # follow-up still allowed
    contacts = html[html.index('id="contact-attempts"') :]
    assert "Phone call · Reached · 10 weeks · coord" in contacts
    assert "Booked the 10-week visit" in contacts
    history = html[html.index('id="status-history"') :]
    assert "randomized" in history
    assert (
        "Active → <strong>Withdrawn</strong> · Reason given (follow-up allowed) · coord" in history
    )


def test_the_participant_page_shows_overdue_and_missed_visits(
    client, modic, coordinator, site1, manager
):
    participant = randomized_participant(modic, site1, manager)
    place(visit_of(participant, "w10"), -40, -3)
    services.visit_record_missed(
        visit=visit_of(participant, "y1"), reason="Emigrated", early_reason="Moved", by=manager
    )
    client.force_login(coordinator)
    response = client.get(url("participant_detail", modic, participant.pk))
    statuses = {v.definition.code: v.status_today for v in response.context["visits"]}
    assert statuses == {"baseline": "completed", "w10": "overdue", "y1": "missed"}
    assertContains(response, '<span class="badge text-bg-danger">Overdue</span>', html=True)
    assertContains(response, "Emigrated")


# --- 4. Bad input ---------------------------------------------------------------------------


def test_an_attendance_date_in_the_future_is_refused(client, modic, coordinator, active):
    w10 = visit_of(active, "w10")
    before = state(active)
    client.force_login(coordinator)
    response = client.post(url("visit_attended", modic, w10.pk), attended_post(day(modic, 1)))
    assert field_errors(response) == {
        "attended_on": ["The attendance date cannot be in the future."]
    }
    assertContains(response, "The attendance date cannot be in the future.")
    assertContains(response, 'id="form-error-summary"')
    assert state(active) == before


def test_an_attendance_date_before_randomization_is_refused(client, modic, coordinator, active):
    w10 = visit_of(active, "w10")
    # The window reaches back before randomization, so only that rule can refuse the date.
    Visit.objects.filter(pk=w10.pk).update(window_start=day(modic, -90))
    before = state(active)
    randomized_on = active.randomized_on
    assert randomized_on == day(modic, -80)
    client.force_login(coordinator)
    response = client.post(url("visit_attended", modic, w10.pk), attended_post(day(modic, -81)))
    message = f"A follow-up visit cannot precede randomization ({randomized_on:%d %b %Y})."
    assert field_errors(response) == {"attended_on": [message]}
    assertContains(response, message)
    assert state(active) == before


@pytest.mark.parametrize("reason", ["", "   "], ids=["empty", "blank"])
def test_a_missed_visit_without_a_reason_is_refused(client, modic, coordinator, active, reason):
    w10 = visit_of(active, "w10")
    before = state(active)
    client.force_login(coordinator)
    response = client.post(url("visit_missed", modic, w10.pk), {"reason": reason, **EARLY})
    assert field_errors(response) == {"reason": ["Say why the visit was missed."]}
    assertContains(response, "Say why the visit was missed.")
    assert state(active) == before


def test_withdrawing_without_saying_whether_follow_up_may_continue_is_refused(
    client, modic, coordinator, active
):
    before = state(active)
    client.force_login(coordinator)
    response = client.post(
        url("participant_status", modic, active.pk),
        status_post("withdrawn", on=today(modic), followup_allowed=""),
    )
    message = "Say whether follow-up data may still be collected."
    assert field_errors(response) == {"followup_allowed": [message]}
    assertContains(response, message)
    assert state(active) == before


def test_withdrawing_twice_is_refused_the_second_time(client, modic, coordinator, active):
    client.force_login(coordinator)
    first = client.post(
        url("participant_status", modic, active.pk),
        status_post("withdrawn", on=today(modic), followup_allowed="yes"),
    )
    assertRedirects(first, url("participant_detail", modic, active.pk))
    active.refresh_from_db()
    before = state(active)

    # Withdrawn with follow-up allowed: the only "withdrawn" on offer is refusing it now.
    page = client.get(url("participant_status", modic, active.pk))
    choices = dict(page.context["form"].fields["to_status"].choices)
    assert list(choices) == ["", "withdrawn", "deceased"]
    assert "refusing any further follow-up" in choices["withdrawn"]
    second = client.post(
        url("participant_status", modic, active.pk),
        status_post("withdrawn", on=today(modic), followup_allowed="yes"),
    )
    errors = field_errors(second)
    assert list(errors) == ["to_status"]
    assert "already withdrawn" in errors["to_status"][0]
    assert state(active) == before
    assert StatusChange.objects.filter(participant=active).count() == 1


def test_completing_a_participant_with_open_visits_is_refused(client, modic, coordinator, active):
    before = state(active)
    client.force_login(coordinator)
    response = client.post(
        url("participant_status", modic, active.pk), status_post("completed", on=today(modic))
    )
    message = "2 visit(s) are still open: record them as attended or missed first."
    assert field_errors(response) == {"to_status": [message]}
    assertContains(response, message)
    assert state(active) == before


def test_a_status_change_dated_before_randomization_is_refused(client, modic, coordinator, active):
    before = state(active)
    client.force_login(coordinator)
    response = client.post(
        url("participant_status", modic, active.pk),
        status_post("lost", on=day(modic, -81)),
    )
    errors = field_errors(response)
    assert list(errors) == ["effective_on"]
    assert "(enrollment)" in errors["effective_on"][0]
    assert state(active) == before


def test_attendance_for_a_participant_who_refused_follow_up_is_refused(
    client, modic, coordinator, manager, active
):
    """Open visits are closed on withdrawal; a stale form cannot reopen and complete one."""
    w10 = visit_of(active, "w10")
    change_status(active, Status.WITHDRAWN, manager, followup_allowed=False)
    before = state(active)
    client.force_login(coordinator)
    response = client.post(url("visit_attended", modic, w10.pk), attended_post(today(modic)))
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert state(active) == before


@pytest.mark.parametrize("page", ["contact", "attended", "missed", "status"])
def test_a_site_02_clinician_cannot_post_follow_up_for_a_site_01_participant(
    client, modic, clinician_site2, active, page
):
    w10 = visit_of(active, "w10")
    before = state(active)
    client.force_login(clinician_site2)
    path, data = {
        "contact": (url("contact_log", modic, active.pk), {"method": "phone", "result": "reached"}),
        "attended": (url("visit_attended", modic, w10.pk), attended_post(today(modic))),
        "missed": (url("visit_missed", modic, w10.pk), {"reason": "Not reached"}),
        "status": (
            url("participant_status", modic, active.pk),
            status_post("withdrawn", on=today(modic), followup_allowed="no"),
        ),
    }[page]
    response = client.post(path, data)
    assert response.status_code == 403
    assert state(active) == before


@pytest.mark.parametrize("page", ["contact", "attended", "missed", "status"])
def test_a_statistician_cannot_post_follow_up(client, modic, statistician, active, page):
    w10 = visit_of(active, "w10")
    before = state(active)
    client.force_login(statistician)
    path, data = {
        "contact": (url("contact_log", modic, active.pk), {"method": "phone", "result": "reached"}),
        "attended": (url("visit_attended", modic, w10.pk), attended_post(today(modic))),
        "missed": (url("visit_missed", modic, w10.pk), {"reason": "Not reached"}),
        "status": (
            url("participant_status", modic, active.pk),
            status_post("deceased", on=today(modic)),
        ),
    }[page]
    response = client.post(path, data)
    assert response.status_code == 403
    assert state(active) == before


def test_a_contact_about_another_participants_visit_is_refused(
    client, modic, coordinator, site1, manager, active
):
    other = randomized_participant(modic, site1, manager)
    before = state(active)
    client.force_login(coordinator)
    response = client.post(
        url("contact_log", modic, active.pk),
        {"method": "phone", "result": "reached", "visit": visit_of(other, "w10").pk},
    )
    errors = field_errors(response)
    assert list(errors) == ["visit"]
    assert "Select a valid choice" in errors["visit"][0]
    assert state(active) == before


def test_a_contact_attempt_for_a_participant_not_yet_randomized_is_refused(
    client, modic, coordinator, enrolled
):
    before = state(enrolled)
    client.force_login(coordinator)
    response = client.post(
        url("contact_log", modic, enrolled.pk), {"method": "phone", "result": "reached"}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Contacts are logged for randomized participants."
    ]
    assertContains(response, "Contacts are logged for randomized participants.")
    assert state(enrolled) == before


def test_marking_a_visit_attended_twice_keeps_the_first_record(client, modic, coordinator, active):
    w10 = visit_of(active, "w10")
    client.force_login(coordinator)
    first = client.post(url("visit_attended", modic, w10.pk), attended_post(day(modic, -3)))
    assertRedirects(first, url("participant_detail", modic, active.pk))
    before = state(active)
    second = client.post(url("visit_attended", modic, w10.pk), attended_post(day(modic, -1)))
    assert second.status_code == 200
    assert second.context["form"].non_field_errors() == [
        "This visit is already recorded as completed."
    ]
    assert state(active) == before
    w10.refresh_from_db()
    assert w10.attended_on == day(modic, -3)


def test_recording_an_attended_visit_as_missed_is_refused(client, modic, coordinator, active):
    w10 = visit_of(active, "w10")
    services.visit_record_attendance(visit=w10, attended_on=day(modic, -1), by=coordinator)
    before = state(active)
    client.force_login(coordinator)
    response = client.post(url("visit_missed", modic, w10.pk), {"reason": "Not reached"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "This visit is already recorded as completed."
    ]
    assertContains(response, "This visit is already recorded as completed.")
    assert state(active) == before


def test_a_status_change_for_a_deceased_participant_changes_nothing(
    client, modic, coordinator, manager, active
):
    change_status(active, Status.DECEASED, manager)
    before = state(active)
    client.force_login(coordinator)
    page = client.get(url("participant_status", modic, active.pk))
    assertContains(page, "No further status change is possible.")
    response = client.post(
        url("participant_status", modic, active.pk), status_post("active", on=today(modic))
    )
    assert response.status_code == 200
    assert "to_status" in response.context["form"].errors
    assert state(active) == before


def test_a_contact_note_is_shown_escaped(client, modic, coordinator, active):
    client.force_login(coordinator)
    client.post(
        url("contact_log", modic, active.pk),
        {"method": "phone", "result": "other", "note": "<script>alert(1)</script>"},
    )
    response = client.get(url("participant_detail", modic, active.pk))
    assertContains(response, "&lt;script&gt;alert(1)&lt;/script&gt;")
    assertNotContains(response, "<script>alert(1)</script>")


# Garbage a browser, a bookmark or a curious user might send: never a 500.
GARBAGE_POSTS = [
    pytest.param("attended", {"attended_on": "not-a-date"}, "attended_on", id="attended_on=not-a-date"),
    pytest.param("attended", {"attended_on": "2024-02-30"}, "attended_on", id="attended_on=30 Feb"),
    pytest.param("attended", {"attended_on": "9999-99-99"}, "attended_on", id="attended_on=9999-99-99"),
    pytest.param("attended", {"attended_on": ""}, "attended_on", id="attended_on empty"),
    pytest.param("missed", {"reason": "x" * 301, **EARLY}, "reason", id="reason too long"),
    pytest.param("contact", {"method": "phone", "result": "reached", "visit": "999999"}, "visit", id="visit=999999"),
    pytest.param("contact", {"method": "phone", "result": "reached", "visit": "abc"}, "visit", id="visit=abc"),
    pytest.param("contact", {"method": "phone", "result": "reached", "visit": "99999999999999999999999"}, "visit", id="visit=huge"),
    pytest.param("contact", {"method": "phone", "result": "reached", "visit": "-1"}, "visit", id="visit=-1"),
    pytest.param("contact", {"method": "pigeon", "result": "reached"}, "method", id="method=pigeon"),
    pytest.param("contact", {"method": "phone", "result": "bogus"}, "result", id="result=bogus"),
    pytest.param("status", {"to_status": "bogus", "effective_on": "TODAY", "reason": "x"}, "to_status", id="to_status=bogus"),
    pytest.param("status", {"to_status": "lost", "effective_on": "yesterday", "reason": "x"}, "effective_on", id="effective_on=yesterday"),
    pytest.param("status", {"to_status": "withdrawn", "effective_on": "TODAY", "reason": "x", "followup_allowed": "maybe"}, "followup_allowed", id="followup_allowed=maybe"),
    pytest.param("status", {"to_status": "lost", "effective_on": "TODAY", "reason": ""}, "reason", id="reason missing"),
]  # fmt: skip


@pytest.mark.parametrize(("page", "data", "field"), GARBAGE_POSTS)
def test_garbage_posted_to_a_follow_up_page_is_refused_next_to_its_field(
    client, modic, coordinator, active, page, data, field
):
    w10 = visit_of(active, "w10")
    data = {k: today(modic).isoformat() if v == "TODAY" else v for k, v in data.items()}
    path = {
        "attended": url("visit_attended", modic, w10.pk),
        "missed": url("visit_missed", modic, w10.pk),
        "contact": url("contact_log", modic, active.pk),
        "status": url("participant_status", modic, active.pk),
    }[page]
    before = state(active)
    client.force_login(coordinator)
    response = client.post(path, data)
    assert list(field_errors(response)) == [field]
    assert state(active) == before


GARBAGE_GETS = [
    pytest.param("worklist", {"page": "abc"}, 200, id="worklist page=abc"),
    pytest.param("worklist", {"page": "-1"}, 200, id="worklist page=-1"),
    pytest.param("worklist", {"page": "99999"}, 200, id="worklist page=99999"),
    pytest.param("worklist", {"days": "-5", "bucket": "upcoming"}, 200, id="worklist days=-5"),
    pytest.param("worklist", {"days": "abc", "bucket": "upcoming"}, 200, id="worklist days=abc"),
    pytest.param("worklist", {"days": "99999999999999999999"}, 200, id="worklist days=huge"),
    pytest.param("worklist", {"site": "xyz"}, 200, id="worklist site=xyz"),
    pytest.param("worklist", {"site": "999999"}, 200, id="worklist site=999999"),
    pytest.param("worklist", {"site": "99999999999999999999999"}, 200, id="worklist site=huge"),
    pytest.param("worklist", {"visit": "abc"}, 200, id="worklist visit=abc"),
    pytest.param("worklist", {"visit": "99999999999999999999999"}, 200, id="worklist visit=huge"),
    pytest.param("worklist", {"bucket": "<script>"}, 200, id="worklist bucket=script"),
    pytest.param("contact", {"visit": "abc"}, 200, id="contact visit=abc"),
    pytest.param("contact", {"visit": "999999"}, 200, id="contact visit=999999"),
    pytest.param("attended", {"next": "//evil.example"}, 200, id="attended next=evil"),
    pytest.param("summary", {"page": "abc"}, 200, id="summary page=abc"),
]


@pytest.mark.parametrize(("page", "params", "status"), GARBAGE_GETS)
def test_garbage_in_a_follow_up_page_address_never_gives_a_500(
    client, modic, coordinator, followup_set, page, params, status
):
    a = followup_set["a"]
    path = {
        "worklist": url("worklist", modic),
        "contact": url("contact_log", modic, a.pk),
        "attended": url("visit_attended", modic, visit_of(a, "w10").pk),
        "summary": url("followup_summary", modic),
    }[page]
    client.force_login(coordinator)
    response = client.get(path, params)
    assert response.status_code == status
    assertNotContains(response, "<script>", status_code=status)


@pytest.mark.parametrize("days", ["-5", "0", "abc", "99999"])
def test_an_impossible_number_of_days_still_shows_a_consistent_upcoming_tab(
    client, modic, coordinator, followup_set, days
):
    client.force_login(coordinator)
    response = client.get(url("worklist", modic), {"bucket": "upcoming", "days": days})
    used = response.context["days"]
    assert 1 <= used <= 365
    horizon = day(modic, used)
    wanted = [n for n, start in (("e", 5), ("f", 20)) if day(modic, start) <= horizon]
    assert rows(response) == expected(followup_set, *wanted)
    assert response.context["counts"]["upcoming"] == len(wanted)
    assertContains(response, f'value="{used}"')  # the days box shows the number used


@pytest.mark.parametrize(
    "name", ["visit_attended", "visit_missed", "contact_log", "participant_status"]
)
@pytest.mark.parametrize("pk", ["999999", "9" * 23], ids=["unknown id", "id beyond 64 bits"])
def test_follow_up_pages_of_unknown_objects_answer_404(client, modic, coordinator, name, pk):
    # Built by hand: the URL patterns may (rightly) refuse to reverse an id that long.
    path = url(name, modic, 1).replace("/1/", f"/{pk}/")
    client.force_login(coordinator)
    assert client.get(path).status_code == 404
    assert client.post(path, {"reason": "x"}).status_code == 404


def test_a_visit_asked_for_under_another_trial_answers_404(client, modic, site1, manager):
    from trial.devtools.demo import build_modic_trial

    other_trial = build_modic_trial(code="OTH")
    participant = randomized_participant(modic, site1, manager)
    w10 = visit_of(participant, "w10")
    factories.add_roles(manager, other_trial, ["Trial manager"])  # manages both trials
    client.force_login(manager)
    assert client.get(url("visit_attended", other_trial, w10.pk)).status_code == 404
    assert client.post(url("visit_missed", other_trial, w10.pk), {"reason": "x"}).status_code == 404
    assert client.get(url("contact_log", other_trial, participant.pk)).status_code == 404
    w10.refresh_from_db()
    assert w10.outcome == Outcome.OPEN


# --- 5. The follow-up summary ---------------------------------------------------------------


@pytest.fixture
def summary_set(modic, site1, site2, manager):
    """Seven participants, their 10-week visit in each state:
    upcoming, due (site 02), overdue, attended in window, attended late, missed, not required
    (died)."""
    upcoming = randomized_participant(modic, site1, manager)
    due = backdate(randomized_participant(modic, site2, manager), 70)
    overdue = backdate(randomized_participant(modic, site1, manager), 100)
    in_window = backdate(randomized_participant(modic, site1, manager), 80)
    services.visit_record_attendance(
        visit=visit_of(in_window, "w10"), attended_on=today(modic), by=manager
    )
    late = backdate(randomized_participant(modic, site1, manager), 100)
    services.visit_record_attendance(
        visit=visit_of(late, "w10"), attended_on=today(modic), by=manager
    )
    missed = randomized_participant(modic, site1, manager)
    services.visit_record_missed(
        visit=visit_of(missed, "w10"), reason="Away", early_reason="Abroad", by=manager
    )
    died = randomized_participant(modic, site2, manager)
    change_status(died, Status.DECEASED, manager)
    return [upcoming, due, overdue, in_window, late, missed, died]


SUMMARY_COLUMNS = (
    "n_upcoming", "n_due", "n_overdue", "n_in_window", "n_late", "n_missed", "n_not_required",
    "n_total",
)  # fmt: skip


def test_the_follow_up_summary_counts_visits_per_definition_and_status(
    client, modic, statistician, summary_set
):
    client.force_login(statistician)
    response = client.get(url("followup_summary", modic))
    assert response.status_code == 200
    table = {
        r["definition__label"]: tuple(r[c] for c in SUMMARY_COLUMNS)
        for r in response.context["rows"]
    }
    assert table == {
        "Baseline": (0, 0, 0, 7, 0, 0, 0, 7),
        "10 weeks": (1, 1, 1, 1, 1, 1, 1, 7),
        "1 year": (6, 0, 0, 0, 0, 0, 1, 7),
    }
    assert [r["definition__label"] for r in response.context["rows"]] == [
        "Baseline",
        "10 weeks",
        "1 year",
    ]
    assertContains(
        response,
        '<tr><td>10 weeks</td><td class="num">1</td><td class="num">1</td><td class="num">1</td>'
        '<td class="num">1</td><td class="num">1</td><td class="num">1</td><td class="num">1</td>'
        '<td class="num">7</td></tr>',
        html=True,
    )


def test_the_follow_up_summary_shows_no_names_phones_or_numbers(
    client, modic, statistician, summary_set
):
    Participant.objects.filter(pk=summary_set[0].pk).update(full_name="Karen Blixen")
    client.force_login(statistician)
    response = client.get(url("followup_summary", modic))
    assert response.status_code == 200
    for participant in Participant.objects.filter(trial=modic):
        assertNotContains(response, participant.phone)
        assertNotContains(response, participant.phone[3:])  # without +45
        assertNotContains(response, participant.number)
        assertNotContains(response, participant.full_name)
    assertNotContains(response, "tel:")


def test_the_follow_up_summary_of_a_site_01_coordinator_counts_site_01_only(
    client, modic, site1, summary_set
):
    coordinator = factories.persona("Coordinator", trial=modic, sites=[site1], username="coord1")
    client.force_login(coordinator)
    response = client.get(url("followup_summary", modic))
    w10 = next(r for r in response.context["rows"] if r["definition__label"] == "10 weeks")
    assert (w10["n_due"], w10["n_not_required"], w10["n_total"]) == (0, 0, 5)


def test_a_participant_withdrawn_before_randomization_can_change_no_further(
    client, modic, clinician, enrolled
):
    client.force_login(clinician)
    detail = client.get(url("participant_detail", modic, enrolled.pk))
    assertContains(detail, "Record withdrawal")
    first = client.post(
        url("participant_status", modic, enrolled.pk),
        status_post("withdrawn", on=today(modic), followup_allowed="no"),
    )
    assertRedirects(first, url("participant_detail", modic, enrolled.pk))
    page = client.get(url("participant_status", modic, enrolled.pk))
    assertContains(page, "No further status change is possible.")
    second = client.post(
        url("participant_status", modic, enrolled.pk),
        status_post("deceased", on=today(modic)),
    )
    assert second.status_code == 200
    enrolled.refresh_from_db()
    assert enrolled.status == "withdrawn" and enrolled.number is None


# --- Ahead of the window (issue 15, item 5) -------------------------------------------------


def test_the_attended_page_before_the_window_opens_suggests_no_date_and_asks_for_a_reason(
    client, modic, coordinator, site1, manager
):
    participant = randomized_participant(modic, site1, manager)  # randomized today
    y1 = visit_of(participant, "y1")
    client.force_login(coordinator)
    page = client.get(url("visit_attended", modic, y1.pk))
    assert page.context["form"]["attended_on"].value() is None
    assertContains(page, 'id="early-notice"')
    assertContains(page, 'name="early_reason"')

    response = client.post(url("visit_attended", modic, y1.pk), attended_post(today(modic)))
    assert list(field_errors(response)) == ["early_reason"]
    assertContains(response, 'name="confirm_early"')
    y1.refresh_from_db()
    assert y1.outcome == Visit.Outcome.OPEN

    response = client.post(
        url("visit_attended", modic, y1.pk), attended_post(today(modic), **EARLY)
    )
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    y1.refresh_from_db()
    assert (y1.outcome, y1.in_window, y1.early_reason) == (
        Visit.Outcome.COMPLETED, False, EARLY["early_reason"],
    )  # fmt: skip
    detail = client.get(url("participant_detail", modic, participant.pk))
    assertContains(detail, EARLY["early_reason"])


@pytest.mark.parametrize(("days_ago", "suggested"), [(80, True), (100, False)])
def test_the_attended_page_suggests_today_only_inside_the_window(
    client, modic, coordinator, site1, manager, days_ago, suggested
):
    participant = backdate(randomized_participant(modic, site1, manager), days_ago)
    client.force_login(coordinator)
    page = client.get(url("visit_attended", modic, visit_of(participant, "w10").pk))
    assert page.context["form"]["attended_on"].value() == (today(modic) if suggested else None)
    assertNotContains(page, 'name="early_reason"')


def test_the_missed_page_while_the_window_is_open_asks_for_a_confirmed_reason(
    client, modic, coordinator, active
):
    w10 = visit_of(active, "w10")
    client.force_login(coordinator)
    page = client.get(url("visit_missed", modic, w10.pk))
    assertContains(page, 'id="early-notice"')
    before = state(active)
    response = client.post(url("visit_missed", modic, w10.pk), {"reason": "Ill"})
    assert "open until" in field_errors(response)["early_reason"][0]
    response = client.post(
        url("visit_missed", modic, w10.pk), {"reason": "Ill", "early_reason": "Refuses"}
    )
    assert list(field_errors(response)) == ["confirm_early"]
    assert state(active) == before
    response = client.post(url("visit_missed", modic, w10.pk), {"reason": "Ill", **EARLY})
    assertRedirects(response, url("participant_detail", modic, active.pk))
    w10.refresh_from_db()
    assert (w10.outcome, w10.early_reason) == (Visit.Outcome.MISSED, EARLY["early_reason"])


def test_the_missed_page_after_the_window_closed_asks_for_no_confirmation(
    client, modic, coordinator, site1, manager
):
    participant = backdate(randomized_participant(modic, site1, manager), 100)
    w10 = visit_of(participant, "w10")
    client.force_login(coordinator)
    page = client.get(url("visit_missed", modic, w10.pk))
    assertNotContains(page, 'name="early_reason"')
    response = client.post(url("visit_missed", modic, w10.pk), {"reason": "Not reached"})
    assertRedirects(response, url("participant_detail", modic, participant.pk))
    w10.refresh_from_db()
    assert (w10.outcome, w10.early_reason) == (Visit.Outcome.MISSED, "")


def test_the_contact_form_presets_no_result_and_requires_one(client, modic, coordinator, active):
    """It defaulted to "Reached": an attempt saved unread said the participant was reached."""
    client.force_login(coordinator)
    page = client.get(url("contact_log", modic, active.pk))
    assert page.context["form"]["result"].value() in (None, "")
    assertContains(page, '<option value="" selected>— Choose the result —</option>', html=True)
    response = client.post(url("contact_log", modic, active.pk), {"method": "phone", "note": ""})
    assert field_errors(response) == {"result": ["Choose the result of the attempt."]}
    assert not ContactAttempt.objects.filter(participant=active).exists()
