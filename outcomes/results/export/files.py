"""Export bundles on disk, readable by the service user alone (issue 15 §16).

An export holds a trial's data, an unblinded one the arms too: the bundle is created 0600
and lives in EXPORT_DIR, kept 0700, so no other account on the machine can list or read
anything in it (the builder's spool and stat files are in temporary directories inside it,
themselves 0700). Modes are set explicitly: a mode given at creation passes through the
process umask, which can only remove bits and differs between a shell, a systemd unit and
a Celery worker, so the result would depend on how the worker was started.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class SharedExportDirectory(RuntimeError):
    pass


def private_directory(path: Path) -> Path:
    """Create `path` if missing (parents as usual) and make it 0700. A sticky directory
    (such as /tmp) is shared by design: refused rather than closed to its other users."""
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    current = path.stat().st_mode
    if current & stat.S_ISVTX:
        raise SharedExportDirectory(
            f"EXPORT_DIR ({path}) is a shared directory (sticky bit, like /tmp): give the "
            "exports a directory of their own."
        )
    if stat.S_IMODE(current) != DIRECTORY_MODE:
        path.chmod(DIRECTORY_MODE)
    return path


def create_private(path: Path) -> BinaryIO:
    """A new file (never an existing one) open for binary writing, 0600 from its first
    byte; its `name` is the path, as zipfile needs."""

    def opener(name: str, flags: int) -> int:
        descriptor = os.open(name, flags, FILE_MODE)
        os.fchmod(descriptor, FILE_MODE)
        return descriptor

    return open(path, "xb", opener=opener)  # noqa: SIM115 (the caller closes it)
