"""A job's counts, read from its journal: what the report (and any later check) is built from.

Everything here is derived from the journal's rows (one per id, one per chunk), so it can be
recomputed at any time and never disagrees with the per-id proof. Persons are counted once each,
by the person each id named (a lookup's uuid, or the UUID itself): a person is *deleted* if any
of its ids was confirmed deleted, else *queued* if any was queued (never both), and *found* if
PostHog found it at all (deleted, queued, kept, or failed by PostHog).

A person belongs to one project: persons are counted by (project, uuid), and each function takes
an optional ``project`` to count one project's rows only (the report's per-project sections).
An id of a project the key could not reach that was never settled is ``not_covered``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import _constants as C
from .._chunk_result import MAYBE_DELETED, POSTHOG_FAILED

__all__ = ["chunk_sums", "distinct_persons", "wide_persons", "maybe_deleted", "may_double_count",
           "failed_chunks", "rejects", "unique_ids", "OUTCOME", "PERSON"]

#: The person an id named: its lookup's uuid, or the id itself for a UUID.
PERSON = "COALESCE(ids.person, CASE WHEN ids.kind = 'ids' THEN ids.id END)"
#: An id whose person PostHog found.
FOUND = (f"(ids.outcome IN ('deleted', 'queued', 'kept') OR (ids.outcome = 'failed' "
         f"AND ids.reason LIKE '{POSTHOG_FAILED}%'))")
#: An id's outcome as the report states it: an unsettled id of a project not covered is
#: ``not_covered``, any other unsettled one ``pending``.
OUTCOME = ("CASE WHEN ids.outcome IS NULL AND (SELECT state FROM projects AS p "
           "WHERE p.project = ids.project) = 'not_covered' THEN 'not_covered' "
           "ELSE COALESCE(ids.outcome, 'pending') END")


def _where(project: int | None, table: str, glue: str = "WHERE") -> tuple[str, tuple[int, ...]]:
    return ("", ()) if project is None else (f" {glue} {table}.project = ?", (project,))


def chunk_sums(db: sqlite3.Connection, project: int | None = None) -> dict[str, Any]:
    """Chunk states, ids per outcome, and PostHog's per-call counts summed over chunks.

    The calls, over every run of the job:

    - ``delete_calls``: ``bulk_delete`` calls PostHog may have acted on: answered 2xx, or whose
      answer was lost. Calls PostHog refused (a 429, another 4xx), calls that never reached it
      (a refused connection, the client's own rate limit, a stop while they waited) are not.
    - ``lost_answers``: of those, the calls whose outcome was not heard: a dropped connection
      after the send, a 5xx, a 2xx that is not PostHog's answer, a run that died with the call
      out (it may have left). Their chunks are looked up before anything is sent again.
    - ``resent_chunks``: chunks PostHog received more than one call of: sent again after a lost
      answer (a chunk a lookup settled after its lost answer is not re-sent, and not counted).
    """
    on_chunks, args = _where(project, "chunks")
    on_ids, _ = _where(project, "ids")
    states = dict(db.execute(f"SELECT state, COUNT(*) FROM chunks{on_chunks} GROUP BY state",
                             args).fetchall())
    gaps = {row[0] for row in db.execute(
        "SELECT project FROM projects WHERE state = 'not_covered'")}
    outcomes: dict[str, int] = {}
    for pid, outcome, count in db.execute(  # grouped first: no per-row lookup of the project
            f"SELECT project, outcome, COUNT(*) FROM ids{on_ids} GROUP BY 1, 2", args):
        name = outcome or ("not_covered" if pid in gaps else "pending")
        outcomes[name] = outcomes.get(name, 0) + count
    sums = db.execute(
        "SELECT COALESCE(SUM(persons_found), 0), COALESCE(SUM(persons_deleted), 0), "
        "COALESCE(SUM(persons_queued), 0), "
        "COALESCE(SUM(CASE WHEN events_queued THEN persons_found END), 0), "
        "COALESCE(SUM(CASE WHEN recordings_queued THEN persons_found END), 0), "
        "COALESCE(SUM(sends), 0), COALESCE(SUM(lost_answers), 0), "
        "COUNT(CASE WHEN sends > 1 THEN 1 END), "
        "COUNT(CASE WHEN state = 'done' AND persons_found IS NULL THEN 1 END), "
        "COUNT(CASE WHEN state = 'done' AND NOT exact THEN 1 END) "
        f"FROM chunks{on_chunks}", args).fetchone()
    keys = ("persons_found", "persons_deleted", "persons_queued", "events_queued_persons",
            "recordings_queued_persons", "delete_calls", "lost_answers", "resent_chunks",
            "chunks_without_counts", "inexact_chunks")
    return {"chunk_states": states, "outcomes": outcomes, **dict(zip(keys, sums))}


def distinct_persons(db: sqlite3.Connection, project: int | None = None) -> dict[str, int]:
    """Persons counted once each, however many of their ids (in however many chunks) were sent;
    events and recordings queued for a person if any call that found them queued them. Exact
    when chunks were looked up."""
    on_ids, args = _where(project, "ids", "AND")
    row = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(d), 0), COALESCE(SUM(q AND NOT d), 0), "
        "COALESCE(SUM(e), 0), COALESCE(SUM(r), 0) FROM ("
        f"  SELECT {PERSON} AS p, MAX(ids.outcome = 'deleted') AS d, "
        "   MAX(ids.outcome = 'queued') AS q, MAX(COALESCE(chunks.events_queued, 0)) AS e, "
        "   MAX(COALESCE(chunks.recordings_queued, 0)) AS r "
        f"  FROM ids JOIN chunks ON chunks.chunk = ids.chunk WHERE {FOUND}{on_ids} "
        "  GROUP BY ids.project, 1) WHERE p IS NOT NULL", args).fetchone()
    return dict(zip(("persons_found", "persons_deleted", "persons_queued", "events_queued_persons",
                     "recordings_queued_persons"), row))


def wide_persons(db: sqlite3.Connection) -> int:
    """Persons this job deleted whose lookups showed 10 or more distinct ids: PostHog's batch
    lookup shows at most 10 of a person's ids, so some of their ids may be unknown here."""
    row = db.execute(
        "SELECT COUNT(*) FROM (SELECT project, person FROM aliases GROUP BY project, person "
        "HAVING COUNT(*) >= ?) AS wide WHERE (project, person) IN (SELECT project, person "
        "FROM ids WHERE outcome IN ('deleted', 'queued'))",
        (C.MAX_LOOKUP_DISTINCT_IDS,)).fetchone()
    return int(row[0])


def maybe_deleted(db: sqlite3.Connection, reason: str = MAYBE_DELETED) -> int:
    """Ids a call without lookups found nobody for after the job had deleted persons through
    other ids (see ``RunLedger.proves_absent``); with ``reason=MAYBE_WIDE``, ids a lookup found
    nobody for after the job had deleted a person with 10 or more distinct ids."""
    row = db.execute("SELECT COUNT(*) FROM ids WHERE outcome = 'unresolved' AND reason = ?",
                     (reason,)).fetchone()
    return int(row[0])


def may_double_count(db: sqlite3.Connection) -> bool:
    """Without lookups, may PostHog's per-call counts, summed, count one person twice?

    Only if a person some call found stayed findable (its deletion queued, kept, or failed) and
    another call found persons too, at least one of them by distinct id (a UUID names one
    person, and a job sends each UUID once). A person a call deleted is found by no later call.
    """
    rows = db.execute(
        "SELECT COUNT(CASE WHEN persons_found > COALESCE(persons_deleted, 0) THEN 1 END), "
        "COUNT(CASE WHEN persons_found > 0 THEN 1 END), "
        "COUNT(CASE WHEN persons_found > 0 AND kind = 'distinct_ids' THEN 1 END) "
        "FROM chunks GROUP BY project").fetchall()  # calls of one project find only its persons
    return any(stayed and finding >= 2 and by_name for stayed, finding, by_name in rows)


def failed_chunks(db: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT chunk, kind, size, error, sends, project FROM chunks WHERE state = 'failed' "
        "ORDER BY chunk LIMIT ?", (limit,))
    return [dict(zip(("chunk", "kind", "size", "error", "sends", "project"), r)) for r in rows]


def unique_ids(db: sqlite3.Connection, ids_in_projects: int) -> int:
    """Unique ids of the input: each is in every project of the job, so the (project, id)
    pairs over the projects that hold ids (read from the chunks: no scan of the ids)."""
    row = db.execute("SELECT COUNT(DISTINCT project) FROM chunks").fetchone()
    return ids_in_projects // max(1, int(row[0]))


def rejects(db: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    rows = db.execute("SELECT kind, line, value, reason FROM rejects LIMIT ?", (limit,))
    return [dict(zip(("kind", "line", "value", "reason"), r)) for r in rows]
