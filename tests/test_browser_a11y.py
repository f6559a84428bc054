"""Accessibility in a real browser (WCAG 2.2 AA).

- Every page a trial manager can open, and the admin pages we customise, pass the check
  the `page` fixture runs on every page loaded (axe-core and control boundaries,
  tests/a11y.py), with realistic demo data and with form errors shown.
- The elements the audit named meet their ratios: navigation links and the "Change status"
  button 4.5:1 (text), radio buttons and fields 3:1 (boundary), focus indicators 3:1.
- The first Tab stop is a visible "Skip to main content" link that moves focus to <main>.

Reuses the Playwright set-up of tests/test_browser.py.
"""

from __future__ import annotations

import os
import random
import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

from outcomes.sms.models import SmsWeek
from participants import services
from participants.models import Participant, ScreeningRecord, Visit
from tests import factories, test_browser
from tests.test_browser import demo_credentials, log_in, screenshot_on_failure
from trial.devtools.demo_participants import (
    enroll_and_randomize_demo_participants,
    screen_demo_non_participants,
)
from trial.devtools.demo_sms import simulate_sms_history
from trial.models import Trial

# Playwright's sync API runs an event loop in this thread (see tests/test_browser.py).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

browser = test_browser.browser
live_server = test_browser.live_server
page = test_browser.page
demo_trial = test_browser.demo_trial

TEXT = 4.5  # SC 1.4.3, normal-size text
NON_TEXT = 3.0  # SC 1.4.11, control boundaries and focus indicators


def measure(locator: Locator, what: str) -> dict:
    """A contrast measurement made in the page (tests/a11y.py): `text`, `boundary` or
    `outline`; {"ratio", "colour", "background"} (and "width" for outlines)."""
    return locator.evaluate(f"e => window.__trialdeskA11yMeasure.{what}(e)")


def randomized_participant(trial: Trial) -> Participant:
    clinician = User.objects.get(username="clinician")
    participant = factories.enrolled_participant(trial, trial.sites.get(code="01"), clinician)
    services.participant_randomize(participant=participant, by=clinician)
    return Participant.objects.get(pk=participant.pk)


# --- Every page -----------------------------------------------------------------------------


def every_page(trial: Trial) -> list[str]:
    """One address of every page of the app and of the admin pages we customise, for a
    trial with demo data: participants in every state, screenings, SMS history."""
    code = trial.code
    manager = User.objects.get(username="manager")
    site = trial.sites.get(code="01")
    consented = factories.enrolled_participant(trial, site, manager, baseline=False)
    enrolled = factories.enrolled_participant(trial, site, manager)
    active = randomized_participant(trial)
    w10 = Visit.objects.get(participant=active, definition__code="w10")
    screenings = ScreeningRecord.objects.filter(trial=trial)
    waiting = screenings.filter(outcome=ScreeningRecord.Outcome.ELIGIBLE).first()
    ineligible = screenings.filter(outcome=ScreeningRecord.Outcome.INELIGIBLE).first()
    withdrawn = Participant.objects.filter(trial=trial).exclude(status="active")
    withdrawn = withdrawn.exclude(randomized_on=None).first()
    with_sms = SmsWeek.objects.filter(trial=trial).first().participant_id

    def p(name, *args):
        return reverse(name, args=[code, *args])

    pages = [
        reverse("home"),
        p("trial_home"),
        p("trial_home") + "?q=no-such-name",
        p("screening_log"),
        p("screening_new"),
        p("screening_detail", waiting.pk),
        p("screening_detail", ineligible.pk),
        p("screening_consent", waiting.pk),
        p("participant_baseline", consented.pk),
        p("participant_review", enrolled.pk),
        p("participant_detail", active.pk),
        p("participant_allocation", active.pk),
        p("participant_edit", active.pk),
        p("participant_status", active.pk),
        p("contact_log", active.pk),
        p("visit_outcomes", w10.pk),
        p("visit_attended", w10.pk),
        p("visit_missed", w10.pk),
        p("participant_sms", with_sms),
        p("participant_sms_consent", with_sms),
        p("participant_detail", with_sms),
        p("sms_grid"),
        p("worklist"),
        p("followup_summary"),
        p("balance"),
        reverse("admin:index"),
        reverse("results_index"),
        p("trial_results"),
        p("trial_unblind"),
        "/no-such-page/",
    ]
    if withdrawn is not None:
        pages.append(p("participant_detail", withdrawn.pk))
    return pages


