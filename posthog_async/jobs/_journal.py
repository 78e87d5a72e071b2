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

One job may cover several projects: every id is loaded once per project (the same distinct id
in two projects names two persons), chunks and aliases belong to one project, and the rules
that relate chunks to each other (aliases, "not found" without lookups) stay within a project
(:mod:`._settle`). The project set itself is in :mod:`._job_projects`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._chunk_result import ChunkResult, ChunkState, RunLedger
from .._ids import IdCleaner, InputStats, RejectedId
from . import _settle
from ._checks import CheckRecords
from ._input import InputError, Rejected
from ._journal_projects import ProjectRecords
from ._lock import JobLock, JournalError, create_private, utc_now
from ._schema import prepare_schema

__all__ = ["Journal", "ChunkRow"]


@dataclass(frozen=True)
class ChunkRow:
    chunk: int
    kind: str
    state: str
    size: int
    project: int = 0


class Journal(ProjectRecords, CheckRecords):
    """All of a job's SQL in one class (the project set's in :class:`ProjectRecords`, the
    verification's in :class:`CheckRecords`)."""

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
        on_loaded: Callable[[], dict[str, Any]] | None = None, *, projects: Sequence[int],
    ) -> InputStats:
        """Insert every unique, valid id once per project and assign chunks of ``chunk_size``
        (each chunk in one project); all or nothing.

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
                self._assign_chunks(db, chunk_size, stats, projects)
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

    def _assign_chunks(self, db: sqlite3.Connection, chunk_size: int, stats: InputStats,
                       projects: Sequence[int]) -> None:
        if not projects:
            raise ValueError("a job needs at least one project")
        next_chunk = "SELECT COALESCE(MAX(chunk) + 1, 0) FROM chunks"
        start = db.execute(next_chunk).fetchone()[0]
        for project in projects:
            for kind in ("distinct_ids", "ids"):
                db.execute(
                    "INSERT INTO ids (project, kind, id, chunk) "
                    "SELECT ?, kind, id, ? + (ROW_NUMBER() OVER (ORDER BY first) - 1) / ? FROM ("
                    "  SELECT kind, id, MIN(seq) AS first FROM staged WHERE kind = ? "
                    "  AND NOT EXISTS (SELECT 1 FROM ids WHERE ids.project = ? "
                    "  AND ids.kind = staged.kind AND ids.id = staged.id) GROUP BY kind, id)",
                    (project, start, chunk_size, kind, project))
                db.execute("INSERT INTO chunks (chunk, kind, size, project) "
                           "SELECT chunk, kind, COUNT(*), ? FROM ids "
                           "WHERE chunk >= ? AND kind = ? AND project = ? GROUP BY chunk",
                           (project, start, kind, project))
                start = db.execute(next_chunk).fetchone()[0]
        unique_now = db.execute("SELECT COUNT(*) FROM ids WHERE project = ?",
                                (projects[0],)).fetchone()[0]
        stats.duplicates = stats.requested - stats.blank - stats.invalid - unique_now

    # -- chunks ---------------------------------------------------------------------------

    def chunks_to_send(self, *, retry_failed: bool,
                       projects: Collection[int] | None = None) -> list[ChunkRow]:
        """The chunks not yet settled (with ``retry_failed``, failed ones too), of ``projects``
        (default: all), in order."""
        states = ("pending", "sent", "failed") if retry_failed else ("pending", "sent")
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT chunk, kind, state, size, project FROM chunks WHERE state IN ({marks}) "
            "ORDER BY chunk", states).fetchall()
        return [ChunkRow(*row) for row in rows if projects is None or row[4] in projects]

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
            self._add_aliases(db, chunk, aliases)
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

    @staticmethod
    def _add_aliases(db: sqlite3.Connection, chunk: int, aliases: dict[str, str]) -> None:
        """Every distinct id a lookup showed, with its person, in the chunk's project."""
        if aliases:
            project = db.execute("SELECT project FROM chunks WHERE chunk = ?", (chunk,)).fetchone()[0]
            db.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)",
                           [(project, key, person) for key, person in aliases.items()])

    def ledger(self, project: int) -> RunLedger:
        """What earlier runs leave the next one in ``project`` (see ``RunLedger``): the persons
        deleted, the calls' numbering, and per kind the first call that may have removed a
        person. Chunks of other projects never matter: they cannot remove its persons."""
        ledger = RunLedger(deleted=self.persons(project))
        ledger.next_seq = self._db.execute(
            "SELECT COALESCE(MAX(last_seq) + 1, 0) FROM chunks WHERE project = ?",
            (project,)).fetchone()[0]
        ledger.removals = dict(self._db.execute(
            f"SELECT kind, MIN(first_seq) FROM chunks AS c WHERE project = ? "
            f"AND {_settle.removed('c')} GROUP BY kind", (project,)))
        return ledger

    def unprove_not_found(self) -> int:
        """Without lookups: ids "not found" after a call of their project that may have removed
        their person (through another id) was sent become unresolved (``RunLedger``). Returns
        how many; call it once no call is out."""
        if self._looks_up:  # a looked-up chunk's ``bound`` is its lookup's: see unprove_wide
            return 0
        with self._mutex:
            return _settle.unprove_not_found(self._db)

    def unprove_wide(self) -> int:
        """With lookups, after :meth:`credit_aliases`: ids "not found" by a lookup after the job
        deleted a person with 10 or more distinct ids become unresolved. Returns how many."""
        if not self._looks_up:
            return 0
        with self._mutex:
            return _settle.unprove_wide(self._db)

    @property
    def _looks_up(self) -> bool:
        """The job looks each chunk up before its send (its ``resolve`` option)."""
        return bool((self.get_meta("options") or {}).get("resolve", True))

    def mark_sent(self, chunk: int, seq: int) -> None:
        with self._mutex:
            self._db.execute(
                "UPDATE chunks SET state = 'sent', sends = sends + 1, in_flight = 1, "
                "first_seq = COALESCE(first_seq, ?), last_seq = ?, updated_at = ? "
                "WHERE chunk = ?", (seq, seq, utc_now(), chunk))

    def mark_unanswered(self, chunk: int, *, lost: bool) -> None:
        """A call ended without an answer: ``lost`` if it may have been processed (a lost
        answer); else PostHog refused it unprocessed, or it never reached PostHog (a 429 or
        other 4xx, a refused connection, a stop while it waited): it is no call of the job's
        (``sends`` counts calls PostHog may have acted on, see ``_tally.chunk_sums``)."""
        with self._mutex:
            self._db.execute(
                "UPDATE chunks SET in_flight = 0, lost_answers = lost_answers + ?, "
                "sends = MAX(0, sends - ?), updated_at = ? WHERE chunk = ?",
                (int(lost), int(not lost), utc_now(), chunk))

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
            self._add_aliases(db, chunk, result.aliases)
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
        another of its ids, in the same project, take that person's outcome. Returns how many."""
        with self._mutex:
            return _settle.credit_aliases(self._db)

    # -- reading back ---------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """For reading only (the report's counts, :mod:`posthog_async.jobs._tally`)."""
        return self._db

    def persons(self, project: int | None = None) -> set[str]:
        """The uuids of every person the job found (lookups, or the ids themselves for UUIDs),
        in ``project`` (default: all)."""
        where = "" if project is None else " AND project = ?"
        rows = self._db.execute("SELECT COALESCE(person, CASE WHEN kind = 'ids' THEN id END) "
                                f"FROM ids WHERE outcome IN ('deleted', 'queued', 'kept'){where}",
                                () if project is None else (project,))
        return {r[0] for r in rows if r[0] is not None}
