"""A production server keeps its database connections between requests and checks one
that may have died before using it, so requests right after a PostgreSQL restart (or a
failover, or an idle connection cut by a firewall) do not fail.

Run under gunicorn with production settings against the test database; the server's
connections are cut with pg_terminate_backend from this process's connection, which is
what a restart does to them.
"""

from __future__ import annotations

import pytest
from django.db import connection

from tests import factories
from tests.servers import gunicorn, log_in

pytestmark = pytest.mark.postgres

PASSWORD = "a-password-for-the-server-test"


def server_backends() -> list[int]:
    """Process ids of the other client connections to the test database (the server's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def terminate(pids: list[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def coordinator_login(transactional_db, modic, settings):
    # The server checks passwords with the production hashers, not the tests' cheap one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = factories.persona("Coordinator", trial=modic, username="coord-server")
    user.set_password(PASSWORD)
    user.save()
    return user.username


def test_after_the_servers_connection_is_cut_the_next_request_succeeds(coordinator_login, tmp_path):
    with gunicorn(tmp_path) as server:
        session = log_in(server, coordinator_login, PASSWORD)
        assert session.get(server.url + "/", timeout=60).status_code == 200
        # Production keeps the connection after the response (CONN_MAX_AGE by default).
        kept = server_backends()
        assert kept, "the server closed its connection after the request"
        terminate(kept)

        response = session.get(server.url + "/", timeout=60)

        assert response.status_code == 200, server.log()[-3000:]
        assert "MOD" in response.text
        assert server_backends(), "the server did not open a new connection"


def test_without_health_checks_the_first_request_after_the_cut_fails(coordinator_login, tmp_path):
    """The failure the health checks prevent: a persistent connection the server closed is
    used as if alive, and the request answers 500. (Keeps the test above honest: the cut
    does reach the server's connection.)"""
    with gunicorn(tmp_path, CONN_HEALTH_CHECKS="0") as server:
        session = log_in(server, coordinator_login, PASSWORD)
        assert session.get(server.url + "/", timeout=60).status_code == 200
        terminate(server_backends())

        assert session.get(server.url + "/", timeout=60).status_code == 500
        # Django drops the broken connection at the end of that request; the next one works.
        assert session.get(server.url + "/", timeout=60).status_code == 200