@pytest.fixture
def demo_data(demo_trial: Trial) -> Trial:
    """Demo participants as `make run` has them (fewer), with screenings and SMS history."""
    enroll_and_randomize_demo_participants(demo_trial, 12)
    screen_demo_non_participants(demo_trial)
    simulate_sms_history(demo_trial, random.Random(2012))
    return demo_trial


@pytest.mark.timeout(900)
def test_every_page_a_trial_manager_opens_passes_the_accessibility_check(
    page: Page, demo_data: Trial, request: pytest.FixtureRequest
):
    pages = every_page(demo_data)
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("manager"))
        for address in pages:
            response = page.goto(address)
            expected = 404 if address == "/no-such-page/" else 200
            assert response.status == expected, (address, response.status)
        # Forms with their errors shown: nothing filled in, then submitted (past the
        # browser's own checks of required fields, to show the server's messages).
        page.goto(reverse("screening_new", args=[demo_data.code]))
        page.locator("main form").evaluate("form => { form.noValidate = true; }")
        page.get_by_role("button", name="Record screening").click()
        expect(page.locator(".invalid-feedback, .alert-danger").first).to_be_visible()
        page.goto(next(address for address in pages if address.endswith("/outcomes/")))
        page.get_by_role("button", name="Save outcomes").click()
        expect(page.locator("#form-error-summary")).to_be_visible()


# --- The elements the audit named -----------------------------------------------------------


@pytest.mark.timeout(300)
def test_navigation_links_the_change_status_button_and_radio_buttons_meet_wcag_aa_contrast(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    participant = randomized_participant(demo_trial)
    w10 = Visit.objects.get(participant=participant, definition__code="w10")
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("coordinator"))
        page.goto(reverse("participant_detail", args=[demo_trial.code, participant.pk]))
        measured = {}
        for link in page.locator("nav .nav-link").all():
            measured[f"navigation link {link.inner_text()!r}"] = (measure(link, "text"), TEXT)
        status = page.get_by_role("link", name="Change status")
        measured["Change status (text)"] = (measure(status, "text"), TEXT)
        measured["Change status (border)"] = (measure(status, "boundary"), NON_TEXT)

        page.goto(reverse("visit_outcomes", args=[demo_trial.code, w10.pk]))
        measured["radio button"] = (
            measure(page.locator("#id_rmdq-item_1_0"), "boundary"),
            NON_TEXT,
        )
        measured["text field"] = (measure(page.locator("#id_pain-value"), "boundary"), NON_TEXT)
        measured["list box"] = (measure(page.locator("#id_pain-not_done"), "boundary"), NON_TEXT)

        low = {name: m for name, (m, needed) in measured.items() if m["ratio"] < needed}
        summary = {name: round(m["ratio"], 2) for name, (m, _needed) in measured.items()}
        print("Contrast ratios measured:", summary)
        assert not low, f"below WCAG 2.2 AA: {low}"


@pytest.mark.timeout(300)
def test_keyboard_focus_is_shown_with_a_3_to_1_indicator(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    participant = randomized_participant(demo_trial)
    w10 = Visit.objects.get(participant=participant, definition__code="w10")
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("coordinator"))
        page.goto(reverse("visit_outcomes", args=[demo_trial.code, w10.pk]))
        targets = {
            "navigation link": page.locator("nav .nav-link").first,
            "date field": page.locator("#id_visit-attended_on"),
            "list box": page.locator("#id_pain-not_done"),
            "radio button": page.locator("#id_rmdq-item_1_0"),
            "button": page.get_by_role("button", name="Save outcomes"),
            "link": page.get_by_role("link", name="Cancel"),
        }
        measured = {}
        for name, target in targets.items():
            # A key press first, so the browser treats the focus as keyboard focus
            # (:focus-visible), as when tabbing.
            page.keyboard.press("Shift")
            target.focus()
            expect(target).to_be_focused()
            measured[name] = measure(target, "outline")
        weak = {n: m for n, m in measured.items() if m["ratio"] < NON_TEXT or m["width"] < 2}
        shown = {n: (round(m["ratio"], 2), m["width"]) for n, m in measured.items()}
        print("Focus indicators (ratio, width):", shown)
        assert not weak, f"focus indicators below 3:1 or thinner than 2 px: {weak}"


@pytest.mark.timeout(300)
def test_the_first_tab_stop_is_a_skip_link_to_the_main_content(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("clinician"))
        expect(page.get_by_role("heading", name=re.compile("Participants"))).to_be_visible()
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None and box["y"] >= 0 and box["height"] > 0, box
        assert measure(skip, "text")["ratio"] >= TEXT
        assert measure(skip, "outline")["ratio"] >= NON_TEXT
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        # The next Tab stop is the first control of the main content, not the navigation.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('main') !== null")
