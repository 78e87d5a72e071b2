"""The deletion job's journal: an SQLite file (WAL mode) that survives crashes.

It holds every unique id with its chunk and outcome, and every chunk with its state:
``pending`` (never sent), ``sent`` (sent, outcome unknown: a crash happened in between),
``done`` and ``failed`` (with the reason). All calls are synchronous; the job runs them in a
worker thread, one at a time, so the event loop never blocks on disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._validation import is_uuid

__all__ = ["Journal", "ChunkRow", "LoadStats", "KINDS"]

KINDS = ("distinct_ids", "ids")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ids (
    kind TEXT NOT NULL, id TEXT NOT NULL, chunk INTEGER NOT NULL, outcome TEXT,
    PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ids_by_chunk ON ids (chunk);
CREATE TABLE IF NOT EXISTS chunks (
    chunk INTEGER PRIMARY KEY, kind TEXT NOT NULL, size INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
    persons_found INTEGER, persons_deleted INTEGER, persons_queued INTEGER,
    events_queued INTEGER, recordings_queued INTEGER, error TEXT, updated_at TEXT);
CREATE TABLE IF NOT EXISTS rejects (kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL);
"""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class LoadStats:
    requested: int = 0
    blank: int = 0
    invalid: int = 0
    duplicates: int = 0
    unique: int = 0


