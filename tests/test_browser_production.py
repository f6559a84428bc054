"""A production deployment serves its own static files: gunicorn with DEBUG off, after
`collectstatic` into a fresh STATIC_ROOT, as the README's deployment steps say. Chromium
logs in and the page is styled by Bootstrap and our CSS, served by WhiteNoise under
content-hashed names, compressed and cached for ever.

Reuses the Playwright set-up of tests/test_browser.py (Debian's Chromium, a screenshot in
test-artifacts/ on failure).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from playwright.sync_api import Response, expect

from tests import factories, test_browser
from tests.servers import REPO, gunicorn
from tests.test_browser import screenshot_on_failure

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

browser = test_browser.browser

PASSWORD = "a-password-for-the-production-test"
HASHED = r"\.[0-9a-f]{12}\."  # ManifestStaticFilesStorage's name.<md5[:12]>.ext


def collectstatic(static_root) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=REPO,
        env={**env, "STATIC_ROOT": str(static_root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_with_debug_off_under_gunicorn_pages_are_styled_from_hashed_compressed_files(
    browser, transactional_db, modic, settings, tmp_path, request
):
    static_root = tmp_path / "static"
    collectstatic(static_root)
    # The server checks passwords with the production hashers, not the tests' cheap one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = factories.persona("Coordinator", trial=modic, username="coord-production")
    user.set_password(PASSWORD)
    user.save()

    with gunicorn(tmp_path, STATIC_ROOT=str(static_root)) as server:
        context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(test_browser.TIMEOUT_MS)
        page = context.new_page()
        static: dict[str, Response] = {}
        page.on("response", lambda r: static.setdefault(r.url, r) if "/static/" in r.url else None)
        try:
            with screenshot_on_failure(page, request):
                page.goto("/")
                page.get_by_label("Username").fill(user.username)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Log in").click()
                expect(page.get_by_role("button", name="Log out")).to_be_visible()
                page.wait_for_load_state("load")

                # Bootstrap's: a flex navbar and its font stack (unstyled: block, Times).
                navbar = page.locator("nav.navbar")
                assert navbar.evaluate("e => getComputedStyle(e).display") == "flex"
                assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
                # Ours: app.css loaded under its hashed name, its rules parsed.
                rules = page.evaluate(
                    """pattern => [...document.styleSheets]
                        .filter(s => new RegExp(pattern).test(s.href || ''))
                        .map(s => s.cssRules.length)""",
                    r"/static/css/app" + HASHED + r"css$",
                )
                assert len(rules) == 1 and rules[0] > 0, rules

                # Served under hashed names, compressed, cached for ever.
                pattern = r"/bootstrap\.min" + HASHED + r"css$"
                bootstrap = [u for u in static if re.search(pattern, u)]
                assert bootstrap, sorted(static)
                assert any(u.endswith(".js") for u in static), sorted(static)
                for url in [*bootstrap, *(u for u in static if u.endswith(".js"))]:
                    assert re.search(HASHED + r"(css|js)$", url), url
                    response = static[url]
                    headers = response.all_headers()
                    assert response.status == 200, url
                    assert headers.get("content-encoding") in {"gzip", "br"}, (url, headers)
                    assert "immutable" in headers.get("cache-control", ""), (url, headers)
        finally:
            context.close()
