"""The clinician's journey in a real browser: Debian's Chromium driven by Playwright.

Runs against pytest-django's live server (transactional database). Playwright cannot
download browsers here, so Chromium is always /usr/bin/chromium; `make test` installs it,
and a missing Chromium fails these tests rather than skipping them.

On any failure a full-page screenshot is saved to test-artifacts/<test name>.png.

Every page a journey loads is checked for accessibility (axe-core and control contrast,
tests/a11y.py): the `page` fixture attaches the check to the browser context, and a
serious or critical violation on any page fails the test that loaded it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from outcomes.instruments.models import OutcomeEntry
from outcomes.instruments.scoring import RMDQ_ITEM_WORDING
from participants.models import Allocation, Participant, ScreeningRecord
from participants.services import trial_today
from tests import factories
from tests.a11y import A11yAudit
from trial.devtools.demo import DEMO_USERS, build_modic_trial, create_demo_users
from trial.models import Trial

# Playwright's sync API runs an event loop in this thread; without this, every Django ORM
# call made by the test itself raises SynchronousOnlyOperation.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A page frozen in the back/forward cache would stop its accessibility check half-way
    # (tests/a11y.py); without the cache, going back loads the page again, checked.
    "--disable-features=BackForwardCache",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 15_000
PARTICIPANT_NUMBER = re.compile(r"^MOD-01-\d{4}$")
ARM_NAME = re.compile(r"^(Rest|Exercise)$")


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's live server, started with plain-HTTP security settings.

    With DEBUG off (as under pytest) the settings are production's: SecurityMiddleware
    redirects http:// to https://, which the live server does not speak, and cookies are
    Secure-only. SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the server thread
    loads its middleware, so the override has to be in force before the server starts; a
    per-test `settings` override would come too late for pytest-django's session-scoped
    server. pytest-django's `_live_server_helper` still gives every test using this fixture
    the transactional database, as with the stock `live_server`.
    """
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False
    ):
        server = LiveServer(addr)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}. The browser tests need Debian's "
            "chromium package (`make test` installs it; or: apt-get install chromium). "
            "`playwright install` cannot download browsers here.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser context and page; every page it loads is checked for accessibility
    (tests/a11y.py), and the test fails on a serious or critical violation."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    audit = A11yAudit(context, live_server.url, request.node.name)
    page = context.new_page()
    try:
        yield page
        audit.finish()
    finally:
        context.close()
    if failures := audit.failures():
        pytest.fail(failures, pytrace=False)


@pytest.fixture
def demo_trial(transactional_db, live_server: LiveServer) -> Trial:
    """The demo trial and demo users, as `make run` seeds them."""
    trial = build_modic_trial()
    create_demo_users(trial)
    return trial


