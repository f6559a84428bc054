"""The page frame every screen shares (templates/base.html): a skip link first, to the
main landmark (WCAG 2.2 SC 2.4.1, bypass blocks), translatable."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation

from tests.translations import catalogue

SKIP_LINK = re.compile(
    r'<body[^>]*>\s*<a\b[^>]*\bhref="#main"[^>]*>\s*Skip to main content\s*</a>', re.S
)


def main_landmark(html: str) -> str:
    tags = re.findall(r"<main\b[^>]*>", html)
    assert len(tags) == 1, tags
    return tags[0]


@pytest.mark.parametrize(
    ("user", "page"),
    [
        (None, "login"),
        ("clinician", "trial_home"),
        ("coordinator", "worklist"),
        ("statistician", "balance"),
    ],
)
def test_every_page_starts_with_a_skip_link_to_its_main_content(request, client, modic, user, page):
    if user:
        client.force_login(request.getfixturevalue(user))
    address = reverse(page) if page == "login" else reverse(page, args=[modic.code])
    response = client.get(address)
    assert response.status_code == 200
    html = response.content.decode()
    assert SKIP_LINK.search(html), html[:600]
    main = main_landmark(html)
    assert 'id="main"' in main
    # Focus can land on <main> when the link is followed (it is not a control itself).
    assert 'tabindex="-1"' in main


def test_the_skip_link_is_translated_when_a_catalogue_has_it(settings, tmp_path, client):
    settings.LOCALE_PATHS = [
        catalogue(tmp_path, "da", {"Skip to main content": "Spring til hovedindholdet"})
    ]
    with translation.override("da"):
        html = client.get(reverse("login")).content.decode()
    assert re.search(r'href="#main"[^>]*>\s*Spring til hovedindholdet\s*</a>', html)
    assert "Skip to main content" not in html
