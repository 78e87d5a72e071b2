"""``DeletionJob``: a resumable GDPR deletion of any number of persons, with a report that is proof.

The job loads its input into a journal (one transaction), then runs the client's per-chunk step
(:class:`~posthog_async._bulk.ChunkStep`, the same one ``bulk_delete_all`` runs) over the chunks
not yet settled, recording each lookup, each send and each settled chunk. After a crash, a chunk
that was sent without its answer recorded is looked up again before it is re-sent, so the final
report says what PostHog did, whatever happened in between.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread

from .. import _constants as C
from .._chunk_result import ChunkState, RunLedger
from .._chunk_step import ChunkAbandoned, ChunkIncomplete, ChunkStep, is_fatal
from .._client import ScopedPostHog
from .._concurrency import bounded_map
from .._exceptions import PostHogError, RateLimitError
from ._input import InputSpec
from ._journal import ChunkRow, Journal
from ._lock import JournalError, utc_now
from ._loading import IterableInput, prepare
from ._report import JobReport, build_report

__all__ = ["DeletionJob", "JobProgress", "JobOptions"]

Kind = Literal["distinct_ids", "ids"]
Notice = Callable[[str], object]


def _stops_the_job(error: BaseException) -> bool:
    """A fatal error (see :func:`is_fatal`), or a journal that can no longer be written."""
    return is_fatal(error) or isinstance(error, JournalError)


@dataclass(frozen=True)
class JobOptions:
    """What a journal was started with; a resume must ask for the same."""

    delete_events: bool = False
    delete_recordings: bool = False
    keep_person: bool = False
    dry_run: bool = False
    resolve: bool = True
    chunk_size: int = C.MAX_BULK_DELETE_IDS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobProgress:
    """Told to ``on_progress`` after each chunk, and when a wait starts."""

    chunks_total: int
    chunks_finished: int = 0
    ids_total: int = 0
    ids_finished: int = 0
    failed_chunks: int = 0
    waiting_until: float | None = None  # a wall-clock time, while PostHog asked us to wait
    started: float = field(default_factory=time.monotonic)


class DeletionJob:
    """Delete every person named in files or iterables, journaled so it can resume.

    Example::

        async with AsyncPostHog(project_id=1) as ph:
            job = DeletionJob(ph, distinct_ids="erase.txt", delete_events=True)
            report = await job.run()
            report.write("erase-report.csv")

    ``distinct_ids``/``ids`` are paths (one id a line; ``inputs=`` takes
    :class:`~posthog_async.jobs.InputSpec` for CSV and JSON Lines) or iterables of strings. The
    journal defaults to ``<first input file>.journal.sqlite``; iterables and standard input need
    ``journal=``. Running again with the same journal resumes (checking the input is the same,
    or only grew). ``resolve`` (default) looks each chunk up first, so each id's outcome is
    exact; ``dry_run`` only looks up. A bad key, a missing scope or project, or a refused
    connection stops the job at once with the journal intact.
    """

    def __init__(
        self,
        client: ScopedPostHog,
        *,
        distinct_ids: str | Path | Iterable[str] | None = None,
        ids: str | Path | Iterable[str] | None = None,
        inputs: Iterable[InputSpec] = (),
        journal: str | Path | None = None,
        delete_events: bool = False,
        delete_recordings: bool = False,
        keep_person: bool = False,
        dry_run: bool = False,
        resolve: bool = True,
        chunk_size: int = C.MAX_BULK_DELETE_IDS,
        concurrency: int | None = None,
        retry_failed: bool = False,
        patience: float = 600.0,
        check_deletion_status: bool = False,
        on_progress: Callable[[JobProgress], object] | None = None,
        on_notice: Notice | None = None,
    ) -> None:
        if not 1 <= chunk_size <= C.MAX_BULK_DELETE_IDS:
            raise ValueError(f"chunk_size must be between 1 and {C.MAX_BULK_DELETE_IDS}")
        if concurrency is not None and concurrency <= 0:
            raise ValueError("concurrency must be positive")
        self.client = client
        self.sources: list[InputSpec | IterableInput] = list(inputs)
        for kind, src in (("distinct_ids", distinct_ids), ("ids", ids)):
            if isinstance(src, (str, Path)):
                self.sources.append(InputSpec(kind, str(src)))  # type: ignore[arg-type]
            elif src is not None:
                self.sources.append(IterableInput(kind, src))  # type: ignore[arg-type]
        if not self.sources and journal is None:
            raise ValueError("give distinct_ids=..., ids=... or inputs=[...] (or journal= to "
                             "resume a loaded job from its journal alone)")
        self.options = JobOptions(delete_events, delete_recordings, keep_person, dry_run,
                                  resolve or dry_run, chunk_size)
        self.journal_path = Path(journal) if journal is not None else self._default_journal()
        self.concurrency = concurrency or client.max_concurrency
        self.retry_failed = retry_failed
        self.patience = patience
        self.check_deletion_status = check_deletion_status
        self.on_progress = on_progress
        self.on_notice = on_notice
        self.notes: list[str] = []
        self.stopped: str | None = None
        self._stop = threading.Event()
        self._db_limiter = anyio.CapacityLimiter(1)
        self._progress: JobProgress | None = None

    def _default_journal(self) -> Path:
        for src in self.sources:
            if isinstance(src, InputSpec) and not src.is_stdin:
                suffix = ".dry-run.sqlite" if self.options.dry_run else ".journal.sqlite"
                return Path(f"{src.path}{suffix}")
        raise ValueError("an iterable or standard input needs journal=PATH to record progress in")

    def request_stop(self) -> None:
        """Send no new chunk; the ones in flight finish and are journaled (Ctrl-C, SIGTERM)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _notice(self, message: str) -> None:
        self.notes.append(message)
        if self.on_notice is not None:
            self.on_notice(message)

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._db_limiter)

    async def run(self) -> JobReport:
        """Load (or check) the input, settle every chunk not yet settled, return the report."""
        started_at = utc_now()
        journal: Journal = await self._db(Journal, self.journal_path)
        try:
            await self._db(lambda: prepare(
                journal, self.sources, self.options.as_dict(), chunk_size=self.options.chunk_size,
                notice=self._notice, stop=self._stop))
            lost = await self._db(journal.recover)
            if lost:
                self._notice(f"{lost:,} chunks had a call out when the last run ended: their "
                             "answers count as lost, and they are looked up before any re-send")
            rows: list[ChunkRow] = await self._db(
                lambda: journal.chunks_to_send(retry_failed=self.retry_failed))
            await self._send_all(journal, rows)
            unproven = await self._db(journal.unprove_not_found)
            if unproven:
                self._notice(f"{unproven:,} ids were not found after this job had deleted persons "
                             "through other ids: without lookups they may have been theirs, so "
                             "they are reported unresolved (--resolve makes this exact)")
            moved = await self._db(journal.credit_aliases)
            if moved:
                self._notice(f"{moved:,} ids were not found because this job had already "
                             "deleted their person through another of its ids: reported as such")
            status = await self._deletion_status(journal) if self.check_deletion_status else None
            report: JobReport = await self._db(lambda: build_report(
                journal, started_at=started_at, finished_at=utc_now(),
                interrupted=self.stopping and not self.stopped, stopped=self.stopped,
                deletion_status=status, notes=self.notes))
            return report
        finally:
            with anyio.CancelScope(shield=True):
                await self._db(journal.close)

    async def report(self) -> JobReport:
        """The report as the journal stands (after :meth:`run` was cancelled, for instance)."""
        journal: Journal = await self._db(Journal, self.journal_path)
        try:
            await self._db(journal.unprove_not_found)
            report: JobReport = await self._db(lambda: build_report(
                journal, started_at="", finished_at=utc_now(), interrupted=True,
                stopped=self.stopped, deletion_status=None, notes=self.notes))
            return report
        finally:
            with anyio.CancelScope(shield=True):
                await self._db(journal.close)

    # -- sending --------------------------------------------------------------------------

    async def _chunks(self, rows: list[ChunkRow]) -> AsyncIterator[ChunkRow]:
        for row in rows:
            if self._stop.is_set():
                return
            yield row

    def _step(self, kind: str, ledger: RunLedger) -> ChunkStep:
        o = self.options
        step = self.client.persons.deletion_step(
            "ids" if kind == "ids" else "distinct_ids", delete_events=o.delete_events,
            delete_recordings=o.delete_recordings, keep_person=o.keep_person, resolve=o.resolve,
            dry_run=o.dry_run, patience=self.patience, on_wait=self._on_wait,
            should_stop=self._stop.is_set)
        step.ledger = ledger  # one for both kinds, seeded from earlier runs
        return step

    def _on_wait(self, seconds: float, error: RateLimitError) -> None:
        until = time.time() + seconds
        self._notice(f"PostHog asked to wait {seconds:,.0f}s (rate limit on {error.path}); "
                     f"resuming at {time.strftime('%H:%M:%S', time.localtime(until))}")
        if self._progress is not None:
            self._progress.waiting_until = until
            if self.on_progress is not None:
                self.on_progress(self._progress)

    async def _send_all(self, journal: Journal, rows: list[ChunkRow]) -> None:
        progress = self._progress = JobProgress(chunks_total=len(rows),
                                                ids_total=sum(r.size for r in rows))
        ledger: RunLedger = await self._db(journal.ledger)
        if self.options.keep_person:
            ledger.deleted = set()
        steps = {kind: self._step(kind, ledger) for kind in ("distinct_ids", "ids")}
        journaled = self._journaled

        class Recorder:
            def __init__(self, chunk: int) -> None:
                self.chunk = chunk

            async def looked_up(self, state: ChunkState) -> None:
                await journaled(journal.record_lookup, self.chunk, state.found or {}, state.aliases)

            async def sending(self, state: ChunkState, seq: int) -> None:
                await journaled(journal.mark_sent, self.chunk, seq)

            async def unanswered(self, state: ChunkState, *, lost: bool) -> None:
                await journaled(lambda: journal.mark_unanswered(self.chunk, lost=lost))

        async def settle(row: ChunkRow) -> None:
            state: ChunkState = await journaled(journal.chunk_state, row)
            try:
                result = await steps[row.kind].run(state, Recorder(row.chunk))
            except JournalError:
                raise
            except Exception as error:
                if isinstance(error, ChunkAbandoned) or is_fatal(error):
                    if not state.answer_lost:  # no send of it went through: not sent at all
                        await journaled(journal.mark_unsent, row.chunk)
                    raise  # else it stays 'sent': a resume looks it up before re-sending
                reason = f"{type(error).__name__}: {error}"
                if isinstance(error, ChunkIncomplete):  # keep what was settled before giving up
                    await journaled(lambda: journal.mark_done(row.chunk, error.partial, failed=reason))
                else:
                    await journaled(journal.mark_failed, row.chunk, reason)
                raise
            await journaled(journal.mark_done, row.chunk, result)

        results = bounded_map(self._chunks(rows), settle, limit=self.concurrency)
        try:
            async for row, _, error in results:
                progress.waiting_until = None
                if isinstance(error, ChunkAbandoned):
                    continue  # stopped while it waited: left for the resumed run
                if error is not None and _stops_the_job(error):
                    if not self.stopped:
                        self.stopped = f"{type(error).__name__}: {error}"
                        self._notice(f"stopping: {error} (this will not heal by retrying; the "
                                     "journal is intact)")
                    self._stop.set()
                    continue
                if error is not None:
                    progress.failed_chunks += 1
                progress.chunks_finished += 1
                progress.ids_finished += row.size
                if self.on_progress is not None:
                    self.on_progress(progress)
        finally:
            await results.aclose()

    async def _journaled(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A journal call while sending; one that fails stops the job (progress it cannot
        record, or read back, is progress it cannot prove)."""
        try:
            return await self._db(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot use the journal {self.journal_path}: {exc}") from exc

    async def _deletion_status(self, journal: Journal) -> dict[str, Any]:
        """PostHog's event-deletion rows for this job's persons; a failure becomes a note."""
        try:
            return await self._event_deletions(journal)
        except PostHogError as error:
            self._notice(f"could not read PostHog's event deletion status: {error}")
            return {"error": f"{type(error).__name__}: {error}"}

    async def _event_deletions(self, journal: Journal) -> dict[str, Any]:
        """PostHog's event-deletion rows for this job's persons (newest first, since the job began)."""
        created: str = await self._db(journal.get_meta, "created_at")
        since = datetime.fromisoformat(created.replace("Z", "+00:00"))
        persons: set[str] = await self._db(journal.persons)
        counts: dict[str, Any] = {"persons_matched": len(persons)}
        if not persons:
            counts["note"] = "no person of this job is known by uuid (use ids or --resolve)"
            return counts
        async for row in self.client.persons.deletion_status(status="all"):
            if row.created_at is not None and row.created_at < since:
                break
            if row.person_uuid in persons:
                key = row.status or "unknown"
                counts[key] = counts.get(key, 0) + 1
        return counts
