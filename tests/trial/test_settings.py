"""Settings come from the environment; production values are safe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-like-secret-for-the-deploy-check-" + "y" * 20,
    "ALLOWED_HOSTS": "trial.example.org",
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
}


def _clean_env() -> dict[str, str]:
    dropped = {
        "DEBUG", "SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "CONN_MAX_AGE",
        "CONN_HEALTH_CHECKS", "BEHIND_TLS_PROXY", "STATIC_ROOT",
    }  # fmt: skip
    return {k: v for k, v in os.environ.items() if k not in dropped}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Only the variables under test: nothing the test process set for itself (the browser
    # tests set DJANGO_ALLOW_ASYNC_UNSAFE, which check --deploy rightly rejects).
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**_clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_environment(tmp_path):
    """As the README's deployment steps: collectstatic, then the check."""
    env = {**PRODUCTION, "STATIC_ROOT": str(tmp_path / "static")}
    collected = manage("collectstatic", "--no-input", "-v", "0", env=env)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_warns_when_static_files_were_not_collected(tmp_path):
    env = {**PRODUCTION, "STATIC_ROOT": str(tmp_path / "never-collected")}
    result = manage("check", "--deploy", env=env)
    assert "trial.W003" in result.stdout + result.stderr
    assert "collectstatic" in result.stdout + result.stderr


def test_production_without_a_secret_key_refuses_to_serve_and_fails_the_deploy_check():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    deploy = manage("check", "--deploy", env=env)
    assert deploy.returncode != 0
    assert "SECRET_KEY must be set" in deploy.stderr + deploy.stdout
    for module in ("trial.wsgi", "trial.asgi"):
        serve = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            cwd=ROOT,
            env={**_clean_env(), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert serve.returncode != 0, module
        assert "SECRET_KEY must be set" in serve.stderr


def test_management_commands_run_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("makemigrations", "--check", "--dry-run", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_broker_celery_runs_tasks_eagerly(settings):
    from django.conf import settings as live

    configured = os.environ.get("CELERY_BROKER_URL", "")
    assert live.CELERY_TASK_ALWAYS_EAGER is (not configured)
    if not configured:
        assert live.CELERY_BROKER_URL == "memory://"


def settings_in(env: dict[str, str], *expressions: str) -> list[str]:
    """repr() of each expression, evaluated in a process configured by `env` alone."""
    code = "from django.conf import settings\n" + "".join(
        f"print(repr({expression}))\n" for expression in expressions
    )
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()[-len(expressions) :]


FORWARDED_HTTPS = (
    "__import__('django.test', fromlist=['RequestFactory']).RequestFactory()"
    ".get('/', HTTP_X_FORWARDED_PROTO='https').is_secure()"
)


def test_the_forwarded_proto_header_is_ignored_unless_a_tls_proxy_is_declared():
    """Trusting X-Forwarded-Proto without a proxy that sets it would let any client claim
    https (Django's docs on SECURE_PROXY_SSL_HEADER)."""
    header, secure = settings_in(PRODUCTION, "settings.SECURE_PROXY_SSL_HEADER", FORWARDED_HTTPS)
    assert header == "None"
    assert secure == "False"


def test_the_forwarded_proto_header_is_trusted_when_a_tls_proxy_is_declared():
    env = {**PRODUCTION, "BEHIND_TLS_PROXY": "1"}
    header, secure = settings_in(env, "settings.SECURE_PROXY_SSL_HEADER", FORWARDED_HTTPS)
    assert header == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert secure == "True"


def test_production_keeps_database_connections_and_checks_them_before_reuse():
    db = "settings.DATABASES['default']"
    production = settings_in(PRODUCTION, f"{db}['CONN_MAX_AGE']", f"{db}['CONN_HEALTH_CHECKS']")
    assert production == ["60", "True"]
    development = settings_in(
        {**PRODUCTION, "DEBUG": "1"}, f"{db}['CONN_MAX_AGE']", f"{db}['CONN_HEALTH_CHECKS']"
    )
    assert development == ["0", "True"]
    chosen = settings_in(
        {**PRODUCTION, "CONN_MAX_AGE": "300", "CONN_HEALTH_CHECKS": "0"},
        f"{db}['CONN_MAX_AGE']",
        f"{db}['CONN_HEALTH_CHECKS']",
    )
    assert chosen == ["300", "False"]


def test_an_empty_database_url_means_the_default_sqlite_file():
    # Env files often leave the variable empty; unset and empty must mean the same.
    (name,) = settings_in(
        {"DEBUG": "1", "DATABASE_URL": ""}, "str(settings.DATABASES['default']['NAME'])"
    )
    assert name == repr(str(ROOT / "db.sqlite3"))
