"""Servers the deployment tests run for real: gunicorn serving trial.wsgi with production
settings (DEBUG off) on a free loopback port, against the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from django.db import connection

from tests.pgcluster import free_port

REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "test-only-not-secret-" + "z" * 40
# Production settings with plain http on loopback: no TLS redirect, no Secure-only cookies.
PLAIN_HTTP = {
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
}
# Variables of this process that must not reach a production-like server.
DROPPED = {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS"}


def database_url() -> str:
    """A DATABASE_URL for the database this process uses (the test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{os.path.abspath(str(db['NAME']))}"
    auth = urllib.parse.quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + urllib.parse.quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gunicorn(log_dir: Path, **env: str) -> Iterator[Server]:
    """One sync worker (so every request reaches the same process and its connection),
    DEBUG off, this test database; `env` adds or overrides variables."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    full_env.update(
        {
            "DJANGO_SETTINGS_MODULE": "trial.settings",
            "DATABASE_URL": database_url(),
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            **PLAIN_HTTP,
            **env,
        }
    )
    log_path = log_dir / f"gunicorn-{port}.log"
    # A generous worker timeout: the first request loads the URLconf and templates, which
    # takes seconds on a machine busy with other tests.
    args = [str(Path(sys.executable).parent / "gunicorn"), "trial.wsgi", "--workers", "1",
            "--timeout", "120", "-b", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError("gunicorn exited: " + server.log()[-3000:])
            try:
                if requests.get(server.url + "/accounts/login/", timeout=60).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still loading
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 180 s: " + server.log()[-3000:])
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def log_in(server: Server, username: str, password: str) -> requests.Session:
    """A session logged in through the login form, as a browser would."""
    session = requests.Session()
    session.get(server.url + "/accounts/login/", timeout=60)
    response = session.post(
        server.url + "/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": server.url + "/accounts/login/"},
        timeout=60,
    )
    assert response.status_code == 200 and "sessionid" in session.cookies, server.log()[-3000:]
    return session
