"""The deletion job's journal: an SQLite file (WAL mode) that survives crashes, one job at a time.

It holds every unique id with its chunk, its person (when looked up) and its outcome, and every
chunk with its state: ``pending`` (not sent; maybe looked up), ``sent`` (sent, answer not yet
recorded: after a crash its outcome is unknown and it is looked up again before any re-send),
``done`` and ``failed``. A chunk's ``in_flight`` is set while a ``bulk_delete`` call of it is
out: a run that dies with a call out leaves it set, and the next run counts that call's answer as
lost (:meth:`Journal.recover`), so lost answers and re-sends are counted across runs. Calls are
numbered across runs (``first_seq``/``last_seq``; ``bound`` for "not found" without lookups,
see ``RunLedger``). Loading is one transaction: a journal killed while loading holds no ids
and loads again. An exclusive lock (a ``.lock`` file beside it, released by the kernel when the
process dies) keeps a second run off the same journal, however its path is spelled. The files
hold personal data, so they are created readable by their owner only. All calls are
synchronous; the job runs them in a worker thread, one at a time.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._chunk_result import MAYBE_DELETED, ChunkResult, ChunkState, RunLedger
from .._ids import IdCleaner, InputStats, RejectedId
from ._input import InputError, Rejected
from ._lock import JobLock, JournalError, create_private, utc_now
from ._schema import prepare_schema

__all__ = ["Journal", "ChunkRow"]


def _removed(c: str) -> str:
    """Chunk ``c`` had a call that may have removed a person: answered so (deleted or queued),
    answered without counts, or unanswered when it may have been processed."""
    return (f"({c}.sends > 0 AND ({c}.state = 'sent' OR {c}.in_flight OR {c}.lost_answers > 0 "
            f"OR ({c}.state = 'done' AND {c}.persons_found IS NULL) "
            f"OR COALESCE({c}.persons_deleted, 0) + COALESCE({c}.persons_queued, 0) > 0))")


@dataclass(frozen=True)
class ChunkRow:
    chunk: int
    kind: str
    state: str
    size: int


class Journal:
    """All of a job's SQL in one class."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mutex = threading.Lock()
        self._lock = JobLock(self.path)
        try:
            create_private(self.path)  # SQLite gives its -wal and -shm files the same mode
            self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.DatabaseError, OSError) as exc:
            self._lock.release()
            raise JournalError(f"{self.path} is not a usable journal: {exc}") from None
        try:
            prepare_schema(self._db, self.path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        self._lock.release()

    @property
    def lock_path(self) -> Path:
        return self._lock.path

    # -- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._mutex:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def loaded(self) -> bool:
        return bool(self.get_meta("loaded"))

    # -- loading --------------------------------------------------------------------------

    def load(
        self, sources: Iterable[tuple[str, Iterator[tuple[int, object]]]], chunk_size: int,
        on_loaded: Callable[[], dict[str, Any]] | None = None,
    ) -> InputStats:
        """Insert every unique, valid id and assign chunks of ``chunk_size``; all or nothing.

        May be called again to add ids (appended input): known ids count as duplicates and new
        chunks follow the old ones. ``on_loaded()`` returns meta entries written in the same
        transaction (the inputs' identities, known only once they were read to the end).
        """
        stats = InputStats(**(self.get_meta("load_stats") or {}))
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("CREATE TEMP TABLE IF NOT EXISTS staged (kind TEXT, id TEXT, seq INTEGER)")
                db.execute("DELETE FROM staged")
                seq = 0
                for kind, entries in sources:
                    seq = self._stage(db, kind, entries, stats, seq)
                self._assign_chunks(db, chunk_size, stats)
                if not stats.requested:
                    raise InputError("the input holds no ids (is it the right file?)")
                db.execute("DELETE FROM staged")
                extra = on_loaded() if on_loaded is not None else {}
                for key, value in {**extra, "load_stats": stats.__dict__, "loaded": True}.items():
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return stats

    def _stage(self, db: sqlite3.Connection, kind: str, entries: Iterator[tuple[int, object]],
               stats: InputStats, seq: int) -> int:
        rejects: list[tuple[str, int | None, str, str]] = []

        def reject(item: RejectedId) -> None:
            rejects.append((kind, item.line, item.value, item.reason))

        cleaner = IdCleaner(uuids=kind == "ids", dedupe=False, stats=stats, on_reject=reject)
        while True:
            batch = [entry for _, entry in zip(range(5000), entries)]
            if not batch:
                return seq
            raw: list[object] = []
            lines: list[int] = []
            for line, value in batch:
                if isinstance(value, Rejected):
                    stats.requested += 1
                    stats.invalid += 1
                    rejects.append((kind, line, value.value[:200], value.reason))
                else:
                    raw.append(value)
                    lines.append(line)
            clean = cleaner.clean(raw, lines=lines)
            db.executemany("INSERT INTO staged VALUES (?, ?, ?)",
                           [(kind, value, seq + n) for n, value in enumerate(clean)])
            seq += len(clean)
            db.executemany("INSERT INTO rejects VALUES (?, ?, ?, ?)", rejects)
            rejects.clear()

    def _assign_chunks(self, db: sqlite3.Connection, chunk_size: int, stats: InputStats) -> None:
        start = db.execute("SELECT COALESCE(MAX(chunk) + 1, 0) FROM chunks").fetchone()[0]
        for kind in ("distinct_ids", "ids"):
            db.execute(
                "INSERT INTO ids (kind, id, chunk) "
                "SELECT kind, id, ? + (ROW_NUMBER() OVER (ORDER BY first) - 1) / ? FROM ("
                "  SELECT kind, id, MIN(seq) AS first FROM staged WHERE kind = ? "
                "  AND NOT EXISTS (SELECT 1 FROM ids WHERE ids.kind = staged.kind AND ids.id = staged.id) "
                "  GROUP BY kind, id)", (start, chunk_size, kind))
            db.execute("INSERT INTO chunks (chunk, kind, size) SELECT chunk, kind, COUNT(*) "
                       "FROM ids WHERE chunk >= ? AND kind = ? GROUP BY chunk", (start, kind))
            start = db.execute("SELECT COALESCE(MAX(chunk) + 1, 0) FROM chunks").fetchone()[0]
        unique_now = db.execute("SELECT COUNT(*) FROM ids").fetchone()[0]
        stats.duplicates = stats.requested - stats.blank - stats.invalid - unique_now

    # -- chunks ---------------------------------------------------------------------------

    def chunks_to_send(self, *, retry_failed: bool) -> list[ChunkRow]:
        states = ("pending", "sent", "failed") if retry_failed else ("pending", "sent")
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT chunk, kind, state, size FROM chunks WHERE state IN ({marks}) ORDER BY chunk",
            states).fetchall()
        return [ChunkRow(*row) for row in rows]

    def chunk_state(self, row: ChunkRow) -> ChunkState:
        """What the step needs to (re)send a chunk: ids, the lookup if any, and whether an
        earlier send may have been processed."""
        looked_up, sends = self._db.execute(
            "SELECT looked_up, sends FROM chunks WHERE chunk = ?", (row.chunk,)).fetchone()
        rows = self._db.execute("SELECT id, person, outcome FROM ids WHERE chunk = ? ORDER BY id",
                                (row.chunk,)).fetchall()
        answer_lost = row.state == "sent" or (row.state == "failed" and sends > 0)
        # An unsent chunk is looked up afresh: the data may have changed since the last run.
        found = {i: p for i, p, _ in rows if p is not None} if looked_up and answer_lost else None
        own = {p for _, p, outcome in rows if p is not None and outcome in ("deleted", "queued")}
        return ChunkState([i for i, _, _ in rows], found=found, answer_lost=answer_lost, own=own)

    def record_lookup(self, chunk: int, found: dict[str, str], aliases: dict[str, str]) -> None:
        """A chunk's (new) lookup: each id's person, and every distinct id of those persons."""
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE ids SET person = NULL WHERE chunk = ?", (chunk,))
            db.executemany("UPDATE ids SET person = ? WHERE chunk = ? AND id = ?",
                           [(person, chunk, key) for key, person in found.items()])
            db.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?)", aliases.items())
            db.execute("UPDATE chunks SET looked_up = 1, updated_at = ? WHERE chunk = ?",
                       (utc_now(), chunk))
            db.execute("COMMIT")

    def recover(self) -> int:
        """Count the calls a run that died left out as lost answers (their chunks are looked up
        again before any re-send). Returns how many; call it before sending."""
        with self._mutex:
            cursor = self._db.execute(
                "UPDATE chunks SET lost_answers = lost_answers + 1, in_flight = 0, updated_at = ? "
                "WHERE in_flight", (utc_now(),))
            return cursor.rowcount

    def ledger(self) -> RunLedger:
        """What earlier runs leave the next one (see ``RunLedger``): the persons deleted, the
        calls' numbering, and per kind the first call that may have removed a person."""
        ledger = RunLedger(deleted=self.persons())
        ledger.next_seq = self._db.execute(
            "SELECT COALESCE(MAX(last_seq) + 1, 0) FROM chunks").fetchone()[0]
        ledger.removals = dict(self._db.execute(
            f"SELECT kind, MIN(first_seq) FROM chunks AS c WHERE {_removed('c')} GROUP BY kind"))
        return ledger

    def unprove_not_found(self) -> int:
        """Without lookups: ids "not found" after a call that may have removed their person
        (through another id) was sent become unresolved (``RunLedger.proves_absent``; a job
        sends each id once). Returns how many; call it once no call is out."""
        with self._mutex:
            self._db.execute(
                "WITH first AS (SELECT kind, MIN(first_seq) AS seq FROM chunks AS c "
                f"  WHERE {_removed('c')} GROUP BY kind) "
                "UPDATE ids SET outcome = 'unresolved', reason = ? WHERE outcome = 'not_found' "
                "AND chunk IN (SELECT b.chunk FROM chunks AS b JOIN first "
                "ON first.seq < b.bound AND (b.kind = 'distinct_ids' OR first.kind = 'distinct_ids'))",
                (MAYBE_DELETED,))
            return int(self._db.execute("SELECT changes()").fetchone()[0])  # rowcount: -1 after WITH

    def mark_sent(self, chunk: int, seq: int) -> None:
        with self._mutex:
            self._db.execute(
                "UPDATE chunks SET state = 'sent', sends = sends + 1, in_flight = 1, "
                "first_seq = COALESCE(first_seq, ?), last_seq = ?, updated_at = ? "
                "WHERE chunk = ?", (seq, seq, utc_now(), chunk))

    def mark_unanswered(self, chunk: int, *, lost: bool) -> None:
        """A call ended without an answer: ``lost`` if it may have been processed."""
        with self._mutex:
            self._db.execute(
                "UPDATE chunks SET in_flight = 0, lost_answers = lost_answers + ?, updated_at = ? "
                "WHERE chunk = ?", (int(lost), utc_now(), chunk))

    def mark_done(self, chunk: int, result: ChunkResult, *, failed: str | None = None) -> None:
        """Record a settled chunk: PostHog's counts and every id's outcome, in one transaction.

        With ``failed`` (the reason), the chunk was given up on after ``result``'s ids were
        settled: it is ``failed`` and its other ids fail with that reason. Lost answers are not
        taken from ``result``: :meth:`mark_unanswered` and :meth:`recover` counted them.
        """
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            if failed is not None:
                db.execute("UPDATE ids SET outcome = 'failed', reason = ? WHERE chunk = ?",
                           (failed[:500], chunk))
            db.execute(
                "UPDATE chunks SET state = ?, persons_found = ?, persons_deleted = ?, "
                "persons_queued = ?, events_queued = ?, recordings_queued = ?, in_flight = 0, "
                "bound = ?, exact = ?, error = ?, updated_at = ? WHERE chunk = ?",
                ("done" if failed is None else "failed", result.persons_found,
                 result.persons_deleted, result.persons_queued, int(result.events_queued),
                 int(result.recordings_queued), result.bound, int(result.exact),
                 None if failed is None else failed[:2000], utc_now(), chunk))
            db.executemany("UPDATE ids SET outcome = ?, reason = ? WHERE chunk = ? AND id = ?",
                           [(outcome, reason, chunk, key)
                            for ids, outcome, reason in result.groups for key in ids])
            db.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?)", result.aliases.items())
            db.execute("COMMIT")

    def mark_failed(self, chunk: int, reason: str) -> None:
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE chunks SET state = 'failed', error = ?, in_flight = 0, updated_at = ? "
                       "WHERE chunk = ?", (reason[:2000], utc_now(), chunk))
            db.execute("UPDATE ids SET outcome = 'failed', reason = ? WHERE chunk = ?",
                       (reason[:500], chunk))
            db.execute("COMMIT")

    def mark_unsent(self, chunk: int) -> None:
        """A chunk stopped before its send was processed (a refused key, a stop): pending again."""
        with self._mutex:
            self._db.execute("UPDATE chunks SET state = 'pending', in_flight = 0, updated_at = ? "
                             "WHERE chunk = ? AND state = 'sent'", (utc_now(), chunk))

    def credit_aliases(self) -> int:
        """Ids "not found" because this job had already deleted (or queued) their person through
        another of its ids (a distinct id of that person, or its UUID) take that person's
        outcome. Returns how many moved."""
        with self._mutex:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            db.execute("CREATE TEMP TABLE IF NOT EXISTS credit (kind TEXT, id TEXT, person TEXT, "
                       "outcome TEXT, PRIMARY KEY (kind, id))")
            db.execute("DELETE FROM credit")
            done = ("SELECT COALESCE(person, CASE WHEN kind = 'ids' THEN id END) AS person, "
                    "MIN(outcome) AS outcome FROM ids WHERE outcome IN ('deleted', 'queued') "
                    "GROUP BY 1")
            db.execute(
                "INSERT OR IGNORE INTO credit SELECT ids.kind, ids.id, done.person, done.outcome "
                f"FROM ids JOIN aliases ON aliases.id = ids.id JOIN ({done}) AS done "
                "ON done.person = aliases.person "
                "WHERE ids.kind = 'distinct_ids' AND ids.outcome = 'not_found'")
            db.execute(
                "INSERT OR IGNORE INTO credit SELECT ids.kind, ids.id, done.person, done.outcome "
                f"FROM ids JOIN ({done}) AS done ON done.person = ids.id "
                "WHERE ids.kind = 'ids' AND ids.outcome = 'not_found'")
            match = "credit.kind = ids.kind AND credit.id = ids.id"
            cursor = db.execute(
                f"UPDATE ids SET person = (SELECT person FROM credit WHERE {match}), "
                f"outcome = (SELECT outcome FROM credit WHERE {match}), "
                f"reason = 'its person was ' || (SELECT outcome FROM credit WHERE {match}) "
                "|| ' by this job through another of its ids' "
                f"WHERE outcome = 'not_found' AND EXISTS (SELECT 1 FROM credit WHERE {match})")
            db.execute("COMMIT")
            return cursor.rowcount

    # -- reading back ---------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """For reading only (the report's counts, :mod:`posthog_async.jobs._tally`)."""
        return self._db

    def persons(self) -> set[str]:
        """The uuids of every person the job found (lookups, or the ids themselves for UUIDs)."""
        rows = self._db.execute("SELECT COALESCE(person, CASE WHEN kind = 'ids' THEN id END) "
                                "FROM ids WHERE outcome IN ('deleted', 'queued', 'kept')")
        return {r[0] for r in rows if r[0] is not None}