@dataclass(frozen=True)
class ChunkRow:
    chunk: int
    kind: str
    state: str
    size: int


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def loaded(self) -> bool:
        return bool(self.get_meta("loaded"))

    # -- loading --------------------------------------------------------------------------

    def load(self, sources: Iterable[tuple[str, Iterable[str]]], chunk_size: int) -> LoadStats:
        """Insert every unique, valid id and assign chunks; all or nothing (one transaction).

        Memory stays flat whatever the input size: de-duplication happens in SQLite.
        """
        stats = LoadStats()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for table in ("ids", "chunks", "rejects"):
                    db.execute(f"DELETE FROM {table}")
                next_chunk = 0
                for kind, values in sources:
                    if kind not in KINDS:
                        raise ValueError(f"kind must be one of {KINDS}")
                    in_chunk = 0
                    for raw in values:
                        stats.requested += 1
                        value = raw.strip()
                        if not value:
                            stats.blank += 1
                            continue
                        if kind == "ids":
                            if not is_uuid(value):
                                stats.invalid += 1
                                db.execute("INSERT INTO rejects VALUES (?, ?, ?)",
                                           (kind, value[:200], "not a valid UUID"))
                                continue
                            value = value.lower()
                        cursor = db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?, ?, NULL)",
                                            (kind, value, next_chunk))
                        if cursor.rowcount == 0:
                            stats.duplicates += 1
                            continue
                        stats.unique += 1
                        in_chunk += 1
                        if in_chunk == chunk_size:
                            db.execute("INSERT INTO chunks (chunk, kind, size) VALUES (?, ?, ?)",
                                       (next_chunk, kind, in_chunk))
                            next_chunk += 1
                            in_chunk = 0
                    if in_chunk:
                        db.execute("INSERT INTO chunks (chunk, kind, size) VALUES (?, ?, ?)",
                                   (next_chunk, kind, in_chunk))
                        next_chunk += 1
                db.execute("INSERT OR REPLACE INTO meta VALUES ('load_stats', ?)",
                           (json.dumps(stats.__dict__),))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('loaded', 'true')")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return stats

    def load_stats(self) -> LoadStats:
        return LoadStats(**(self.get_meta("load_stats") or {}))

    # -- chunks ---------------------------------------------------------------------------

    def chunks_to_send(self, *, retry_failed: bool) -> list[ChunkRow]:
        states = ("pending", "sent", "failed") if retry_failed else ("pending", "sent")
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT chunk, kind, state, size FROM chunks WHERE state IN ({marks}) ORDER BY chunk",
            states
        ).fetchall()
        return [ChunkRow(*row) for row in rows]

    def chunk_ids(self, chunk: int) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT id FROM ids WHERE chunk = ? ORDER BY id", (chunk,))]

    def mark_sent(self, chunk: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE chunks SET state = 'sent', attempts = attempts + 1, updated_at = ? "
                "WHERE chunk = ?", (utc_now(), chunk))

    def mark_done(self, chunk: int, counts: dict[str, int], found: set[str] | None,
                  found_outcome: str = "deleted") -> None:
        """Record a chunk's server counts. ``found`` (ids a lookup resolved) gives exact per-id
        outcomes: ``found_outcome`` for those, ``not_found`` for the rest; without it every id
        of the chunk is ``done`` (the server only returns counts per chunk)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE chunks SET state = 'done', persons_found = ?, persons_deleted = ?, "
                "persons_queued = ?, events_queued = ?, recordings_queued = ?, error = NULL, "
                "updated_at = ? WHERE chunk = ?",
                (counts["persons_found"], counts["persons_deleted"], counts["persons_queued"],
                 counts["events_queued"], counts["recordings_queued"], utc_now(), chunk))
            if found is None:
                db.execute("UPDATE ids SET outcome = 'done' WHERE chunk = ?", (chunk,))
            else:
                db.execute("UPDATE ids SET outcome = 'not_found' WHERE chunk = ?", (chunk,))
                db.executemany("UPDATE ids SET outcome = ? WHERE chunk = ? AND id = ?",
                               [(found_outcome, chunk, i) for i in found])
            db.execute("COMMIT")

    def mark_failed(self, chunk: int, reason: str) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE chunks SET state = 'failed', error = ?, updated_at = ? WHERE chunk = ?",
                       (reason[:2000], utc_now(), chunk))
            db.execute("UPDATE ids SET outcome = 'failed' WHERE chunk = ?", (chunk,))
            db.execute("COMMIT")

    # -- reading back ---------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        db = self._db
        states = dict(db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())
        id_states = dict(db.execute(
            "SELECT COALESCE(outcome, 'pending'), COUNT(*) FROM ids GROUP BY 1").fetchall())
        sums = db.execute(
            "SELECT COALESCE(SUM(persons_found), 0), COALESCE(SUM(persons_deleted), 0), "
            "COALESCE(SUM(persons_queued), 0), COALESCE(SUM(events_queued), 0), "
            "COALESCE(SUM(recordings_queued), 0) "
            "FROM chunks WHERE state = 'done'").fetchone()
        return {
            "chunk_states": states, "id_outcomes": id_states,
            "persons_found": sums[0], "persons_deleted": sums[1], "persons_queued": sums[2],
            "events_queued": sums[3], "recordings_queued": sums[4],
            "attempts": db.execute("SELECT COALESCE(SUM(attempts), 0) FROM chunks").fetchone()[0],
            "resent_chunks": db.execute(
                "SELECT COUNT(*) FROM chunks WHERE attempts > 1").fetchone()[0],
        }

    def failed_chunks(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT chunk, kind, size, error, attempts FROM chunks WHERE state = 'failed' ORDER BY chunk")
        return [dict(zip(("chunk", "kind", "size", "error", "attempts"), r)) for r in rows]

    def rejects(self) -> list[dict[str, str]]:
        rows = self._db.execute("SELECT kind, value, reason FROM rejects")
        return [dict(zip(("kind", "value", "reason"), r)) for r in rows]

    def iter_outcomes(self) -> Iterator[tuple[str, str, str, int, str | None]]:
        """(kind, id, outcome, chunk, reason) for every id, then every rejected input value."""
        rows = self._db.execute(
            "SELECT ids.kind, ids.id, COALESCE(ids.outcome, 'pending'), ids.chunk, chunks.error "
            "FROM ids JOIN chunks USING (chunk) ORDER BY ids.chunk, ids.id")
        yield from rows
        for r in self._db.execute("SELECT kind, value, reason FROM rejects"):
            yield r[0], r[1], "invalid", -1, r[2]
