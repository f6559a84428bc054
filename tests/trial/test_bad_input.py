"""Bad input answers 400 with a message saying what was wrong, never a server error:
NUL characters anywhere in a request (trial.bad_input), which PostgreSQL cannot store or
compare, and impossible dates in the admin's date filters (trial.admin_base)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories

NUL_MESSAGE = "NUL character"


@pytest.fixture
def lenient_client():
    """A client that returns a server error as a 500 instead of raising it."""
    return Client(raise_request_exception=False)


def test_a_nul_character_in_the_participant_search_answers_400(lenient_client, modic, coordinator):
    lenient_client.force_login(coordinator)
    response = lenient_client.get(reverse("trial_home", args=[modic.code]), {"q": "\x00"})
    assert response.status_code == 400
    assert NUL_MESSAGE in response.content.decode()


def test_a_nul_character_in_an_admin_list_filter_answers_400(lenient_client, modic, manager):
    lenient_client.force_login(manager)
    url = reverse("admin:participants_participant_changelist")
    response = lenient_client.get(url, {"status__exact": "\x00"})
    assert response.status_code == 400
    assert NUL_MESSAGE in response.content.decode()


@pytest.mark.parametrize(
    "where",
    ["query key", "query value", "path", "form key", "form value", "cookie", "anonymous"],
)
def test_a_nul_character_anywhere_in_a_request_answers_400(lenient_client, modic, clinician, where):
    if where != "anonymous":
        lenient_client.force_login(clinician)
    url = reverse("screening_new", args=[modic.code])
    if where == "query key":
        response = lenient_client.get(url, {"a\x00b": "1"})
    elif where == "query value" or where == "anonymous":
        response = lenient_client.get(url, {"page": "1\x002"})
    elif where == "path":
        response = lenient_client.get(reverse("trial_home", args=["MOD\x00"]))
    elif where == "form key":
        response = lenient_client.post(url, {"initials\x00": "AB"})
    elif where == "form value":
        response = lenient_client.post(url, {"initials": "A\x00"})
    else:
        lenient_client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"
        response = lenient_client.get(url)
    assert response.status_code == 400, response.content[:300]
    assert NUL_MESSAGE in response.content.decode()


def test_an_ordinary_request_passes_the_nul_check(client, modic, coordinator):
    client.force_login(coordinator)
    response = client.get(reverse("trial_home", args=[modic.code]), {"q": "Ødegård"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"at__year": "99999999999"},
        {"at__year": "9999"},
        {"at__year": "9999", "at__month": "12"},
        {"at__year": "9999", "at__month": "12", "at__day": "31"},
        {"at__year": "1"},
        {"at__year": "0"},
        {"at__year": "2024", "at__month": "99999999999"},
        {"at__year": "2024", "at__month": "2", "at__day": "30"},
        {"at__year": "2024", "at__month": "1", "at__day": "-1"},
        {"at__year": "twenty"},
        {"at__month": "99999999999"},
        {"at__day": "99999999999"},
    ],
    ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()),
)
def test_an_impossible_date_in_an_admin_date_filter_answers_400_and_says_so(
    lenient_client, modic, manager, query
):
    lenient_client.force_login(manager)
    response = lenient_client.get(reverse("admin:trial_blindinglog_changelist"), query)
    assert response.status_code == 400
    assert "date filter" in response.content.decode()


def test_a_possible_date_in_an_admin_date_filter_still_filters(lenient_client, modic, manager):
    lenient_client.force_login(manager)
    url = reverse("admin:trial_blindinglog_changelist")
    response = lenient_client.get(url, {"at__year": "2024", "at__month": "2", "at__day": "29"})
    assert response.status_code == 200


def test_any_other_invalid_admin_filter_answers_400_with_a_way_back(lenient_client, modic):
    # A superuser: a trial manager's related filters list only their trials' values
    # (trial.admin_scope), and Django drops such a filter when it has one value or none.
    lenient_client.force_login(
        factories.UserFactory(username="root", is_superuser=True, is_staff=True)
    )
    url = reverse("admin:participants_participant_changelist")
    response = lenient_client.get(url, {"site__id__exact": "not-a-number"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "filter" in body
    assert f'href="{url}"' in body
