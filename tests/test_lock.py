"""One run per journal, whatever path reaches it (issue 17, item 12).

The lock was keyed on the journal's path: a hard link is another path to the same file, so two
runs through two links both sent every id and both reports claimed the deletions. The lock is
now also keyed on the file's identity (device, inode)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posthog_async.jobs import JournalBusy, JournalError
from posthog_async.jobs._journal import Journal
from posthog_async.jobs._lock import JobLock, _lock_folder


def test_a_hard_link_to_a_journal_in_use_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    link = elsewhere / "link.sqlite"  # another folder: another .lock file beside it
    first = Journal(journal)
    try:
        os.link(journal, link)
        with pytest.raises(JournalBusy, match=f"in use by pid {os.getpid()}"):
            Journal(link)
    finally:
        first.close()
    with pytest.raises(JournalError, match="2 names"):  # free, but its -wal is per name
        Journal(link)
    journal.unlink()
    Journal(link).close()  # one name again


def test_a_symlink_and_a_second_spelling_share_the_lock(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    (tmp_path / "sub").mkdir()
    link = tmp_path / "l.sqlite"
    link.symlink_to(journal)
    lock = JobLock(journal)
    try:
        for other in (link, tmp_path / "sub" / ".." / "j.sqlite"):
            with pytest.raises(JournalBusy):
                JobLock(other)
    finally:
        lock.release()


def test_identity_locks_are_private_and_removed_when_released(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite"
    lock = JobLock(journal)
    info = os.stat(journal)
    identity = _lock_folder() / f"journal-{info.st_dev}-{info.st_ino}.lock"
    assert identity.exists() and identity.stat().st_mode & 0o077 == 0
    assert _lock_folder().stat().st_mode & 0o077 == 0
    lock.release()
    assert not identity.exists()
    JobLock(journal).release()  # and taken again


def test_a_lock_folder_of_another_kind_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    folder = runtime / f"posthog-async-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # writable by others: they could plant or remove locks
    with pytest.raises(Exception, match="not a private folder"):
        JobLock(tmp_path / "j.sqlite")
    assert not (tmp_path / "j.sqlite.lock").exists() or not _holds(tmp_path / "j.sqlite.lock")


def _holds(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` (a new lock would be refused)."""
    import fcntl

    with open(path, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False
