"""The coordinator's follow-up in a real browser: worklist → log a contact → mark attended.

Reuses the Playwright set-up of tests/test_browser.py (Debian's Chromium, the plain-HTTP
live server, the demo trial and users, a screenshot in test-artifacts/ on failure).
"""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from participants import services
from participants.models import ContactAttempt, Participant, Visit
from tests import factories, test_browser
from tests.participants.test_followup_views import backdate, visit_of
from tests.test_browser import demo_credentials, log_in, screenshot_on_failure
from trial.models import Trial

# Playwright's sync API runs an event loop in this thread (see tests/test_browser.py).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

# The Chromium, live-server, page and demo-data fixtures of tests/test_browser.py.
browser = test_browser.browser
live_server = test_browser.live_server
page = test_browser.page
demo_trial = test_browser.demo_trial


def overdue_participant(trial: Trial) -> Participant:
    """A site-01 participant randomized 100 days ago: the 10-week window closed 9 days ago."""
    clinician = User.objects.get(username="clinician")
    participant = factories.enrolled_participant(trial, trial.sites.get(code="01"), clinician)
    services.participant_randomize(participant=participant, by=clinician)
    return backdate(participant, 100)


def worklist_row(on: Page, number: str):
    return on.locator("#worklist tbody tr").filter(has_text=number)


@pytest.mark.timeout(120)
def test_the_coordinator_logs_a_contact_and_marks_an_overdue_visit_attended_from_the_worklist(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    participant = overdue_participant(demo_trial)
    number = participant.number
    w10 = visit_of(participant, "w10")
    today = services.trial_today(demo_trial)
    assert (today - w10.window_end).days == 9

    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("coordinator"))
        page.get_by_role("link", name="Worklist").click()
        expect(page.get_by_role("heading", name="Follow-up worklist")).to_be_visible()

        row = worklist_row(page, number)
        expect(row).to_have_count(1)
        expect(row).to_have_class(re.compile(r"\btable-danger\b"))
        expect(row.locator(".badge")).to_have_text("Overdue 9 d")
        expect(row).to_contain_text("10 weeks")
        expect(row.get_by_role("link", name=participant.phone)).to_be_visible()

        # Log a phone call that reached the participant.
        row.get_by_role("link", name="Log contact").click()
        expect(
            page.get_by_role("heading", name=f"Log a contact attempt — {number}")
        ).to_be_visible()
        expect(page.get_by_label("Visit").locator("option:checked")).to_have_text(
            re.compile(r"^10 weeks ")
        )
        page.get_by_label("Method").select_option(label="Phone call")
        page.get_by_label("Result").select_option(label="Reached")
        page.get_by_label("Note").fill("Comes in this afternoon")
        page.get_by_role("button", name="Log contact attempt").click()

        expect(page).to_have_url(re.compile(rf"/trials/{demo_trial.code}/worklist/$"))
        expect(page.get_by_role("alert")).to_have_text(f"Contact attempt logged for {number}.")
        row = worklist_row(page, number)
        expect(row).to_contain_text("reached")  # the last contact column

        # Mark the visit attended today (outside its window, which closed 9 days ago).
        row.get_by_role("link", name="Attended", exact=True).click()
        expect(page.get_by_role("heading", name=f"{number} — 10 weeks: attended")).to_be_visible()
        date = page.get_by_label("Date attended")
        expect(date).to_have_attribute("type", "date")
        date.fill(today.isoformat())
        page.get_by_role("button", name="Mark attended").click()

        expect(page).to_have_url(re.compile(rf"/trials/{demo_trial.code}/worklist/$"))
        expect(page.get_by_role("alert")).to_contain_text("OUTSIDE the window")
        expect(worklist_row(page, number)).to_have_count(0)

        w10.refresh_from_db()
        coordinator = User.objects.get(username="coordinator")
        assert w10.outcome == Visit.Outcome.COMPLETED
        assert w10.attended_on == today
        assert w10.in_window is False
        assert w10.recorded_by == coordinator
        attempt = ContactAttempt.objects.get(participant=participant)
        assert (attempt.method, attempt.result, attempt.visit_id, attempt.by) == (
            "phone",
            "reached",
            w10.pk,
            coordinator,
        )
        assert attempt.note == "Comes in this afternoon"

        # The participant's page shows the contact attempt and the attended visit.
        page.get_by_role("link", name="Participants").click()
        page.get_by_role("link", name=number).click()
        expect(page.get_by_role("heading", name=number)).to_be_visible()
        expect(page.locator("#contact-attempts")).to_contain_text(
            "Phone call · Reached · 10 weeks · coordinator"
        )
        expect(page.locator("#contact-attempts")).to_contain_text("Comes in this afternoon")
        visit_row = page.locator("#visit-timeline tbody tr").filter(has_text="10 weeks")
        expect(visit_row).to_contain_text(f"Attended {today.day} {today:%b %Y}")
        expect(visit_row).to_contain_text("outside window")
