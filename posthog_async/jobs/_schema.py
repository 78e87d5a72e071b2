"""The journal's format: its tables, its version, and how a journal of an older format is brought
up to this one (in one transaction, the first time this version opens it)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ._lock import JournalError

__all__ = ["SCHEMA_VERSION", "prepare_schema"]

#: 4: chunks gained ``in_flight`` (a ``bulk_delete`` call of it is out), ``first_seq``/``last_seq``
#: (the job-wide numbers of its first and last call) and ``bound`` (the calls sent when its "not
#: found" ids were settled without lookups; see ``RunLedger``).
SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ids (
    kind TEXT NOT NULL, id TEXT NOT NULL, chunk INTEGER NOT NULL,
    person TEXT, outcome TEXT, reason TEXT, PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ids_by_chunk ON ids (chunk);
CREATE TABLE IF NOT EXISTS chunks (
    chunk INTEGER PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', looked_up INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0, persons_found INTEGER, persons_deleted INTEGER,
    persons_queued INTEGER, events_queued INTEGER, recordings_queued INTEGER,
    lost_answers INTEGER NOT NULL DEFAULT 0, exact INTEGER, error TEXT, updated_at TEXT,
    in_flight INTEGER NOT NULL DEFAULT 0, first_seq INTEGER, last_seq INTEGER, bound INTEGER);
CREATE TABLE IF NOT EXISTS aliases (id TEXT PRIMARY KEY, person TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejects (
    kind TEXT NOT NULL, line INTEGER, value TEXT NOT NULL, reason TEXT NOT NULL);
"""


def prepare_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create a new journal's tables, or upgrade an older format; refuse one this version
    cannot read (a newer one, or one too old to upgrade)."""
    try:
        db.executescript(SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = None if row is None else json.loads(row[0])
        if version is None:
            _set_version(db)
        elif version == 3:
            _upgrade_from_3(db)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path} is not a usable journal: {exc}") from None
    if version not in (None, 3, SCHEMA_VERSION):
        raise JournalError(f"{path} was written by another version of posthog-async "
                           f"(journal format {version}); use a new --journal")


def _set_version(db: sqlite3.Connection) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
               (json.dumps(SCHEMA_VERSION),))


def _upgrade_from_3(db: sqlite3.Connection) -> None:
    """Format 3 had no ``in_flight``, and counted a chunk's lost answers only once it was
    settled in the run that lost them: a chunk still ``sent`` had at least one call whose
    answer never came (a crash, or a stop after a lost answer), counted as one on resume.
    Its calls were not numbered: without lookups, its "not found" ids are proven only if no
    call of the job removed a person (the order of its calls is unknown)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'options'").fetchone()
    options = {} if row is None else json.loads(row[0])
    db.execute("BEGIN IMMEDIATE")
    try:
        for column in ("in_flight INTEGER NOT NULL DEFAULT 0", "first_seq INTEGER",
                       "last_seq INTEGER", "bound INTEGER"):
            db.execute(f"ALTER TABLE chunks ADD COLUMN {column}")
        db.execute("UPDATE chunks SET in_flight = 1 WHERE state = 'sent'")
        db.execute("UPDATE chunks SET first_seq = 0, last_seq = 0 WHERE sends > 0")
        if not options.get("resolve", True):
            db.execute("UPDATE chunks SET bound = 1 WHERE chunk IN "
                       "(SELECT chunk FROM ids WHERE outcome = 'not_found')")
        _set_version(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
