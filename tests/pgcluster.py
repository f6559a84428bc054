"""Run a command against a throwaway PostgreSQL cluster.

    python -m tests.pgcluster -- pytest -q

When DATABASE_URL is already set, the command simply runs against it. Otherwise this
initdb's a cluster in a temporary directory with the machine's PostgreSQL binaries,
starts it on a free loopback port, exports DATABASE_URL, runs the command, then stops
the server and deletes the directory, whatever happens. initdb refuses to run as root,
so as root the server runs as the existing unprivileged `postgres` user.

Any failure to start PostgreSQL is an error (exit 3), never a silent skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN_CANDIDATES = [
    os.environ.get("PG_BIN", ""),
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
]


class ClusterError(RuntimeError):
    pass


def pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15 or set "
        "PG_BIN or DATABASE_URL."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ClusterError(
            "running as root and there is no 'postgres' user to run the server"
        ) from exc
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(cmd: list[str], log: Path | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stdout + result.stderr
        if log and log.exists():
            detail += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        raise ClusterError(f"{' '.join(cmd)} failed ({result.returncode}):\n{detail}")


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a temporary cluster; yield its DATABASE_URL; stop and delete it afterwards."""
    bindir = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="trial-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    port = free_port()
    started = False
    try:
        _run(
            _as_server_user(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
            )
        )  # fmt: skip
        # Durability settings off: a throwaway test cluster needs speed, not crash safety.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _run(
            _as_server_user(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                 "-w", "-t", "60", "start"]
            ),
            log,
        )  # fmt: skip
        started = True
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                _as_server_user(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                ),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.pgcluster -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    env = dict(os.environ, EXPECT_DATABASE_VENDOR="postgresql")
    if os.environ.get("DATABASE_URL"):
        print("pgcluster: using the given DATABASE_URL", file=sys.stderr)
        return subprocess.call(argv, env=env)
    # Killed (a CI timeout, `kill`, a closed terminal): unwind, so the command is stopped and
    # the cluster deleted, instead of leaving a server running on the machine.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    try:
        with throwaway_cluster() as url:
            print(f"pgcluster: throwaway PostgreSQL at {url}", file=sys.stderr)
            env["DATABASE_URL"] = url
            return subprocess.call(argv, env=env)
    except ClusterError as exc:
        print(f"pgcluster: could not start PostgreSQL: {exc}", file=sys.stderr)
        return 3


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
