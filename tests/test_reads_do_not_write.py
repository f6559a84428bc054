"""A GET never writes: the main pages, read as each role, run no INSERT, UPDATE or DELETE
but the audit of unblinded views and the session's own (tests.db_writes says why those).
The URL fuzz test (tests/test_fuzz_urls.py) checks the same of every GET it sends."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from tests.db_writes import captured_writes, not_allowed_on_read
from tests.outcomes.results.test_analysis_data import randomized, record_w10
from tests.participants.test_views import PAGES, page_url, site1_objects  # noqa: F401
from trial.models import Arm

ROLES = (
    "anonymous",
    "clinician",
    "clinician_site2",
    "coordinator",
    "statistician",
    "manager",
    "superuser",
    "outsider",
)


def main_pages(trial, objects) -> list[str]:
    """The participant pages, the results pages and the admin's lists."""
    urls = [page_url(page, trial, objects) for page in PAGES]
    urls += [
        reverse(name, args=[trial.code])
        for name in ("trial_results", "trial_consort_svg", "trial_consort_pdf", "trial_unblind")
    ]
    urls += [reverse("results_index"), reverse("admin:index")]
    urls += [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]
    return urls


@pytest.mark.parametrize("role", ROLES)
def test_reading_the_main_pages_writes_nothing(
    request,
    client,
    modic,
    site1,
    site2,
    manager,
    role,
    site1_objects,  # noqa: F811
):
    for n, site in enumerate((site1, site2, site1)):
        record_w10(randomized(modic, site, manager, pain=5 + n), manager, pain=3, answer=2)
    if role == "superuser":
        user = User.objects.create_superuser("root", "root@example.org", "pw-123456")
    elif role != "anonymous":
        user = request.getfixturevalue(role)
    if role != "anonymous":
        client.force_login(user)
    for url in main_pages(modic, site1_objects):
        with captured_writes() as writes:
            response = client.get(url)
        assert response.status_code < 500, url
        assert not not_allowed_on_read(writes), (url, not_allowed_on_read(writes))


def test_the_capture_sees_a_write(modic):
    with captured_writes() as writes:
        Arm.objects.filter(trial=modic).update(description="Changed")
    assert not_allowed_on_read(writes)


@pytest.mark.parametrize("role", ["statistician", "manager", "superuser"])
def test_reading_the_main_pages_while_arms_lack_codes_assigns_none(
    request,
    client,
    modic,
    site1,
    manager,
    role,
    site1_objects,  # noqa: F811
):
    """Blind codes are assigned by a service (trial.blinding.trial_assign_blind_codes, on a
    change of the arms or the admin's save), never by a read: a page that finds an arm
    without one refuses (blinded) or shows names, and the codes stay missing."""
    record_w10(randomized(modic, site1, manager, pain=5), manager, pain=3, answer=2)
    Arm.objects.filter(trial=modic).update(blind_code="")
    if role == "superuser":
        user = User.objects.create_superuser("root", "root@example.org", "pw-123456")
    else:
        user = request.getfixturevalue(role)
    client.force_login(user)
    for url in main_pages(modic, site1_objects):
        with captured_writes() as writes:
            response = client.get(url)
        assert response.status_code < 500, url
        assert not not_allowed_on_read(writes), (url, not_allowed_on_read(writes))
    assert set(Arm.objects.filter(trial=modic).values_list("blind_code", flat=True)) == {""}
