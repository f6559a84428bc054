"""The coordinator enters a visit's outcomes in a real browser: worklist → Enter outcomes →
pain, Roland–Morris, EQ-5D-3L and global assessment → the visit is attended.

Reuses the Playwright set-up of tests/test_browser.py (Debian's Chromium, the plain-HTTP
live server, the demo trial and users, a screenshot in test-artifacts/ on failure).
"""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from outcomes.instruments.models import OutcomeEntry
from outcomes.instruments.scoring import RMDQ_ITEM_WORDING
from participants import services
from participants.models import Participant, Visit
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

RMDQ_YES = 7  # items 1–7 answered yes, 8–23 no: score 7
EQ5D = {  # health state 11221
    "Mobility": "1 – No problems",
    "Self-care": "1 – No problems",
    "Usual activities": "2 – Some problems",
    "Pain/discomfort": "2 – Some problems",
    "Anxiety/depression": "1 – No problems",
}


def participant_due_at_10_weeks(trial: Trial) -> Participant:
    """A site-01 participant randomized 80 days ago: the 10-week window opened 17 days ago
    and closes in 11 days."""
    clinician = User.objects.get(username="clinician")
    participant = factories.enrolled_participant(trial, trial.sites.get(code="01"), clinician)
    services.participant_randomize(participant=participant, by=clinician)
    return backdate(participant, 80)


@pytest.mark.timeout(120)
def test_the_coordinator_enters_all_outcomes_of_a_due_10_week_visit_from_the_worklist(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    participant = participant_due_at_10_weeks(demo_trial)
    number = participant.number
    w10 = visit_of(participant, "w10")
    today = services.trial_today(demo_trial)
    assert w10.window_start < today < w10.window_end

    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("coordinator"))
        page.get_by_role("link", name="Worklist").click()
        expect(page.get_by_role("heading", name="Follow-up worklist")).to_be_visible()
        row = page.locator("#worklist tbody tr").filter(has_text=number)
        expect(row).to_have_count(1)
        expect(row).to_contain_text("10 weeks")
        expect(row.locator(".badge")).to_have_text("Due")

        row.get_by_role("link", name="Enter outcomes").click()
        expect(page).to_have_url(re.compile(rf"/visits/{w10.pk}/outcomes/$"))
        expect(page.get_by_role("heading", name=f"{number} — 10 weeks")).to_be_visible()
        for code in ("pain", "rmdq", "eq5d", "global"):
            expect(page.locator(f"#instrument-{code}")).to_be_visible()
        # The visit date defaults to today; leave it.
        expect(page.get_by_label("Date of the visit")).to_have_value(today.isoformat())

        pain = page.locator("#instrument-pain")
        pain.get_by_label("Current low back pain (0 = no pain, 10 = worst imaginable)").fill("6")

        rmdq = page.locator("#instrument-rmdq")
        for n, statement in enumerate(RMDQ_ITEM_WORDING, 1):
            item = rmdq.get_by_role("group", name=f"{n}. {statement}", exact=True)
            item.get_by_label("Yes" if n <= RMDQ_YES else "No", exact=True).check()
        expect(rmdq.locator('input[type="radio"]:checked')).to_have_count(23)

        eq5d = page.locator("#instrument-eq5d")
        for dimension, level in EQ5D.items():
            eq5d.get_by_role("group", name=dimension, exact=True).get_by_label(
                level, exact=True
            ).check()
        eq5d.get_by_label("EQ VAS (0–100)").fill("70")

        global_ = page.locator("#instrument-global")
        global_.get_by_label("Better", exact=True).check()

        page.get_by_role("button", name="Save outcomes").click()

        expect(page).to_have_url(
            re.compile(rf"/trials/{demo_trial.code}/participants/{participant.pk}/$")
        )
        expect(page.get_by_role("heading", name=number)).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text(
            "10 weeks: outcomes saved; visit completed."
        )
        visit_row = page.locator("#visit-timeline tbody tr").filter(has_text="10 weeks")
        expect(visit_row).to_contain_text(f"Attended {today.day} {today:%b %Y}")
        expect(visit_row).not_to_contain_text("outside window")
        expect(visit_row).to_contain_text("coordinator")
        expect(visit_row.get_by_role("link", name="Outcomes", exact=True)).to_be_visible()

        coordinator = User.objects.get(username="coordinator")
        w10.refresh_from_db()
        assert (w10.outcome, w10.attended_on, w10.in_window, w10.recorded_by) == (
            Visit.Outcome.COMPLETED,
            today,
            True,
            coordinator,
        )
        entries = {
            e.instrument.code: e
            for e in OutcomeEntry.objects.filter(visit=w10).select_related("instrument")
        }
        assert set(entries) == {"pain", "rmdq", "eq5d", "global"}
        assert all(e.entered_by == coordinator and e.not_done == "" for e in entries.values())
        assert (entries["pain"].responses, entries["pain"].score) == ({"value": 6}, 6)
        assert entries["rmdq"].responses == {"items": [True] * RMDQ_YES + [False] * 16}
        assert entries["rmdq"].score == RMDQ_YES
        eq = entries["eq5d"]
        assert (eq.eq5d_profile, eq.eq5d_vas) == ("11221", 70)
        assert eq.score == pytest.approx(0.760, abs=1e-9)
        assert (entries["global"].score, entries["global"].improved) == (2, True)
