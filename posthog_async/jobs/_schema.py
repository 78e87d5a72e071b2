"""The journal's format: its tables, its version, and how a journal of an older format is brought
up to this one (in one transaction, the first time this version opens it)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ._lock import JournalError

__all__ = ["SCHEMA_VERSION", "UNRECORDED_PROJECT", "prepare_schema"]

#: 4: chunks gained ``in_flight`` (a ``bulk_delete`` call of it is out), ``first_seq``/``last_seq``
#: (the job-wide numbers of its first and last call) and ``bound`` (the calls sent when its "not
#: found" ids were settled without lookups; see ``RunLedger``).
#: 5: one job covers several projects. Ids, chunks and aliases belong to a ``project`` (the same
#: distinct id in two projects is two persons); ``projects`` records the job's project set and
#: which of them the key could not reach; ``checks`` records what ``verify`` found (and
#: ``id_checks``, added without a version change as every open creates missing tables, whom
#: each erased distinct id names now).
SCHEMA_VERSION = 5
#: The project of rows upgraded from a journal that did not record its project (format 3 or 4,
#: one project per job): the first run of this version records the project it is given.
UNRECORDED_PROJECT = 0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ids (
    project INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, chunk INTEGER NOT NULL,
    person TEXT, outcome TEXT, reason TEXT, PRIMARY KEY (project, kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ids_by_chunk ON ids (chunk);
CREATE TABLE IF NOT EXISTS chunks (
    chunk INTEGER PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', looked_up INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0, persons_found INTEGER, persons_deleted INTEGER,
    persons_queued INTEGER, events_queued INTEGER, recordings_queued INTEGER,
    lost_answers INTEGER NOT NULL DEFAULT 0, exact INTEGER, error TEXT, updated_at TEXT,
    in_flight INTEGER NOT NULL DEFAULT 0, first_seq INTEGER, last_seq INTEGER, bound INTEGER,
    project INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS aliases (
    project INTEGER NOT NULL, id TEXT NOT NULL, person TEXT NOT NULL,
    PRIMARY KEY (project, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejects (
    kind TEXT NOT NULL, line INTEGER, value TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    project INTEGER PRIMARY KEY, name TEXT, organization TEXT, pending_deletion INTEGER,
    state TEXT NOT NULL DEFAULT 'covered', status_code INTEGER, message TEXT, checked_at TEXT);
CREATE TABLE IF NOT EXISTS checks (
    project INTEGER NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
    requested_at TEXT, person_state TEXT, person_checked_at TEXT, gone_at TEXT, found_as TEXT,
    events_state TEXT, events_checked_at TEXT, row_created_at TEXT, delete_verified_at TEXT,
    PRIMARY KEY (project, kind, target)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS id_checks (
    project INTEGER NOT NULL, id TEXT NOT NULL, person TEXT, outcome TEXT, state TEXT,
    found_as TEXT, found_created_at TEXT, checked_at TEXT,
    PRIMARY KEY (project, id)) WITHOUT ROWID;
"""

def prepare_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create a new journal's tables, or upgrade an older format; refuse one this version
    cannot read (a newer one, or one too old to upgrade)."""
    try:
        row = _version(db)
        version = None if row is None else json.loads(row[0])
        if version not in (None, 3, 4, SCHEMA_VERSION):
            raise JournalError(f"{path} was written by another version of posthog-async "
                               f"(journal format {version}); use a new --journal")
        if version in (3, 4):
            _upgrade(db, version)
        db.executescript(SCHEMA)
        if version is None:
            _set_version(db)
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path} is not a usable journal: {exc}") from None


def _version(db: sqlite3.Connection) -> tuple[str] | None:
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                        ).fetchone()
    if exists is None:
        return None
    row: tuple[str] | None = db.execute(
        "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return row


def _set_version(db: sqlite3.Connection) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
               (json.dumps(SCHEMA_VERSION),))


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _upgrade(db: sqlite3.Connection, version: int) -> None:
    """Formats 3 and 4, in one transaction: nothing is half upgraded."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if version == 3:
            _upgrade_from_3(db)
        _upgrade_from_4(db)
        _set_version(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _upgrade_from_3(db: sqlite3.Connection) -> None:
    """Format 3 had no ``in_flight``, and counted a chunk's lost answers only once it was
    settled in the run that lost them: a chunk still ``sent`` had at least one call whose
    answer never came (a crash, or a stop after a lost answer), counted as one on resume.
    Its calls were not numbered: without lookups, its "not found" ids are proven only if no
    call of the job removed a person (the order of its calls is unknown)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'options'").fetchone()
    options = {} if row is None else json.loads(row[0])
    have = _columns(db, "chunks")
    for column in ("in_flight INTEGER NOT NULL DEFAULT 0", "first_seq INTEGER",
                   "last_seq INTEGER", "bound INTEGER"):
        if column.split()[0] not in have:
            db.execute(f"ALTER TABLE chunks ADD COLUMN {column}")
    db.execute("UPDATE chunks SET in_flight = 1 WHERE state = 'sent'")
    db.execute("UPDATE chunks SET first_seq = 0, last_seq = 0 WHERE sends > 0")
    if not options.get("resolve", True):
        db.execute("UPDATE chunks SET bound = 1 WHERE chunk IN "
                   "(SELECT chunk FROM ids WHERE outcome = 'not_found')")


def _upgrade_from_4(db: sqlite3.Connection) -> None:
    """Format 4 covered one project and did not record which: its ids, chunks and aliases go to
    :data:`UNRECORDED_PROJECT` until a run records the project it resumes in (the ids and
    aliases tables are rebuilt, as their keys now begin with the project)."""
    if "project" not in _columns(db, "ids"):
        db.execute("ALTER TABLE ids RENAME TO ids_format_4")
        db.execute("DROP INDEX IF EXISTS ids_by_chunk")
        db.execute("CREATE TABLE ids (project INTEGER NOT NULL, kind TEXT NOT NULL, "
                   "id TEXT NOT NULL, chunk INTEGER NOT NULL, person TEXT, outcome TEXT, "
                   "reason TEXT, PRIMARY KEY (project, kind, id)) WITHOUT ROWID")
        db.execute(f"INSERT INTO ids SELECT {UNRECORDED_PROJECT}, kind, id, chunk, person, "
                   "outcome, reason FROM ids_format_4")
        db.execute("DROP TABLE ids_format_4")
        db.execute("CREATE INDEX ids_by_chunk ON ids (chunk)")
    if "project" not in _columns(db, "chunks"):
        db.execute(f"ALTER TABLE chunks ADD COLUMN project INTEGER NOT NULL DEFAULT "
                   f"{UNRECORDED_PROJECT}")
    if "project" not in _columns(db, "aliases"):
        db.execute("ALTER TABLE aliases RENAME TO aliases_format_4")
        db.execute("CREATE TABLE aliases (project INTEGER NOT NULL, id TEXT NOT NULL, "
                   "person TEXT NOT NULL, PRIMARY KEY (project, id)) WITHOUT ROWID")
        db.execute(f"INSERT INTO aliases SELECT {UNRECORDED_PROJECT}, id, person "
                   "FROM aliases_format_4")
        db.execute("DROP TABLE aliases_format_4")
