"""Long unbroken text in a real browser: a 5,000-character note without a space, reasons at
their maximum, and a long SMS reply must not make a page wider than the window (the audit
found the participant page stretched to 41,508 px).

Reuses the Playwright set-up of tests/test_browser.py (Debian's Chromium, the plain-HTTP
live server, the demo trial and users, a screenshot in test-artifacts/ on failure).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from outcomes.sms.tracking import sms_receive
from participants import services
from participants.models import ContactAttempt, Participant, StatusChange
from tests import factories, test_browser
from tests.participants.test_followup_views import backdate
from tests.test_browser import demo_credentials, log_in, screenshot_on_failure
from trial.models import Trial

# Playwright's sync API runs an event loop in this thread (see tests/test_browser.py).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

browser = test_browser.browser
live_server = test_browser.live_server
page = test_browser.page
demo_trial = test_browser.demo_trial

NOTE = "N" * 5000  # one 5,000-character word
REASON = "R" * 1000  # a status change's reason at its maximum
MISSED = "M" * 300  # a missed visit's reason at its maximum


def page_overflow(on: Page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return on.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def assert_fits(on: Page) -> None:
    for width in (1280, 390):  # a desktop and a phone
        on.set_viewport_size({"width": width, "height": 900})
        assert page_overflow(on) <= 0, (
            f"{page_overflow(on)} px wider than a {width} px window: {widest(on)}"
        )


def widest(on: Page) -> list[str]:
    """The elements that end past the window's right edge, to say what overflows."""
    return on.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5)
            .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + e.className + ': '
                 + (e.textContent || '').trim().slice(0, 40))"""
    )


@pytest.mark.timeout(180)
def test_a_5000_character_note_and_long_reasons_keep_the_participant_page_within_the_window(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    clinician = User.objects.get(username="clinician")
    participant = factories.enrolled_participant(
        demo_trial, demo_trial.sites.get(code="01"), clinician
    )
    services.participant_randomize(participant=participant, by=clinician)
    participant = backdate(participant, 100)  # the 10-week window closed 9 days ago
    number = participant.number

    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("coordinator"))
        page.goto(f"/trials/{demo_trial.code}/participants/{participant.pk}/")
        expect(page.get_by_role("heading", name=number)).to_be_visible()

        # A contact attempt with the 5,000-character note, through the form.
        page.get_by_role("link", name="Log contact attempt").click()
        page.get_by_label("Result").select_option(label="No answer")
        page.get_by_label("Note").fill(NOTE)
        page.get_by_role("button", name="Log contact attempt").click()
        expect(page.get_by_role("heading", name=number)).to_be_visible()

        # The 10-week visit missed, with a reason at its maximum.
        page.locator("#visit-timeline tbody tr").filter(has_text="10 weeks").get_by_role(
            "link", name="Missed"
        ).click()
        page.get_by_label("Why was the visit missed?").fill(MISSED)
        page.get_by_role("button", name="Record as missed").click()
        expect(page.get_by_role("heading", name=number)).to_be_visible()

        # Lost to follow-up, with a 1,000-character reason.
        page.get_by_role("link", name="Change status").click()
        page.get_by_label("New status").select_option(label="Lost to follow-up")
        page.get_by_label("Reason").fill(REASON)
        page.get_by_role("button", name="Change status").click()
        expect(page.get_by_role("heading", name=number)).to_be_visible()

        assert ContactAttempt.objects.get(participant=participant).note == NOTE
        assert StatusChange.objects.get(participant=participant).reason == REASON
        expect(page.locator("#contact-attempts")).to_contain_text(NOTE)
        expect(page.locator("#status-history")).to_contain_text(REASON)
        expect(page.locator("#visit-timeline")).to_contain_text(MISSED)
        assert_fits(page)


@pytest.mark.timeout(180)
def test_long_reasons_and_replies_keep_the_screening_log_and_sms_pages_within_the_window(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    manager = User.objects.get(username="manager")
    site = demo_trial.sites.get(code="01")
    declined = factories.screened(demo_trial, site, manager)
    services.screening_decline(screening=declined, reason="D" * 300, by=manager)
    duplicate = factories.screened(demo_trial, site, manager)
    services.screening_void(screening=duplicate, reason="V" * 1000, by=manager)
    participant = factories.enrolled_participant(demo_trial, site, manager)
    services.participant_randomize(participant=participant, by=manager)
    participant = Participant.objects.get(pk=participant.pk)
    sms_receive(
        gateway_message_id="SM-long-reply",
        from_number=participant.phone,
        body="S" * 5000,
        received_at=dt.datetime.now(dt.UTC),
    )

    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("manager"))
        page.goto(f"/trials/{demo_trial.code}/screening/")
        expect(page.get_by_role("heading", name="Screening log")).to_be_visible()
        expect(page.locator(f"#screening-{duplicate.pk}")).to_contain_text("V" * 1000)
        assert_fits(page)

        page.goto(f"/trials/{demo_trial.code}/screening/{duplicate.pk}/")
        expect(page.locator("#screening-voided")).to_contain_text("V" * 1000)
        assert_fits(page)

        page.goto(f"/trials/{demo_trial.code}/participants/{participant.pk}/sms/")
        expect(page.locator("#sms-conversation")).to_contain_text("S" * 1000)
        assert_fits(page)
