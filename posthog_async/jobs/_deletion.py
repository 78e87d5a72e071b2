"""``DeletionJob``: a resumable GDPR deletion of any number of persons, with a report that is proof.

The job loads its input into a journal (one transaction), then runs the client's per-chunk step
(:class:`~posthog_async._bulk.ChunkStep`, the same one ``bulk_delete_all`` runs) over the chunks
not yet settled, recording each lookup, each send and each settled chunk. After a crash, a chunk
that was sent without its answer recorded is looked up again before it is re-sent, so the final
report says what PostHog did, whatever happened in between.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread

from .. import _constants as C
from .._chunk_step import ChunkState, ChunkStep, is_fatal
from .._client import ScopedPostHog
from .._concurrency import bounded_map
from .._exceptions import RateLimitError
from ._input import InputError, InputReader, InputSpec, identify, prefix_sha256
from ._journal import ChunkRow, Journal, utc_now
from ._report import JobReport, build_report

__all__ = ["DeletionJob", "JobProgress", "JobOptions", "JobInterrupted"]

Kind = Literal["distinct_ids", "ids"]
Notice = Callable[[str], object]


class JobInterrupted(Exception):
    """Stopped while loading the input: nothing was sent."""


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


@dataclass(frozen=True)
class _Iterable:
    """An input given as an iterable of ids instead of a file."""

    kind: Kind
    values: Iterable[str]


def _hashed(values: Iterable[str]) -> tuple[Iterator[tuple[int, object]], Any]:
    sha = hashlib.sha256()

    def entries() -> Iterator[tuple[int, object]]:
        for line, value in enumerate(values, start=1):
            sha.update(f"{value}\n".encode("utf-8", "surrogatepass"))
            yield line, value

    return entries(), sha


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
        self.sources: list[InputSpec | _Iterable] = list(inputs)
        for kind, src in (("distinct_ids", distinct_ids), ("ids", ids)):
            if isinstance(src, (str, Path)):
                self.sources.append(InputSpec(kind, str(src)))  # type: ignore[arg-type]
            elif src is not None:
                self.sources.append(_Iterable(kind, src))  # type: ignore[arg-type]
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
            await self._db(self._prepare, journal)
            rows: list[ChunkRow] = await self._db(
                lambda: journal.chunks_to_send(retry_failed=self.retry_failed))
            await self._send_all(journal, rows)
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
            report: JobReport = await self._db(lambda: build_report(
                journal, started_at="", finished_at=utc_now(), interrupted=True,
                stopped=self.stopped, deletion_status=None, notes=self.notes))
            return report
        finally:
            with anyio.CancelScope(shield=True):
                await self._db(journal.close)

    # -- loading --------------------------------------------------------------------------

    def _prepare(self, journal: Journal) -> None:
        """First run: load every input. Resume: same options, and the same (or grown) input."""
        if not journal.loaded:
            if not self.sources:
                raise InputError(f"journal {self.journal_path} holds no loaded job: give the input")
            journal.set_meta("options", self.options.as_dict())
            journal.set_meta("created_at", utc_now())
            self._load(journal, [(src, 0) for src in self.sources])
            return
        recorded = journal.get_meta("options")
        if recorded != self.options.as_dict():
            raise InputError(f"journal {self.journal_path} was started with other options "
                             f"{recorded}; use the same options to resume, or another --journal")
        known = journal.get_meta("inputs") or []
        if not self.sources:  # resuming from the journal alone (a job read from standard input)
            self._notice("resuming from the journal alone: its input is not checked again")
            return
        if len(known) != len(self.sources) or any(
                k["kind"] != s.kind for k, s in zip(known, self.sources)):
            raise InputError(f"journal {self.journal_path} was started with other inputs "
                             f"({', '.join(k['path'] for k in known)}); resume with the same ones")
        tails = [(src, self._compare(src, old)) for src, old in zip(self.sources, known)]
        if any(skip is not None for _, skip in tails):
            self._load(journal, tails, known)

    def _compare(self, src: InputSpec | _Iterable, old: dict[str, Any]) -> int | None:
        """``None`` when ``src`` is what the journal loaded, else the byte offset of new lines."""
        if isinstance(src, _Iterable):
            entries, sha = _hashed(src.values)
            for _ in entries:
                pass
            if sha.hexdigest() != old["sha256"]:
                raise InputError("the ids given differ from those the journal was started with")
            return None
        if src.is_stdin:
            raise InputError("a job read from standard input resumes from its journal alone: "
                             "run --resume --journal PATH without the '-' input")
        now = identify(src.path)
        if (now.size, now.sha256) == (old["size"], old["sha256"]):
            if src.path != old["path"]:
                self._notice(f"{src.path} has the same content as {old['path']}, which the "
                             "journal was started with")
            return None
        grew = (now.size > old["size"] and old["ends_with_newline"] and src.format != "csv"
                and prefix_sha256(src.path, old["size"]) == old["sha256"])
        if not grew:
            raise InputError(
                f"{src.path} is not the input this journal was started with (size "
                f"{old['size']:,} -> {now.size:,} bytes, content differs); resume with the "
                "original file, or start a new job with --journal NEW")
        return int(old["size"])

    def _load(self, journal: Journal, todo: list[tuple[InputSpec | _Iterable, int | None]],
              known: list[dict[str, Any]] | None = None) -> None:
        """Load every input whose offset is not ``None`` (0: all of it; else the new tail)."""
        readers: list[Any] = []
        sources = []
        for src, skip in todo:
            if skip is None:
                readers.append(None)
                continue
            if isinstance(src, _Iterable):
                entries, hasher = _hashed(src.values)
            else:
                hasher = InputReader(src, skip_bytes=skip)
                entries = iter(hasher)
            readers.append(hasher)
            sources.append((src.kind, self._until_stopped(entries)))
        before = (journal.get_meta("load_stats") or {}).get("requested", 0)

        def describe() -> dict[str, Any]:
            inputs = []
            for index, ((src, _), hasher) in enumerate(zip(todo, readers)):
                if hasher is None:
                    inputs.append((known or [])[index])
                elif isinstance(src, _Iterable):
                    inputs.append({"kind": src.kind, "path": "<iterable>", "format": "values",
                                   "sha256": hasher.hexdigest()})
                else:
                    inputs.append({"kind": src.kind, "path": src.path, "format": src.format,
                                   "column": src.column, "size": hasher.size,
                                   "sha256": hasher.sha256,
                                   "ends_with_newline": hasher.ends_with_newline})
            return {"inputs": inputs}

        stats = journal.load(sources, self.options.chunk_size, on_loaded=describe)
        if before:
            self._notice(f"loaded {stats.requested - before:,} lines appended to the input since "
                         "the last run")

    def _until_stopped(self, entries: Iterator[tuple[int, object]]) -> Iterator[tuple[int, object]]:
        try:
            for count, entry in enumerate(entries):
                if count % 1000 == 0 and self._stop.is_set():
                    raise JobInterrupted("stopped while loading the input: nothing was sent")
                yield entry
        finally:
            close = getattr(entries, "close", None)
            if close is not None:
                close()  # the input file now, not whenever the garbage collector gets to it

    # -- sending --------------------------------------------------------------------------

    async def _chunks(self, rows: list[ChunkRow]) -> AsyncIterator[ChunkRow]:
        for row in rows:
            if self._stop.is_set():
                return
            yield row

    def _step(self, kind: str) -> ChunkStep:
        o = self.options
        return self.client.persons.deletion_step(
            "ids" if kind == "ids" else "distinct_ids", delete_events=o.delete_events,
            delete_recordings=o.delete_recordings, keep_person=o.keep_person, resolve=o.resolve,
            dry_run=o.dry_run, patience=self.patience, on_wait=self._on_wait)

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
        steps = {kind: self._step(kind) for kind in ("distinct_ids", "ids")}
        job = self

        class Recorder:
            def __init__(self, chunk: int) -> None:
                self.chunk = chunk

            async def looked_up(self, state: ChunkState) -> None:
                await job._db(journal.record_lookup, self.chunk, state.found or {})

            async def sending(self, state: ChunkState) -> None:
                await job._db(journal.mark_sent, self.chunk)

        async def settle(row: ChunkRow) -> None:
            state: ChunkState = await self._db(journal.chunk_state, row)
            was_lost = state.answer_lost
            try:
                result = await steps[row.kind].run(state, Recorder(row.chunk))
            except Exception as error:
                if is_fatal(error):
                    if not was_lost:
                        await self._db(journal.mark_unsent, row.chunk)
                    raise
                await self._db(journal.mark_failed, row.chunk, f"{type(error).__name__}: {error}")
                raise
            await self._db(journal.mark_done, row.chunk, result)

        results = bounded_map(self._chunks(rows), settle, limit=self.concurrency)
        try:
            async for row, _, error in results:
                progress.waiting_until = None
                if error is not None and is_fatal(error):
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

    async def _deletion_status(self, journal: Journal) -> dict[str, Any]:
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
