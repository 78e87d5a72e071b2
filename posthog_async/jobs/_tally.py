"""A job's counts, read from its journal: what the report (and any later check) is built from.

Everything here is derived from the journal's rows (one per id, one per chunk), so it can be
recomputed at any time and never disagrees with the per-id proof. Persons are counted once each,
by the person each id named (a lookup's uuid, or the UUID itself): a person is *deleted* if any
of its ids was confirmed deleted, else *queued* if any was queued (never both), and *found* if
PostHog found it at all (deleted, queued, kept, or failed by PostHog).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import _constants as C
from .._chunk_result import MAYBE_DELETED, POSTHOG_FAILED

__all__ = ["chunk_sums", "distinct_persons", "wide_persons", "maybe_deleted", "may_double_count",
           "failed_chunks", "rejects"]

#: The person an id named: its lookup's uuid, or the id itself for a UUID.
PERSON = "COALESCE(ids.person, CASE WHEN ids.kind = 'ids' THEN ids.id END)"
#: An id whose person PostHog found.
FOUND = (f"(ids.outcome IN ('deleted', 'queued', 'kept') OR (ids.outcome = 'failed' "
         f"AND ids.reason LIKE '{POSTHOG_FAILED}%'))")


def chunk_sums(db: sqlite3.Connection) -> dict[str, Any]:
    """Chunk states, ids per outcome, and PostHog's per-call counts summed over chunks."""
    states = dict(db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())
    outcomes = dict(db.execute(
        "SELECT COALESCE(outcome, 'pending'), COUNT(*) FROM ids GROUP BY 1").fetchall())
    sums = db.execute(
        "SELECT COALESCE(SUM(persons_found), 0), COALESCE(SUM(persons_deleted), 0), "
        "COALESCE(SUM(persons_queued), 0), "
        "COALESCE(SUM(CASE WHEN events_queued THEN persons_found END), 0), "
        "COALESCE(SUM(CASE WHEN recordings_queued THEN persons_found END), 0), "
        "COALESCE(SUM(sends), 0), COALESCE(SUM(lost_answers), 0), "
        "COUNT(CASE WHEN lost_answers > 0 THEN 1 END), "
        "COUNT(CASE WHEN state = 'done' AND persons_found IS NULL THEN 1 END), "
        "COUNT(CASE WHEN state = 'done' AND NOT exact THEN 1 END) "
        "FROM chunks").fetchone()
    keys = ("persons_found", "persons_deleted", "persons_queued", "events_queued_persons",
            "recordings_queued_persons", "delete_calls", "lost_answers", "resent_chunks",
            "chunks_without_counts", "inexact_chunks")
    return {"chunk_states": states, "outcomes": outcomes, **dict(zip(keys, sums))}


def distinct_persons(db: sqlite3.Connection) -> dict[str, int]:
    """Persons counted once each, however many of their ids (in however many chunks) were sent;
    events and recordings queued for a person if any call that found them queued them. Exact
    when chunks were looked up."""
    row = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(d), 0), COALESCE(SUM(q AND NOT d), 0), "
        "COALESCE(SUM(e), 0), COALESCE(SUM(r), 0) FROM ("
        f"  SELECT {PERSON} AS p, MAX(ids.outcome = 'deleted') AS d, "
        "   MAX(ids.outcome = 'queued') AS q, MAX(COALESCE(chunks.events_queued, 0)) AS e, "
        "   MAX(COALESCE(chunks.recordings_queued, 0)) AS r "
        f"  FROM ids JOIN chunks ON chunks.chunk = ids.chunk WHERE {FOUND} GROUP BY 1"
        ") WHERE p IS NOT NULL").fetchone()
    return dict(zip(("persons_found", "persons_deleted", "persons_queued", "events_queued_persons",
                     "recordings_queued_persons"), row))


def wide_persons(db: sqlite3.Connection) -> int:
    """Persons this job deleted whose lookups showed 10 or more distinct ids: PostHog's batch
    lookup shows at most 10 of a person's ids, so some of their ids may be unknown here."""
    row = db.execute(
        "SELECT COUNT(*) FROM (SELECT person FROM aliases GROUP BY person "
        "HAVING COUNT(*) >= ?) AS wide WHERE person IN (SELECT person FROM ids "
        "WHERE outcome IN ('deleted', 'queued'))", (C.MAX_LOOKUP_DISTINCT_IDS,)).fetchone()
    return int(row[0])


def maybe_deleted(db: sqlite3.Connection) -> int:
    """Ids a call without lookups found nobody for after the job had deleted persons through
    other ids (see ``RunLedger.not_found_is_exact``)."""
    row = db.execute("SELECT COUNT(*) FROM ids WHERE outcome = 'unresolved' AND reason = ?",
                     (MAYBE_DELETED,)).fetchone()
    return int(row[0])


def may_double_count(db: sqlite3.Connection) -> bool:
    """Without lookups, may PostHog's per-call counts, summed, count one person twice?

    Only if a person some call found stayed findable (its deletion queued, kept, or failed) and
    another call found persons too, at least one of them by distinct id (a UUID names one
    person, and a job sends each UUID once). A person a call deleted is found by no later call.
    """
    stayed, finding, by_name = db.execute(
        "SELECT COUNT(CASE WHEN persons_found > COALESCE(persons_deleted, 0) THEN 1 END), "
        "COUNT(CASE WHEN persons_found > 0 THEN 1 END), "
        "COUNT(CASE WHEN persons_found > 0 AND kind = 'distinct_ids' THEN 1 END) "
        "FROM chunks").fetchone()
    return bool(stayed and finding >= 2 and by_name)


def failed_chunks(db: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT chunk, kind, size, error, sends FROM chunks WHERE state = 'failed' "
        "ORDER BY chunk LIMIT ?", (limit,))
    return [dict(zip(("chunk", "kind", "size", "error", "sends"), r)) for r in rows]


def rejects(db: sqlite3.Connection, limit: int = 1000) -> list[dict[str, Any]]:
    rows = db.execute("SELECT kind, line, value, reason FROM rejects LIMIT ?", (limit,))
    return [dict(zip(("kind", "line", "value", "reason"), r)) for r in rows]
