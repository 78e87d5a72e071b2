"""The journal's record of verification: for every person (or id) a deletion job deleted, queued
or kept, what the last ``verify`` found, and when.

One row per target, keyed by project: a person the job named by uuid (``kind = 'person'``), or,
where the job never learnt the uuid (``--no-resolve``, ``unresolved`` ids), the id itself. Each
check is recorded as it completes, one call's worth in one transaction, so a verification killed
at any point resumes where it was, and a state is written only as judged when it was checked:

- ``person_state``: ``gone`` (lookups no longer find it: ``gone_at``), ``still_queued`` (found,
  but PostHog queued its deletion less than the grace period ago), ``not_deleted`` (a queued
  deletion never carried out: still found after the grace period, never seen gone),
  ``found_again`` (found after PostHog said it deleted it, or after a check had seen it gone),
  ``check_failed`` (the lookup failed: a target once gone is then not proven gone now);
- ``events_state`` (when the job asked for ``delete_events``): ``completed`` (with PostHog's
  ``delete_verified_at``), ``pending``, ``missing`` (no row yet, before the first batch after the
  request), ``missing_after_batch``, ``old_row`` / ``old_row_after_batch`` (the only rows are
  older than the job: an earlier erasure of the same person, whose proof is not this job's),
  ``unverifiable`` (an id whose person the job never learnt,
  so PostHog's rows, keyed by person uuid, cannot be matched: ``--no-resolve``, or ``unresolved``),
  ``check_failed`` (PostHog's status rows could not be read: a 5xx after the job's patience).

Every ``verify`` run looks every target up again (a person proven gone may be back: the same
uuid, or a new person under an erased distinct id); only its later ``--wait`` passes skip what
the run has already seen gone. Completed event rows are PostHog's own record and are not read
again.

The ``id_checks`` table holds, for every distinct id the job erased (deleted or queued) through
a person it looked up, whom that id names now: nobody (``free``), the same person (``same``:
that person's own check says found again or still queued), another person (``reused``: PostHog
made a new person under the erased id, e.g. because events kept arriving for it), or
``check_failed``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ._lock import utc_now
from ._tally import PERSON

__all__ = ["CheckRecords", "PERSON_STATES", "EVENT_STATES", "ID_STATES", "WRONG", "PENDING"]

PERSON_STATES = ("gone", "still_queued", "not_deleted", "found_again", "check_failed")
EVENT_STATES = ("completed", "pending", "missing", "missing_after_batch", "old_row",
                "old_row_after_batch", "unverifiable", "check_failed")
ID_STATES = ("free", "same", "reused", "check_failed")
#: States that make a verification fail (exit status 1) ...
WRONG = {"found_again", "not_deleted", "check_failed", "missing_after_batch",
         "old_row_after_batch", "unverifiable"}
#: ... of a requested distinct id (``id_checks``).
WRONG_IDS = {"reused", "check_failed"}
#: ... and those that leave it pending at PostHog (exit status 3).
PENDING = {"still_queued", "pending", "missing", "old_row"}
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
        job that kept its persons has ``kept`` targets (an unresolved id named a kept person, or
        nobody), not looked up, except the persons it reports deleted all the same (PostHog's
        oldest ``bulk_delete`` has no ``keep_person``): those are looked up like any other."""
        by_person = f"{PERSON} IS NOT NULL AND ids.outcome != 'unresolved'"
        outcome = ("CASE WHEN MIN(ids.outcome) IN ('deleted', 'queued') THEN MIN(ids.outcome) "
                   "ELSE 'kept' END" if keep_person else "MIN(ids.outcome)")
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
            db.execute(
                "INSERT OR IGNORE INTO id_checks (project, id, person, outcome) "
                "SELECT project, id, person, outcome FROM ids WHERE kind = 'distinct_ids' "
                "AND person IS NOT NULL AND outcome IN ('deleted', 'queued')")
            if delete_events:
                db.execute("UPDATE checks SET events_state = 'unverifiable' WHERE kind != 'person' "
                           "AND events_state IS NULL")
            db.execute("COMMIT")
        return added

    def person_targets(self, project: int, *, again: bool = True) -> dict[str, list[str]]:
        """Per kind (``person``, ``distinct_ids``, ``ids``), the targets to look up (kept
        persons are not: the job kept them on purpose): all of them (``again``: a person proven
        gone may be back), else only those not seen gone."""
        unproven = "" if again else " AND person_state IS NOT 'gone'"
        rows = self._db.execute(
            "SELECT kind, target FROM checks WHERE project = ? AND outcome != 'kept'"
            f"{unproven} ORDER BY kind, target", (project,))
        found: dict[str, list[str]] = {}
        for kind, target in rows:
            found.setdefault(kind, []).append(target)
        return found

    def id_targets(self, project: int, *, again: bool = True) -> list[str]:
        """The erased distinct ids to look up (all, or, without ``again``, those not free)."""
        unproven = "" if again else " AND state IS NOT 'free'"
        rows = self._db.execute(f"SELECT id FROM id_checks WHERE project = ?{unproven} "
                                "ORDER BY id", (project,))
        return [row[0] for row in rows]

    def record_id_check(self, project: int, *, found: dict[str, tuple[str, str | None]],
                        free: Iterable[str], failed: Iterable[str]) -> None:
        """One ``batch_by_distinct_ids`` call's answer about erased ids: ``found`` maps an id
        to (uuid, created_at) of whoever holds it now."""
        now = utc_now()
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.executemany("UPDATE id_checks SET state = 'free', found_as = NULL, "
                           "found_created_at = NULL, checked_at = ? WHERE project = ? AND id = ?",
                           [(now, project, key) for key in free])
            db.executemany(
                "UPDATE id_checks SET state = CASE WHEN lower(person) = lower(?) THEN 'same' "
                "ELSE 'reused' END, found_as = ?, found_created_at = ?, checked_at = ? "
                "WHERE project = ? AND id = ?",
                [(uuid, uuid, created, now, project, key)
                 for key, (uuid, created) in found.items()])
            db.executemany("UPDATE id_checks SET state = 'check_failed', checked_at = ? "
                           "WHERE project = ? AND id = ?", [(now, project, key) for key in failed])
            db.execute("COMMIT")

    def mark_events_unread(self, project: int) -> int:
        """PostHog's status rows of ``project`` could not be read: every event deletion not
        yet proven ``completed`` is ``check_failed`` (not known now). Returns how many."""
        with self._mutex:
            return self._db.execute(
                "UPDATE checks SET events_state = 'check_failed', events_checked_at = ? "
                "WHERE project = ? AND kind = 'person' AND outcome != 'unresolved' "
                "AND events_state IS NOT 'completed' AND events_state IS NOT 'unverifiable'",
                (utc_now(), project)).rowcount

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
        ``grace_cutoff`` is still queued, not wrong; after it, never seen gone, it was not
        carried out (``not_deleted``); a target seen gone before is ``found_again``. A failed
        lookup leaves nobody proven gone now (``check_failed``, ``gone_at`` kept)."""
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
                "UPDATE checks SET person_state = CASE "
                "WHEN person_state IN ('gone', 'found_again') OR gone_at IS NOT NULL "
                "THEN 'found_again' "
                "WHEN outcome NOT IN ('queued', 'unresolved') THEN 'found_again' "
                "WHEN requested_at > ? THEN 'still_queued' ELSE 'not_deleted' END, "
                f"person_checked_at = ?, found_as = ? WHERE {key}",
                [(grace_cutoff, now, uuid, project, kind, t) for t, uuid in found.items()])
            db.executemany(
                "UPDATE checks SET person_state = 'check_failed', person_checked_at = ? "
                f"WHERE {key}",
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
                            batch_ran: Callable[[str | None], bool],
                            older: dict[str, str | None] | None = None) -> None:
        """Persons with no row of this job's request: ``missing_after_batch`` once PostHog's
        first batch after the request has run (``batch_ran(requested_at)``), else ``missing``
        (still to come); ``older``: those whose only rows predate the job (an earlier
        erasure's, created then: ``old_row`` / ``old_row_after_batch``)."""
        now = utc_now()
        wanted = list(uuids)
        older = older or {}
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for uuid in wanted:
                row = db.execute("SELECT requested_at FROM checks WHERE project = ? AND "
                                 "kind = 'person' AND target = ?", (project, uuid)).fetchone()
                state = "missing_after_batch" if row is None or batch_ran(row[0]) else "missing"
                if uuid in older:
                    state = state.replace("missing", "old_row")
                db.execute("UPDATE checks SET events_state = ?, events_checked_at = ?, "
                           "row_created_at = ?, delete_verified_at = NULL "
                           "WHERE project = ? AND kind = 'person' AND target = ?",
                           (state, now, older.get(uuid), project, uuid))
            db.execute("COMMIT")

    def check_counts(self, project: int | None = None) -> dict[str, Any]:
        """What the checks hold (in ``project``, or all): targets per state, the erased
        distinct ids per state (``distinct_ids``), and when. ``events`` only where the job
        asked for ``delete_events`` (no other job has event deletions to check)."""
        where, args = ("", ()) if project is None else (" AND project = ?", (project,))
        db = self._db
        persons = dict(db.execute(
            "SELECT COALESCE(person_state, 'unchecked'), COUNT(*) FROM checks "
            f"WHERE outcome != 'kept'{where} GROUP BY 1", args).fetchall())
        events: dict[str, int] = {}
        options = db.execute("SELECT value FROM meta WHERE key = 'options'").fetchone()
        if options is None or json.loads(options[0]).get("delete_events"):
            events = dict(db.execute(
                "SELECT COALESCE(events_state, 'unchecked'), COUNT(*) FROM checks WHERE "
                f"kind = 'person' AND outcome != 'unresolved'{where} GROUP BY 1", args).fetchall())
        unverifiable = db.execute(
            f"SELECT COUNT(*) FROM checks WHERE kind != 'person' AND events_state = "
            f"'unverifiable'{where}", args).fetchone()[0]
        if unverifiable:
            events["unverifiable"] = events.get("unverifiable", 0) + unverifiable
        distinct_ids = dict(db.execute(
            "SELECT COALESCE(state, 'unchecked'), COUNT(*) FROM id_checks "
            f"WHERE 1{where} GROUP BY 1", args).fetchall())
        times = db.execute(
            "SELECT MIN(CASE WHEN person_state = 'gone' THEN gone_at END), "
            "MAX(CASE WHEN person_state = 'gone' THEN gone_at END), MIN(delete_verified_at), "
            "MAX(delete_verified_at), MAX(person_checked_at), MAX(events_checked_at), COUNT(*), "
            "COUNT(CASE WHEN outcome = 'kept' THEN 1 END), "
            "MIN(CASE WHEN outcome != 'kept' THEN COALESCE(person_checked_at, '') END) "
            f"FROM checks WHERE 1{where}", args).fetchone()
        keys = ("first_gone_at", "last_gone_at", "first_events_verified_at",
                "last_events_verified_at", "persons_checked_at", "events_checked_at",
                "targets", "kept", "oldest_person_check_at")
        counts = {"persons": persons, "events": events, "distinct_ids": distinct_ids,
                  **dict(zip(keys, times))}
        counts["oldest_person_check_at"] = counts["oldest_person_check_at"] or None
        return counts

    def wrong_examples(self, limit: int = 20) -> list[dict[str, Any]]:
        """The first targets whose state fails the verification, for the summary."""
        marks = ",".join("?" * len(WRONG))
        rows = self._db.execute(
            "SELECT project, kind, target, outcome, person_state, found_as, events_state FROM "
            f"checks WHERE person_state IN ({marks}) OR events_state IN ({marks}) "
            "ORDER BY project, kind, target LIMIT ?", (*WRONG, *WRONG, limit))
        keys = ("project", "kind", "target", "outcome", "person_check", "found_as", "events")
        found = [dict(zip(keys, row)) for row in rows]
        reused = self._db.execute(
            "SELECT project, 'distinct_ids', id, outcome, CASE state WHEN 'reused' THEN "
            "'names another person' ELSE 'lookup failed' END, found_as, NULL FROM id_checks "
            "WHERE state IN ('reused', 'check_failed') ORDER BY project, id LIMIT ?", (limit,))
        found += [dict(zip(keys, row)) for row in reused]
        return found[:limit]
