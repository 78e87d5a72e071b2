"""One run per journal: exclusive locks that the kernel drops when the process dies.

Two locks, both taken before the journal is touched:

- a ``.lock`` file beside the journal's real file (symlinks resolved), which names the holder
  (pid, host, since when) for the message a second run gets, and which also works between
  machines sharing the folder;
- a lock keyed on the journal file's **identity**, its device and inode, in a private folder of
  the user's runtime (or temporary) directory: a hard link (or a bind mount) is another path to
  the same file, and two runs through two paths must not both send every id.

A journal with several names (hard links) is refused even when no run holds it: SQLite keeps
the latest writes in a ``-wal`` file named after the path it was opened by, so through another
name the journal can look older than it is (a run killed before its log was checkpointed).

A crash never leaves a stale lock (the kernel drops it). Files are created readable by their
owner only: the journal beside the lock holds personal data.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

__all__ = ["JobLock", "JournalError", "JournalBusy", "JournalWriteError", "create_private",
           "utc_now"]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class JournalError(Exception):
    """The journal cannot be used (unwritable place, another job's file, a newer format...)."""


class JournalBusy(JournalError):
    """Another run holds the journal's lock."""


class JournalWriteError(JournalError):
    """Writing the journal failed (a full disk, a file size limit): nothing of the failed write
    was kept, and nothing was sent because of it."""


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


def _lock_folder() -> Path:
    """A folder only this user can write, where identity locks live (the same one for every
    run of this user on this machine)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = Path(base) / f"posthog-async-{uid}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise JournalError(f"cannot create the lock folder {folder}: {exc.strerror or exc}"
                           ) from None
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != uid) or (
            sys.platform != "win32" and info.st_mode & 0o022):
        raise JournalError(f"the lock folder {folder} is not a private folder of this user: "
                           "remove it, or set XDG_RUNTIME_DIR to a folder of yours")
    return folder


class _FileLock:
    """An exclusive lock on the file at ``path``, creating it. ``unlink_on_release``: remove the
    file when released; taking the lock then checks that the file locked is still the one at
    ``path`` (a releasing run may have removed it meanwhile), so two runs never hold locks on
    two files of the same name."""

    def __init__(self, path: Path, what: str, *, unlink_on_release: bool = False) -> None:
        self.path, self._unlink = path, unlink_on_release
        while True:
            try:
                create_private(path)
                handle = open(path, "a+", encoding="utf-8")
            except OSError as exc:
                raise JournalError(f"cannot create the journal's lock file {path}: "
                                   f"{exc.strerror or exc}") from None
            if not _try_lock(handle):
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise JournalBusy(f"journal {what} is in use by {holder}; wait for that run to "
                                  "finish (or stop it) before starting another")
            if not unlink_on_release or _same_file(handle, path):
                break
            handle.close()  # removed by the run that held it: lock the file there now
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {utc_now()}\n")
        handle.flush()
        self._handle: IO[str] | None = handle

    def release(self) -> None:
        if self._handle is not None:
            if self._unlink:
                try:
                    os.unlink(self.path)  # before closing: nobody can lock it in between
                except OSError:
                    pass
            self._handle.close()  # closing releases the lock
            self._handle = None


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


class JobLock:
    """The locks of the journal at ``journal`` (creating it, empty, if missing); raises
    :class:`JournalBusy` when another run holds either."""

    def __init__(self, journal: Path) -> None:
        real = journal.resolve()
        self._locks: list[_FileLock] = [_FileLock(real.with_name(real.name + ".lock"), str(journal))]
        self.path = self._locks[0].path
        try:
            create_private(real)
            info = os.stat(real)
            folder = _lock_folder()
            self._locks.append(_FileLock(folder / f"journal-{info.st_dev}-{info.st_ino}.lock",
                                         f"{journal} (the same file as another path: a link)",
                                         unlink_on_release=True))
            links = os.stat(real).st_nlink
            if links > 1:
                raise JournalError(
                    f"journal {journal} has {links} names (hard links): SQLite keeps a journal's "
                    "latest writes in a -wal file beside the name it was opened by, so through "
                    "another name it can look older than it is. Keep one name (remove the other "
                    "links) and run again")
        except OSError as exc:
            self.release()
            raise JournalError(f"cannot create the journal {journal}: {exc.strerror or exc}"
                               ) from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for lock in reversed(self._locks):
            lock.release()
