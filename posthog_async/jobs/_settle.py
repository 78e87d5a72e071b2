"""The journal's settling rules, run once no call is out: what one chunk's answer proves about the
ids of another chunk of the same job, **in the same project**.

A person belongs to one project, so a call in one project can neither delete nor hide a person of
another: every rule here joins chunks, ids and aliases on their project. The same distinct id in
two projects names two persons, each with its own outcome.
"""

from __future__ import annotations

import sqlite3

from .. import _constants as C
from .._chunk_result import MAYBE_DELETED, MAYBE_WIDE

__all__ = ["removed", "unprove_not_found", "unprove_wide", "credit_aliases"]


def removed(c: str) -> str:
    """Chunk ``c`` had a call that may have removed a person: answered so (deleted or queued),
    answered without counts, or unanswered when it may have been processed."""
    return (f"({c}.sends > 0 AND ({c}.state = 'sent' OR {c}.in_flight OR {c}.lost_answers > 0 "
            f"OR ({c}.state = 'done' AND {c}.persons_found IS NULL) "
            f"OR COALESCE({c}.persons_deleted, 0) + COALESCE({c}.persons_queued, 0) > 0))")


def unprove_not_found(db: sqlite3.Connection) -> int:
    """Without lookups: ids "not found" after a call of their project that may have removed
    their person (through another id) was sent become unresolved (``RunLedger.proves_absent``;
    a job sends each id once per project). Returns how many."""
    db.execute(
        "WITH first AS (SELECT project, kind, MIN(first_seq) AS seq FROM chunks AS c "
        f"  WHERE {removed('c')} GROUP BY project, kind) "
        "UPDATE ids SET outcome = 'unresolved', reason = ? WHERE outcome = 'not_found' "
        "AND chunk IN (SELECT b.chunk FROM chunks AS b JOIN first ON first.project = b.project "
        "AND first.seq < b.bound AND (b.kind = 'distinct_ids' OR first.kind = 'distinct_ids'))",
        (MAYBE_DELETED,))
    return int(db.execute("SELECT changes()").fetchone()[0])  # rowcount: -1 after WITH


def unprove_wide(db: sqlite3.Connection) -> int:
    """With lookups, once aliases are credited: distinct ids "not found" by a lookup that ended
    after a call of their project that deleted (or queued) a person whose lookup showed 10
    distinct ids become unresolved. PostHog's lookups show at most 10 of a person's ids, so
    such an id may have been one of the others, deleted with them (``RunLedger.proves_absent``).
    A chunk without a recorded ``bound`` (a journal from before it was kept) counts as looked
    up after every call. Returns how many."""
    db.execute(
        "WITH wide AS (SELECT project, person FROM aliases GROUP BY project, person "
        "  HAVING COUNT(*) >= ?), "
        "first AS (SELECT c.project, MIN(c.first_seq) AS seq FROM ids JOIN wide "
        "  ON wide.project = ids.project AND wide.person = ids.person "
        "  JOIN chunks AS c ON c.chunk = ids.chunk "
        "  WHERE ids.outcome IN ('deleted', 'queued') AND c.first_seq IS NOT NULL "
        "  GROUP BY c.project) "
        "UPDATE ids SET outcome = 'unresolved', reason = ? WHERE outcome = 'not_found' "
        "AND kind = 'distinct_ids' AND chunk IN (SELECT b.chunk FROM chunks AS b JOIN first "
        "ON first.project = b.project AND first.seq < COALESCE(b.bound, 1 << 62))",
        (C.MAX_LOOKUP_DISTINCT_IDS, MAYBE_WIDE))
    return int(db.execute("SELECT changes()").fetchone()[0])


def credit_aliases(db: sqlite3.Connection) -> int:
    """Ids "not found" because this job had already deleted (or queued) their person through
    another of its ids (a distinct id of that person, or its UUID), in the same project, take
    that person's outcome. Returns how many moved."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TEMP TABLE IF NOT EXISTS credit (project INTEGER, kind TEXT, id TEXT, "
                   "person TEXT, outcome TEXT, PRIMARY KEY (project, kind, id))")
        db.execute("DELETE FROM credit")
        # The persons done, keyed: each "not found" id is then a few key lookups (a join on a
        # subquery would scan every person done for each id: quadratic in the job's size).
        db.execute("CREATE TEMP TABLE IF NOT EXISTS credit_done (project INTEGER, person TEXT, "
                   "outcome TEXT, PRIMARY KEY (project, person)) WITHOUT ROWID")
        db.execute("DELETE FROM credit_done")
        db.execute("INSERT INTO credit_done SELECT project, COALESCE(person, CASE WHEN kind = 'ids' "
                   "THEN id END) AS p, MIN(outcome) FROM ids WHERE outcome IN ('deleted', "
                   "'queued') GROUP BY 1, 2 HAVING p IS NOT NULL")
        # CROSS JOIN keeps this order (SQLite's rule): the "not found" ids first.
        db.execute(
            "INSERT OR IGNORE INTO credit SELECT ids.project, ids.kind, ids.id, done.person, "
            "done.outcome FROM ids CROSS JOIN aliases ON aliases.project = ids.project "
            "AND aliases.id = ids.id CROSS JOIN credit_done AS done ON done.project = ids.project "
            "AND done.person = aliases.person "
            "WHERE ids.kind = 'distinct_ids' AND ids.outcome = 'not_found'")
        db.execute(
            "INSERT OR IGNORE INTO credit SELECT ids.project, ids.kind, ids.id, done.person, "
            "done.outcome FROM ids CROSS JOIN credit_done AS done ON done.project = ids.project "
            "AND done.person = ids.id WHERE ids.kind = 'ids' AND ids.outcome = 'not_found'")
        match = "credit.project = ids.project AND credit.kind = ids.kind AND credit.id = ids.id"
        cursor = db.execute(
            f"UPDATE ids SET person = (SELECT person FROM credit WHERE {match}), "
            f"outcome = (SELECT outcome FROM credit WHERE {match}), "
            f"reason = 'its person was ' || (SELECT outcome FROM credit WHERE {match}) "
            "|| ' by this job through another of its ids' "
            f"WHERE outcome = 'not_found' AND EXISTS (SELECT 1 FROM credit WHERE {match})")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return cursor.rowcount
