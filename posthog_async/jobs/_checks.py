"""The journal's record of verification: for every person (or id) a deletion job deleted, queued
or kept, what the last ``verify`` found, and when.

One row per target, keyed by project: a person the job named by uuid (``kind = 'person'``), or,
where the job never learnt the uuid (``--no-resolve``, ``unresolved`` ids), the id itself. Each
check is recorded as it completes, one call's worth in one transaction, so a verification killed
at any point resumes where it was, and a state is written only as judged when it was checked:

- ``person_state``: ``gone`` (lookups no longer find it: ``gone_at``), ``still_queued`` (found,
  but PostHog queued its deletion less than the grace period ago), ``found_again`` (found after
  the job deleted it, or after the grace period), ``check_failed`` (the lookup failed);
- ``events_state`` (when the job asked for ``delete_events``): ``completed`` (with PostHog's
  ``delete_verified_at``), ``pending``, ``missing`` (no row yet, before the first batch after the
  request), ``missing_after_batch``, ``unverifiable`` (an id whose person the job never learnt,
  so PostHog's rows, keyed by person uuid, cannot be matched: ``--no-resolve``, or ``unresolved``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ._lock import utc_now
from ._tally import PERSON

__all__ = ["CheckRecords", "PERSON_STATES", "EVENT_STATES", "WRONG", "PENDING"]

PERSON_STATES = ("gone", "still_queued", "found_again", "check_failed")
EVENT_STATES = ("completed", "pending", "missing", "missing_after_batch", "unverifiable")
#: States that make a verification fail (exit status 1) ...
WRONG = {"found_again", "check_failed", "missing_after_batch", "unverifiable"}
#: ... and those that leave it pending at PostHog (exit status 3).
PENDING = {"still_queued", "pending", "missing"}
_SETTLED = "('deleted', 'queued', 'kept', 'unresolved')"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


class CheckRecords:
    """The ``checks`` table, for :class:`~posthog_async.jobs._journal.Journal`."""

    _db: sqlite3.Connection
    _mutex: threading.Lock

    def add_targets(self, *, delete_events: bool, keep_person: bool = False) -> int:
        """Every person (or id) the job has settled since the last call becomes a target; the
        ids the job never named a person for cannot be matched with PostHog's event rows. A
        job that kept its persons has only ``kept`` targets (an unresolved id named a kept
        person, or nobody): none is looked up."""
        by_person = f"{PERSON} IS NOT NULL AND ids.outcome != 'unresolved'"
        outcome = "'kept'" if keep_person else "MIN(ids.outcome)"
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute(
                "INSERT OR IGNORE INTO checks (project, kind, target, outcome, requested_at) "
                f"SELECT ids.project, CASE WHEN {by_person} THEN 'person' ELSE ids.kind END, "
                f"CASE WHEN {by_person} THEN {PERSON} ELSE ids.id END, {outcome}, "
                "MIN(chunks.updated_at) FROM ids JOIN chunks ON chunks.chunk = ids.chunk "
                f"WHERE ids.outcome IN {_SETTLED} GROUP BY 1, 2, 3")
            added = cursor.rowcount
            if delete_events:
                db.execute("UPDATE checks SET events_state = 'unverifiable' WHERE kind != 'person' "
                           "AND events_state IS NULL")
            db.execute("COMMIT")
        return added

    def person_targets(self, project: int) -> dict[str, list[str]]:
        """Per kind (``person``, ``distinct_ids``, ``ids``), the targets still to prove gone
        (kept persons are not: the job kept them on purpose)."""
        rows = self._db.execute(
            "SELECT kind, target FROM checks WHERE project = ? AND outcome != 'kept' "
            "AND person_state IS NOT 'gone' ORDER BY kind, target", (project,))
        found: dict[str, list[str]] = {}
        for kind, target in rows:
            found.setdefault(kind, []).append(target)
        return found

    def event_targets(self, project: int) -> list[str]:
        """Persons whose event deletion is not yet proven ``completed``."""
        rows = self._db.execute(
            "SELECT target FROM checks WHERE project = ? AND kind = 'person' "
            "AND outcome != 'unresolved' AND events_state IS NOT 'completed' "
            "AND events_state IS NOT 'unverifiable' ORDER BY target", (project,))
        return [row[0] for row in rows]

    def record_check(self, project: int, kind: str, *, gone: Iterable[str],
                      found: dict[str, str], failed: Iterable[str], grace_cutoff: str) -> None:
        """One lookup call's answer: ``found`` maps a target to the uuid of whoever holds it
        now. A deletion that was queued (or may have been: ``unresolved``) and requested after
        ``grace_cutoff`` is still queued, not wrong."""
        now = utc_now()
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            key = "project = ? AND kind = ? AND target = ?"
            db.executemany(
                "UPDATE checks SET person_state = 'gone', person_checked_at = ?, found_as = NULL, "
                f"gone_at = CASE WHEN person_state IS 'gone' THEN gone_at ELSE ? END WHERE {key}",
                [(now, now, project, kind, t) for t in gone])
            db.executemany(
                "UPDATE checks SET person_state = CASE WHEN outcome IN ('queued', 'unresolved') "
                "AND requested_at > ? THEN 'still_queued' ELSE 'found_again' END, "
                f"person_checked_at = ?, found_as = ?, gone_at = NULL WHERE {key}",
                [(grace_cutoff, now, uuid, project, kind, t) for t, uuid in found.items()])
            db.executemany(
                "UPDATE checks SET person_state = 'check_failed', person_checked_at = ? "
                f"WHERE {key} AND person_state IS NOT 'gone'",
                [(now, project, kind, t) for t in failed])
            db.execute("COMMIT")

    def record_event_rows(self, project: int, rows: Iterable[tuple[str, str | None,
                                                                   datetime | None,
                                                                   datetime | None]]) -> None:
        """PostHog's ``deletion_status`` rows: (person uuid, status, created_at,
        delete_verified_at)."""
        now = utc_now()
        values = [("completed" if status == "completed" else "pending", now, _iso(created),
                   _iso(verified), project, uuid.lower()) for uuid, status, created, verified in rows]
        with self._mutex:
            self._db.executemany(
                "UPDATE checks SET events_state = ?, events_checked_at = ?, row_created_at = ?, "
                "delete_verified_at = ? WHERE project = ? AND kind = 'person' AND target = ?",
                values)

    def record_missing_rows(self, project: int, uuids: Iterable[str],
                            batch_ran: Callable[[str | None], bool]) -> None:
        """Persons with no row at all: ``missing_after_batch`` once PostHog's first batch after
        the request has run (``batch_ran(requested_at)``), else ``missing`` (still to come)."""
        now = utc_now()
        wanted = list(uuids)
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for uuid in wanted:
                row = db.execute("SELECT requested_at FROM checks WHERE project = ? AND "
                                 "kind = 'person' AND target = ?", (project, uuid)).fetchone()
                state = "missing_after_batch" if row is None or batch_ran(row[0]) else "missing"
                db.execute("UPDATE checks SET events_state = ?, events_checked_at = ? "
                           "WHERE project = ? AND kind = 'person' AND target = ?",
                           (state, now, project, uuid))
            db.execute("COMMIT")

    def check_counts(self, project: int | None = None) -> dict[str, Any]:
        """What the checks hold (in ``project``, or all): targets per state, and when."""
        where, args = ("", ()) if project is None else (" AND project = ?", (project,))
        db = self._db
        persons = dict(db.execute(
            "SELECT COALESCE(person_state, 'unchecked'), COUNT(*) FROM checks "
            f"WHERE outcome != 'kept'{where} GROUP BY 1", args).fetchall())
        events = dict(db.execute(
            "SELECT COALESCE(events_state, 'unchecked'), COUNT(*) FROM checks "
            f"WHERE kind = 'person' AND outcome != 'unresolved'{where} GROUP BY 1", args).fetchall())
        unverifiable = db.execute(
            f"SELECT COUNT(*) FROM checks WHERE kind != 'person' AND events_state = "
            f"'unverifiable'{where}", args).fetchone()[0]
        if unverifiable:
            events["unverifiable"] = events.get("unverifiable", 0) + unverifiable
        times = db.execute(
            "SELECT MIN(gone_at), MAX(gone_at), MIN(delete_verified_at), MAX(delete_verified_at), "
            "MAX(person_checked_at), MAX(events_checked_at), COUNT(*), "
            f"COUNT(CASE WHEN outcome = 'kept' THEN 1 END) FROM checks WHERE 1{where}",
            args).fetchone()
        keys = ("first_gone_at", "last_gone_at", "first_events_verified_at",
                "last_events_verified_at", "persons_checked_at", "events_checked_at",
                "targets", "kept")
        return {"persons": persons, "events": events, **dict(zip(keys, times))}

    def wrong_examples(self, limit: int = 20) -> list[dict[str, Any]]:
        """The first targets whose state fails the verification, for the summary."""
        marks = ",".join("?" * len(WRONG))
        rows = self._db.execute(
            "SELECT project, kind, target, outcome, person_state, found_as, events_state FROM "
            f"checks WHERE person_state IN ({marks}) OR events_state IN ({marks}) "
            "ORDER BY project, kind, target LIMIT ?", (*WRONG, *WRONG, limit))
        keys = ("project", "kind", "target", "outcome", "person_check", "found_as", "events")
        return [dict(zip(keys, row)) for row in rows]
