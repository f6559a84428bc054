"""A statistician opens the results dashboard in a real browser: from the main navigation to
the admin's results page, with the CONSORT diagram, Table 1 and ITT results, arms blinded.

Reuses the Playwright set-up of tests/test_browser.py (Debian's Chromium, the plain-HTTP
live server, the demo trial and users, a screenshot in test-artifacts/ on failure).
"""

from __future__ import annotations

import os
import zipfile

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tests import test_browser
from tests.outcomes.results.test_analysis_data import randomized, record_w10
from tests.test_browser import demo_credentials, log_in, screenshot_on_failure
from trial.models import Arm, Trial

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

browser = test_browser.browser
live_server = test_browser.live_server
page = test_browser.page
demo_trial = test_browser.demo_trial


@pytest.mark.timeout(120)
def test_a_statistician_opens_the_blinded_results_dashboard(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    manager = User.objects.get(username="manager")
    sites = list(demo_trial.sites.order_by("code"))
    people = [randomized(demo_trial, sites[n % 2], manager, pain=5 + n % 4) for n in range(6)]
    for n, participant in enumerate(people[:5]):
        record_w10(participant, manager, pain=2 + n, answer=1 + n % 4)

    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("statistician"))
        page.goto(f"/trials/{demo_trial.code}/balance/")
        page.get_by_role("link", name="Results").click()
        expect(page.get_by_role("heading", name="CONSORT flow diagram")).to_be_visible()
        consort = page.locator(".consort svg")
        expect(consort).to_be_visible()
        expect(consort).to_contain_text("Randomized (n = 6)")
        expect(consort).to_contain_text("10 weeks: analysed")
        expect(
            page.get_by_role("heading", name="Baseline characteristics (Table 1)")
        ).to_be_visible()
        expect(page.get_by_role("heading", name="Intention-to-treat results")).to_be_visible()
        expect(page.locator("text=Adjusted difference").first).to_be_visible()
        expect(page.locator(".results")).to_contain_text("Arm A")
        body = page.locator("body").inner_text()
        for arm in Arm.objects.filter(trial=demo_trial):
            assert arm.description not in body
            assert f"Allocated to {arm.name}" not in body
        with page.expect_download() as download:
            page.get_by_role("link", name="Download SVG").click()
        assert download.value.suggested_filename == f"{demo_trial.code}-consort.svg"

        # The export bundle: started from the page, built by the task (eager here), its
        # progress shown, then downloaded and opened.
        page.get_by_role("button", name="Start export").click()
        row = page.locator("table.exports tbody tr").first
        expect(row.locator("progress")).to_have_attribute("value", "100", timeout=30_000)
        with page.expect_download() as bundle:
            row.get_by_role("link", name="Download").click()
        path = bundle.value.path()
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            assert {"participants.csv", "participants.dta", "participants.sav"} <= names
            text = archive.read("participants.csv").decode()
        assert len(text.strip().splitlines()) == 1 + 6
        for arm in Arm.objects.filter(trial=demo_trial):
            assert arm.name not in text