@contextmanager
def screenshot_on_failure(page: Page, request: pytest.FixtureRequest) -> Iterator[None]:
    """Save a full-page PNG of whatever the browser shows if the body raises."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as exc:  # the page may be gone; keep the original error
            print(f"Could not save a failure screenshot: {exc}")
        raise


# --- Steps ----------------------------------------------------------------------------------


def demo_credentials(username: str) -> tuple[str, str]:
    password = next(pw for name, _role, pw, _sites in DEMO_USERS if name == username)
    return username, password


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def screen_eligible_patient(page: Page, trial: Trial) -> None:
    page.get_by_role("link", name="Screen a patient").first.click()
    expect(page.get_by_role("heading", name="Screen a patient")).to_be_visible()
    page.get_by_label("Initials").fill("JH")
    # Leave the screening date at its default, which must be today in the trial's zone.
    expect(
        page.get_by_label("Screening date"),
        "the screening date should default to today",
    ).to_have_value(trial_today(trial).isoformat())
    criteria = list(trial.criteria.order_by("kind", "order"))
    expect(page.locator("form fieldset")).to_have_count(len(criteria))
    for criterion in criteria:
        answer = "Yes" if criterion.kind == "inclusion" else "No"
        question = page.locator("fieldset").filter(
            has=page.locator("legend", has_text=criterion.question)
        )
        question.get_by_label(answer, exact=True).check()
    page.get_by_role("button", name="Record screening").click()


def record_consent(page: Page, trial: Trial) -> None:
    expect(page).to_have_url(re.compile(r"/screening/\d+/consent/$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Consent — JH"))).to_be_visible()
    consented = page.get_by_label("Gave written informed consent")
    consented.check()
    expect(consented).to_be_checked()
    # Date and form version stay at their defaults: today, and the one active version.
    expect(page.get_by_label("Consent date"), "consent date should default to today").to_have_value(
        trial_today(trial).isoformat()
    )
    version = page.get_by_label("Consent form version")
    expect(version.locator("option:checked")).to_have_text(re.compile(r"^1\.0\b"))
    page.get_by_role("button", name="Save").click()


RMDQ_YES = 7  # items 1–7 answered yes, 8–23 no: score 7
PAIN_LABEL = "Current low back pain (0 = no pain, 10 = worst imaginable)"


def enter_baseline(page: Page) -> None:
    """Contact details, SMS language, values, factors and the baseline questionnaires; the
    pain rating (the baseline variable "pain") is first below eligibility, then corrected."""
    expect(page).to_have_url(re.compile(r"/participants/\d+/baseline/$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Baseline"))).to_be_visible()
    page.get_by_label("Full name").fill("Jens Hansen")
    page.get_by_label("Mobile phone").fill("+4520123456")
    sms_language = page.get_by_label("SMS language")
    expect(sms_language, "the SMS language defaults to the trial's").to_have_value("da")
    sms_language.select_option("en")
    page.get_by_label("Age (years)").fill("45")
    page.locator("fieldset", has_text="Modic type").get_by_label("Type 1", exact=True).check()
    page.locator("fieldset", has_text="Sex").get_by_label("Female", exact=True).check()

    pain = page.locator("#instrument-pain")
    pain.get_by_label(PAIN_LABEL).fill("2")
    rmdq = page.locator("#instrument-rmdq")
    for n, statement in enumerate(RMDQ_ITEM_WORDING, 1):
        item = rmdq.get_by_role("group", name=f"{n}. {statement}", exact=True)
        item.get_by_label("Yes" if n <= RMDQ_YES else "No", exact=True).check()
    eq5d = page.locator("#instrument-eq5d")
    eq5d.get_by_label("Status").select_option("refused")
    page.get_by_role("button", name="Save baseline and review").click()

    # Pain 2 is below the eligibility criterion: said next to the pain rating, nothing saved.
    expect(page.locator("#form-error-summary")).to_contain_text("Nothing was saved")
    pain = page.locator("#instrument-pain")
    expect(pain).to_contain_text("below the eligibility criterion (at least 4)")
    expect(page.locator("#instrument-rmdq input[type='radio']:checked")).to_have_count(23)
    pain.get_by_label(PAIN_LABEL).fill("7")
    page.get_by_role("button", name="Save baseline and review").click()


def confirm_review(page: Page) -> None:
    expect(page).to_have_url(re.compile(r"/participants/\d+/review/$"))
    expect(page.get_by_role("heading", name="Review before randomization")).to_be_visible()
    page.get_by_label(re.compile(r"I have checked the baseline values")).check()


def expect_allocation_page(page: Page) -> tuple[str, str]:
    expect(page).to_have_url(re.compile(r"/participants/\d+/allocation/$"))
    number = page.locator("#participant-number")
    arm = page.locator("#allocated-arm")
    expect(number).to_have_text(PARTICIPANT_NUMBER)
    expect(arm).to_have_text(ARM_NAME)
    return number.inner_text().strip(), arm.inner_text().strip()


# --- Tests ----------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_clinician_screens_consents_enters_baseline_and_randomizes_in_the_browser(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("clinician"))
        screen_eligible_patient(page, demo_trial)
        record_consent(page, demo_trial)
        enter_baseline(page)
        confirm_review(page)
        expect(page.locator("#sms-language")).to_have_text("English")
        expect(page.get_by_role("row", name=re.compile(r"^Roland–Morris"))).to_contain_text(
            f"{RMDQ_YES} of 23"
        )
        expect(page.get_by_role("row", name=re.compile(r"^EQ-5D-3L"))).to_contain_text(
            "Not done: refused"
        )
        review_url = page.url

        # A second tab left open on the review page, to resubmit after randomizing.
        stale = page.context.new_page()
        stale.goto(review_url)
        confirm_review(stale)

        page.get_by_role("button", name="Randomize").click()
        number, arm = expect_allocation_page(page)

        participant = Participant.objects.get(trial=demo_trial, number=number)
        allocation = Allocation.objects.get(participant=participant)
        assert allocation.arm.name == arm
        assert allocation.allocated_by.username == "clinician"
        assert participant.full_name == "Jens Hansen"
        assert participant.phone == "+4520123456"
        assert participant.baseline == {"age": 45, "pain": 7}
        assert participant.factor_levels["pain"] == "7-10"
        assert participant.sms_language == "en"
        # The baseline questionnaires now belong to the baseline visit.
        entries = {
            e.instrument.code: e
            for e in OutcomeEntry.objects.filter(participant=participant).select_related(
                "instrument", "visit__definition"
            )
        }
        assert {code: e.visit.definition.code for code, e in entries.items()} == {
            "pain": "baseline",
            "rmdq": "baseline",
            "eq5d": "baseline",
        }
        assert (entries["pain"].score, entries["rmdq"].score) == (7, RMDQ_YES)
        assert entries["eq5d"].not_done == "refused"

        # Back, then reload: the review page never offers a second randomization.
        page.go_back()
        page.reload()
        assert expect_allocation_page(page) == (number, arm)

        # Resubmitting the stale tab's form shows the allocation already made.
        stale.get_by_role("button", name="Randomize").click()
        assert expect_allocation_page(stale) == (number, arm)

        assert Allocation.objects.filter(participant=participant).count() == 1
        assert Allocation.objects.filter(trial=demo_trial).count() == 1


@pytest.mark.timeout(120)
def test_double_clicking_randomize_creates_exactly_one_allocation(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    clinician = User.objects.get(username="clinician")
    participant = factories.enrolled_participant(
        demo_trial, demo_trial.sites.get(code="01"), clinician
    )
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("clinician"))
        page.goto(f"/trials/{demo_trial.code}/participants/{participant.pk}/review/")
        confirm_review(page)

        page.get_by_role("button", name="Randomize").dblclick()
        number, arm = expect_allocation_page(page)
        page.wait_for_load_state("networkidle")

        participant.refresh_from_db()
        assert participant.number == number
        assert Allocation.objects.filter(participant=participant).count() == 1
        assert Allocation.objects.get(participant=participant).arm.name == arm
        assert Allocation.objects.filter(trial=demo_trial).count() == 1


@pytest.mark.timeout(120)
def test_going_back_to_the_screening_form_and_submitting_again_records_one_screening(
    page: Page, demo_trial: Trial, request: pytest.FixtureRequest
):
    before = ScreeningRecord.objects.filter(trial=demo_trial).count()
    with screenshot_on_failure(page, request):
        log_in(page, *demo_credentials("clinician"))
        screen_eligible_patient(page, demo_trial)
        expect(page).to_have_url(re.compile(r"/screening/\d+/consent/$"))
        page.go_back()
        expect(page.get_by_role("heading", name="Screen a patient")).to_be_visible()
        button = page.get_by_role("button", name="Record screening")
        # The submit button carries its colour, not only Bootstrap's bare .btn.
        expect(button).to_have_class(re.compile(r"\bbtn-primary\b"))
        # Nothing typed before comes back, so submitting again records nothing.
        expect(page.get_by_label("Initials")).to_have_value("")
        button.click()  # the browser itself refuses the empty required fields
        page.wait_for_load_state("networkidle")
        expect(page).to_have_url(re.compile(r"/screening/new/$"))
        assert ScreeningRecord.objects.filter(trial=demo_trial).count() == before + 1
