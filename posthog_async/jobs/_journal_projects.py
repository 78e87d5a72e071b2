"""The journal's record of a job's projects: which it covers, which the key could not reach (with
PostHog's status and message), which were left out on purpose, and which PostHog is deleting.

Recorded when the job starts and updated as it learns (a project refused in the middle of a run
is marked not covered there and then), so the report says what was true, and a resume can never
silently switch to other projects.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ._lock import utc_now
from ._schema import UNRECORDED_PROJECT

__all__ = ["JobProject", "ProjectRecords", "ProjectState"]

ProjectState = Literal["covered", "not_covered", "excluded"]


@dataclass(frozen=True)
class JobProject:
    """One project of a job: ``covered`` (the job works in it), ``not_covered`` (the key cannot
    reach it: ``status_code`` and ``message`` are PostHog's) or ``excluded`` (left out on
    purpose). ``is_pending_deletion`` is PostHog's flag (``None``: not read)."""

    id: int
    name: str | None = None
    organization: str | None = None
    is_pending_deletion: bool | None = None
    state: ProjectState = "covered"
    status_code: int | None = None
    message: str | None = None
    checked_at: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "organization": self.organization,
                "is_pending_deletion": self.is_pending_deletion, "state": self.state,
                "status_code": self.status_code, "message": self.message,
                "checked_at": self.checked_at}


_COLUMNS = ("project, name, organization, pending_deletion, state, status_code, message, "
            "checked_at")


class ProjectRecords:
    """The ``projects`` table, for :class:`~posthog_async.jobs._journal.Journal`."""

    _db: sqlite3.Connection
    _mutex: threading.Lock

    def job_projects(self) -> list[JobProject]:
        """Every project the journal records, by id."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM projects ORDER BY project").fetchall()
        return [JobProject(pid, name, org, None if pending is None else bool(pending), state,
                           code, message, checked)
                for pid, name, org, pending, state, code, message, checked in rows]

    def record_projects(self, projects: Iterable[JobProject], *, replace: bool = False) -> None:
        """Record (or update) projects, in one transaction; ``replace`` forgets the others (a
        job whose loading never finished starts its project set afresh)."""
        rows = [(p.id, p.name, p.organization, None if p.is_pending_deletion is None
                 else int(p.is_pending_deletion), p.state, p.status_code, p.message,
                 p.checked_at or utc_now()) for p in projects]
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            if replace:
                self._db.execute("DELETE FROM projects")
            self._db.executemany(f"INSERT OR REPLACE INTO projects ({_COLUMNS}) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def mark_not_covered(self, project: int, status_code: int | None, message: str) -> None:
        """The key was refused ``project`` in the middle of a run (403, 404)."""
        with self._mutex:
            self._db.execute("UPDATE projects SET state = 'not_covered', status_code = ?, "
                             "message = ?, checked_at = ? WHERE project = ?",
                             (status_code, message[:2000], utc_now(), project))

    def unrecorded(self) -> bool:
        """Rows upgraded from a journal that did not record its project (formats 3 and 4)."""
        row = self._db.execute("SELECT 1 FROM chunks WHERE project = ? LIMIT 1",
                               (UNRECORDED_PROJECT,)).fetchone()
        return row is not None

    def adopt(self, project: JobProject) -> None:
        """Give an upgraded single-project journal's rows their project, and record it."""
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for table in ("ids", "chunks", "aliases"):
                db.execute(f"UPDATE {table} SET project = ? WHERE project = ?",
                           (project.id, UNRECORDED_PROJECT))
            db.execute("COMMIT")
        self.record_projects([project])
