"""Shared fixtures: the demo trial and one persona per role (plus outsiders).

The suite runs twice in `make test`: on SQLite, and on a throwaway PostgreSQL cluster
(tests.pgcluster) which sets EXPECT_DATABASE_VENDOR=postgresql; tests marked `postgres`
are skipped on SQLite only, and a PostgreSQL run that silently fell back to SQLite fails.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings

from tests import factories

# Property and fuzz tests explore new random examples on every developer's run; in CI they
# replay a fixed derivation (same examples every run), so a gate is never red by chance.
# A failure found locally is pinned with @example before it is fixed.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    vendor = "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"
    expected = os.environ.get("EXPECT_DATABASE_VENDOR")
    if expected and expected != vendor:
        raise pytest.UsageError(f"expected a {expected} database but settings give {vendor}")
    if vendor != "postgresql":
        skip = pytest.mark.skip(
            reason="needs PostgreSQL (runs in the PostgreSQL pass of make test)"
        )
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _database_vendor_is_the_expected_one(django_db_setup, django_db_blocker):
    expected = os.environ.get("EXPECT_DATABASE_VENDOR")
    if expected:
        with django_db_blocker.unblock():
            assert connection.vendor == expected, f"ran on {connection.vendor}, not {expected}"


@pytest.fixture(autouse=True)
def _fresh_sms_config_cache():
    """Each test reads the SMS configuration it made (a rolled-back test's rows vanish
    without signals, and SQLite reuses their ids)."""
    from outcomes.sms.tracking import clear_sms_config_cache

    clear_sms_config_cache()
    yield
    clear_sms_config_cache()


@pytest.fixture(autouse=True)
def _test_server_settings(settings, tmp_path):
    """Tests and the live server speak plain http on loopback, so the production-only
    https redirect and secure-only cookies are off; a cheap hasher keeps personas fast."""
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Export bundles go to the test's own directory, not the checkout's var/.
    settings.EXPORT_DIR = tmp_path / "exports"


@pytest.fixture
def modic(db):
    """The demo Modic trial, recruiting, with its two sites."""
    from trial.devtools.demo import build_modic_trial

    return build_modic_trial()


@pytest.fixture
def site1(modic):
    return modic.sites.get(code="01")


@pytest.fixture
def site2(modic):
    return modic.sites.get(code="02")


@pytest.fixture
def clinician(modic, site1):
    return factories.persona("Clinician", trial=modic, sites=[site1], username="clin1")


@pytest.fixture
def clinician_site2(modic, site2):
    return factories.persona("Clinician", trial=modic, sites=[site2], username="clin2")


@pytest.fixture
def coordinator(modic):
    return factories.persona("Coordinator", trial=modic, username="coord")


@pytest.fixture
def statistician(modic):
    return factories.persona("Statistician", trial=modic, username="stat")


@pytest.fixture
def manager(modic):
    return factories.persona("Trial manager", trial=modic, username="mgr")


@pytest.fixture
def outsider(modic):
    """A clinician of no trial at all."""
    return factories.persona("Clinician", trial=None, username="outsider")


@pytest.fixture
def enrolled(modic, site1, clinician):
    """A consented participant at site 01 with complete baseline, not yet randomized."""
    return factories.enrolled_participant(modic, site1, clinician)
