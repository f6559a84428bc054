"""The throwaway PostgreSQL cluster of the test and benchmark commands (tests.pgcluster)
leaves nothing running when it is killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pgcluster import ClusterError, pg_bin

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _needs_postgres_binaries():
    try:
        pg_bin()
    except ClusterError:
        if os.environ.get("CI"):
            raise  # CI has them (make test installs nothing else); never skip there
        pytest.skip("PostgreSQL server binaries not installed")


def test_a_killed_pgcluster_stops_its_command_and_its_server():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pgcluster", "--", sys.executable, "-c",
         "import time; time.sleep(120)"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
        # Its own cluster even in the PostgreSQL pass (which sets DATABASE_URL).
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    )  # fmt: skip
    try:
        line = proc.stderr.readline()
        assert "throwaway PostgreSQL at" in line, line
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it is up

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
