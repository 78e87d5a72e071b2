"""``DeletionJob``: a resumable GDPR deletion of any number of persons, with a proof report.

Delivery is *at least once* per chunk: a chunk is marked ``sent`` in the journal before its
request and ``done`` after the answer, so a crash in between re-sends it on resume. That is
correct because ``bulk_delete`` is idempotent: deleting an already deleted person finds nothing
and changes nothing. A chunk in state ``done`` is never sent again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from .. import _constants as C
from .._client import ScopedPostHog
from .._concurrency import bounded_map
from ._journal import KINDS, ChunkRow, Journal, utc_now
from ._report import JobReport, build_report

__all__ = ["DeletionJob", "JobProgress", "JobOptions"]


@dataclass(frozen=True)
class JobOptions:
    delete_events: bool = False
    delete_recordings: bool = False
    keep_person: bool = False
    dry_run: bool = False
    resolve: bool = False
    chunk_size: int = C.MAX_BULK_DELETE_IDS

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class JobProgress:
    """Told to ``on_progress`` after each chunk."""

    chunks_total: int
    chunks_finished: int = 0
    ids_total: int = 0
    ids_finished: int = 0
    failed_chunks: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.ids_finished / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        return (self.ids_total - self.ids_finished) / rate if rate > 0 else None


def _lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        yield from handle


class DeletionJob:
    """Delete every person named in files or iterables, journaled so it can resume.

    Example::

        async with AsyncPostHog(project_id=1) as ph:
            job = DeletionJob(ph, distinct_ids="erase.txt", delete_events=True)
            report = await job.run()
            report.write("erase-report.json")

    ``distinct_ids``/``ids`` may be a path (one id a line) or an iterable of strings. The
    journal defaults to ``<first input file>.journal.sqlite`` (``.dry-run.sqlite`` for dry
    runs); an iterable input needs an explicit ``journal=``. Running again with the same
    journal resumes: ``done`` chunks are skipped, ``sent`` chunks (outcome unknown) re-sent,
    ``failed`` chunks re-sent only with ``retry_failed=True``.

    ``resolve=True`` looks every chunk up before deleting it (``batch_by_*`` endpoints, which
    have the lower analytics rate limit) so each id's outcome is exact: ``deleted`` or
    ``not_found``. Without it the server's counts are exact per chunk and ids are ``sent``.
    ``dry_run=True`` only resolves and deletes nothing.
    """

    def __init__(
        self,
        client: ScopedPostHog,
        *,
        distinct_ids: str | Path | Iterable[str] | None = None,
        ids: str | Path | Iterable[str] | None = None,
        journal: str | Path | None = None,
        delete_events: bool = False,
        delete_recordings: bool = False,
        keep_person: bool = False,
        dry_run: bool = False,
        resolve: bool = False,
        chunk_size: int = C.MAX_BULK_DELETE_IDS,
        concurrency: int | None = None,
        retry_failed: bool = False,
        on_progress: Callable[[JobProgress], object] | None = None,
    ) -> None:
        if distinct_ids is None and ids is None:
            raise ValueError("give distinct_ids=... and/or ids=... (a file path or an iterable)")
        if not 1 <= chunk_size <= C.MAX_BULK_DELETE_IDS:
            raise ValueError(f"chunk_size must be between 1 and {C.MAX_BULK_DELETE_IDS}")
        self.client = client
        self.sources: list[tuple[str, str | Path | Iterable[str]]] = [
            (kind, src) for kind, src in zip(KINDS, (distinct_ids, ids)) if src is not None
        ]
        self.options = JobOptions(delete_events, delete_recordings, keep_person, dry_run,
                                  resolve or dry_run, chunk_size)
        self.journal_path = Path(journal) if journal is not None else self._default_journal()
        self.concurrency = concurrency or client._transport.config.max_concurrency
        self.retry_failed = retry_failed
        self.on_progress = on_progress
        self._stop = False
        self._db_limiter = anyio.CapacityLimiter(1)

    def _default_journal(self) -> Path:
        for _, src in self.sources:
            if isinstance(src, (str, Path)):
                suffix = ".dry-run.sqlite" if self.options.dry_run else ".journal.sqlite"
                return Path(f"{src}{suffix}")
        raise ValueError("an iterable input needs journal=PATH to record progress in")

    def request_stop(self) -> None:
        """Send no new chunk; the ones in flight finish and are journaled (Ctrl-C)."""
        self._stop = True

    @property
    def stopped(self) -> bool:
        return self._stop

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._db_limiter)

    def _check_inputs(self) -> None:
        for _, src in self.sources:
            if isinstance(src, (str, Path)):
                path = Path(src)
                if not path.is_file():
                    raise FileNotFoundError(f"input file not found: {path}")

    async def run(self) -> JobReport:
        """Load (first run only), send every chunk not yet done, and return the report."""
        self._check_inputs()
        started_at = utc_now()
        journal = await self._db(Journal, self.journal_path)
        try:
            await self._prepare(journal)
            rows: list[ChunkRow] = await self._db(
                lambda: journal.chunks_to_send(retry_failed=self.retry_failed))
            await self._send_all(journal, rows)
            deletion_status = await self._deletion_status()
            report: JobReport = await self._db(lambda: build_report(
                journal, options=self.options.as_dict(), started_at=started_at,
                finished_at=utc_now(), interrupted=self._stop,
                deletion_status=deletion_status, inputs=self._input_names()))
            return report
        finally:
            await self._db(journal.close)

    def _input_names(self) -> dict[str, str]:
        return {kind: str(src) if isinstance(src, (str, Path)) else "<iterable>"
                for kind, src in self.sources}

    async def _prepare(self, journal: Journal) -> None:
        options = self.options.as_dict()
        if await self._db(lambda: journal.loaded):
            recorded = await self._db(journal.get_meta, "options")
            if recorded != options:
                raise ValueError(
                    f"journal {self.journal_path} was started with other options {recorded}; "
                    "use the same options to resume, or another --journal")
            return
        sources = [(kind, _lines(Path(src)) if isinstance(src, (str, Path)) else iter(src))
                   for kind, src in self.sources]
        await self._db(journal.set_meta, "options", options)
        await self._db(journal.set_meta, "inputs", self._input_names())
        await self._db(journal.set_meta, "created_at", utc_now())
        await self._db(journal.load, sources, self.options.chunk_size)

    async def _chunks(self, rows: list[ChunkRow]) -> AsyncIterator[ChunkRow]:
        for row in rows:
            if self._stop:
                return
            yield row

    async def _send_all(self, journal: Journal, rows: list[ChunkRow]) -> None:
        progress = JobProgress(chunks_total=len(rows), ids_total=sum(r.size for r in rows))

        async def send(row: ChunkRow) -> int:
            chunk_ids = await self._db(journal.chunk_ids, row.chunk)
            found: set[str] | None = None
            if self.options.resolve:
                found = await self._resolve(row.kind, chunk_ids)
            if self.options.dry_run:
                assert found is not None
                counts = dict(persons_found=len(found), persons_deleted=0, persons_queued=0,
                              events_queued=0, recordings_queued=0)
                await self._db(journal.mark_done, row.chunk, counts, found, "exists")
                return len(chunk_ids)
            await self._db(journal.mark_sent, row.chunk)
            kwargs = {row.kind: chunk_ids}
            result = await self.client.persons.bulk_delete(
                **kwargs, delete_events=self.options.delete_events,
                delete_recordings=self.options.delete_recordings,
                keep_person=self.options.keep_person)
            counts = dict(persons_found=result.persons_found,
                          persons_deleted=result.persons_deleted,
                          persons_queued=result.persons_queued_for_deletion,
                          events_queued=result.events_queued_for_deletion,
                          recordings_queued=result.recordings_queued_for_deletion)
            await self._db(journal.mark_done, row.chunk, counts, found,
                           "kept" if self.options.keep_person else "deleted")
            return len(chunk_ids)

        results = bounded_map(self._chunks(rows), send, limit=self.concurrency)
        try:
            async for row, _, error in results:
                if error is not None:
                    progress.failed_chunks += 1
                    await self._db(journal.mark_failed, row.chunk,
                                   f"{type(error).__name__}: {error}")
                progress.chunks_finished += 1
                progress.ids_finished += row.size
                if self.on_progress is not None:
                    self.on_progress(progress)
        finally:
            await results.aclose()

    async def _resolve(self, kind: str, chunk_ids: list[str]) -> set[str]:
        persons = self.client.persons
        if kind == "ids":
            report = await persons.batch_by_uuids_all(chunk_ids, concurrency=1)
        else:
            report = await persons.batch_by_distinct_ids_all(chunk_ids, concurrency=1)
        if report.failed:
            raise report.failed[0].error
        return set(report.found)

    async def _deletion_status(self) -> dict[str, Any] | None:
        if not self.options.delete_events or self.options.dry_run:
            return None
        counts: dict[str, Any] = {}
        try:
            async for status in self.client.persons.deletion_status(status="all", limit=1000):
                key = status.status or "unknown"
                counts[key] = counts.get(key, 0) + 1
        except Exception as exc:  # the report still stands without it
            return {"error": f"{type(exc).__name__}: {exc}"}
        return counts
