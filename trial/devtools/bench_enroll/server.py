"""gunicorn as deployed, on a free loopback port; connection and profile helpers."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import pstats
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from trial.devtools.bench_enroll import HTTP_TIMEOUT, REPO
from trial.devtools.bench_enroll.load import Browser
from trial.devtools.management.commands import bench_sms

# --- gunicorn -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ServerSpec:
    worker_class: str
    workers: int
    threads: int
    config: str = ""  # a gunicorn config file (-c), e.g. hooks patching in a candidate fix

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            label = f"{self.workers} gthread workers × {self.threads} threads"
        else:
            label = f"{self.workers} sync workers"
        return label + (f" with {Path(self.config).name}" if self.config else "")

    def args(self) -> list[str]:
        args = ["-k", self.worker_class, "-w", str(self.workers)]
        return args + (["--threads", str(self.threads)] if self.worker_class == "gthread" else [])


def server_spec(text: str) -> _ServerSpec:
    """sync:W or gthread:WxT, optionally @CONFIG: a gunicorn config file for that server,
    e.g. a post_fork hook that patches in a candidate fix, so that it is measured against
    the stock code in the same run, interleaved."""
    text, _, config = text.partition("@")
    match = re.fullmatch(r"(sync):(\d+)|(gthread):(\d+)x(\d+)", text)
    if not match:
        raise CommandError("--server is sync:W or gthread:WxT[@CONFIG], e.g. sync:4, gthread:2x4")
    if config and not Path(config).is_file():
        raise CommandError(f"no gunicorn config file {config}")
    if match.group(1):
        return _ServerSpec("sync", int(match.group(2)), 1, config)
    return _ServerSpec("gthread", int(match.group(4)), int(match.group(5)), config)


# gunicorn hooks for --profile-dir, written to a config file at run time: each request is
# profiled in the thread that serves it (sync and gthread alike), one file per worker.
PROFILE_HOOKS = """
import cProfile, os, threading
_local = threading.local()
_profiles = []
_lock = threading.Lock()
def pre_request(worker, req):
    profile = getattr(_local, "profile", None)
    if profile is None:
        profile = _local.profile = cProfile.Profile()
        with _lock:
            _profiles.append(profile)
    profile.enable()
def post_request(worker, req, environ, resp):
    _local.profile.disable()
def worker_exit(server, worker):
    for i, profile in enumerate(_profiles):
        profile.dump_stats(os.path.join(os.environ["BENCH_PROFILE_DIR"],
                                        f"worker-{os.getpid()}-{i}.prof"))
"""


class _Server:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process, self.port, self.log_path = process, port, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gunicorn_server(spec: _ServerSpec, *, broker: str, log_dir: Path,
              profile_dir: str | None = None) -> Iterator[_Server]:  # fmt: skip
    """gunicorn serving trial.wsgi with production settings on a free loopback port."""
    port = bench_sms._free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trial.settings",
        "DATABASE_URL": bench_sms._database_url(),
        "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": broker,
        "LOG_LEVEL": "WARNING",
        # Persistent connections, as a production server keeps them.
        "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "60"),
        "TWILIO_AUTH_TOKEN": bench_sms.TOKEN,
        "SMS_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("DEBUG", None)
    args = [str(Path(sys.executable).parent / "gunicorn"), "trial.wsgi", *spec.args(),
            "-b", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip
    if profile_dir and spec.config:
        raise CommandError("--profile-dir and a server's @CONFIG both need gunicorn's -c")
    if spec.config:
        args += ["-c", str(Path(spec.config).resolve())]
    if profile_dir:
        Path(profile_dir).mkdir(parents=True, exist_ok=True)
        hooks = log_dir / "gunicorn_profile.conf.py"
        hooks.write_text(PROFILE_HOOKS)
        env["BENCH_PROFILE_DIR"] = str(Path(profile_dir).resolve())
        args += ["-c", str(hooks)]
    log_path = log_dir / f"gunicorn-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = _Server(process, port, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise CommandError("gunicorn exited: " + server.log()[-2000:])
            try:
                status, _, _ = Browser(port).request("GET", reverse("login"))
                if status != 200:
                    raise CommandError(f"login page answered {status}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError("gunicorn did not answer within 60 s") from None
                time.sleep(0.2)
        _warm_up(port, spec.workers * spec.threads * 2)
        yield server
    finally:
        stop_process(process)


def _warm_up(port: int, requests: int) -> None:
    """Concurrent GETs, so every worker has loaded the URLconf and templates (Django does
    that on a worker's first request, seconds on a busy machine) before anything is timed."""

    def get():
        with contextlib.suppress(OSError, http.client.HTTPException):
            Browser(port).request("GET", reverse("login"))

    threads = [threading.Thread(target=get) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT)


def stop_process(process: subprocess.Popen) -> None:
    """Stop a process started in its own session (with its children), keeping its log."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- Small helpers --------------------------------------------------------------------------


def database_dsn() -> str:
    db = connection.settings_dict
    parts = {"dbname": db["NAME"], "user": db["USER"], "password": db["PASSWORD"],
             "host": db["HOST"] or "localhost", "port": db["PORT"] or 5432}  # fmt: skip
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def pg_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0].split()[0]


def profile_report(profile_dir: str, top: int = 25) -> str:
    files = sorted(str(p) for p in Path(profile_dir).glob("worker-*.prof"))
    if not files:
        return "no profiles written (did the workers exit cleanly?)\n"
    stats = pstats.Stats(*files, stream=(buffer := _Buffer()))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return "".join(buffer.parts)


class _Buffer:
    def __init__(self):
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)
