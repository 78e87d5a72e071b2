"""One run per journal: an exclusive lock on a ``.lock`` file beside the journal's real file.

The kernel drops the lock when the process dies, so a crash never leaves a stale lock; the file
names the holder (pid, host, since when) for the message a second run gets. Symlinks are
resolved first, so two spellings of one journal share one lock. Files are created readable by
their owner only: the journal beside it holds personal data.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

__all__ = ["JobLock", "JournalError", "JournalBusy", "create_private", "utc_now"]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class JournalError(Exception):
    """The journal cannot be used (unwritable place, another job's file, a newer format...)."""


class JournalBusy(JournalError):
    """Another run holds the journal's lock."""


def create_private(path: Path) -> None:
    """Create ``path`` (if missing) readable and writable by its owner only."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _try_lock(handle: IO[str]) -> bool:
    """Take an exclusive, non-blocking lock that the OS drops when the process dies."""
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class JobLock:
    """The lock of the journal at ``journal``; raises :class:`JournalBusy` when it is held."""

    def __init__(self, journal: Path) -> None:
        real = journal.resolve()
        self.path = real.with_name(real.name + ".lock")
        try:
            create_private(self.path)
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise JournalError(f"cannot create the journal's lock file {self.path}: "
                               f"{exc.strerror or exc}") from None
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise JournalBusy(f"journal {journal} is in use by {holder}; wait for that run to "
                              "finish (or stop it) before starting another")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {utc_now()}\n")
        handle.flush()
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the lock
            self._handle = None
