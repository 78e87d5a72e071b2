"""``DeletionJob``: a resumable GDPR deletion of any number of persons, with a report that is proof.

The job loads its input into a journal (one transaction), then runs the client's per-chunk step
(:class:`~posthog_async._bulk.ChunkStep`, the same one ``bulk_delete_all`` runs) over the chunks
not yet settled, recording each lookup, each send and each settled chunk. After a crash, a chunk
that was sent without its answer recorded is looked up again before it is re-sent, so the final
report says what PostHog did, whatever happened in between.

One job may cover several projects (``projects=[...]`` or ``"all"``, see :mod:`._job_projects`):
every id is sent in each, each project keeps its own ledger (a call in one project cannot remove
a person of another), and all of them share the client's pool and rate limits, as PostHog's
buckets are per key. A project the key cannot reach is *not covered*: the job goes on with the
others and the report names it. :meth:`DeletionJob.verify` later proves what the job did.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread

from .. import _constants as C
from .._admission import STOP, WaitStop
from .._chunk_result import ChunkState, RunLedger
from .._chunk_step import ChunkAbandoned, ChunkIncomplete, ChunkStep, is_fatal
from .._client import ScopedPostHog
from .._concurrency import bounded_map
from .._exceptions import PostHogError, RateLimitError
from ._input import InputSpec
from ._input_bytes import InputError
from ._job_projects import Projects, ProjectsArg, refused_project, selection_for
from ._journal import ChunkRow, Journal
from ._lock import JournalError, utc_now
from ._loading import IterableInput, check_host, prepare
from ._report import JobReport
from ._report_build import build_report
from ._status_counts import deletion_status_counts
from ._verify import verify_job

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
    exact; ``dry_run`` only looks up. A bad key, a missing scope, or a refused connection stops
    the job at once with the journal intact.

    ``projects``: the client's project (default), a list of project ids, ``"all"`` (every
    project the key reaches, less ``exclude_projects``), or a
    :class:`~posthog_async.ProjectReach` from ``ph.reachable_projects()``. A project the key
    cannot reach (403, 404) is not covered: the others go on, and the report says so.
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
        projects: ProjectsArg = None,
        exclude_projects: Iterable[int | str] = (),
    ) -> None:
        if not 1 <= chunk_size <= C.MAX_BULK_DELETE_IDS:
            raise ValueError(f"chunk_size must be between 1 and {C.MAX_BULK_DELETE_IDS}")
        if concurrency is not None and concurrency <= 0:
            raise ValueError("concurrency must be positive")
        self.client = client
        self.selection = selection_for(projects, exclude_projects, client)
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
        self._stop = WaitStop()  # set: waits in the transport end too (see _admission)
        self._db_limiter = anyio.CapacityLimiter(1)
        self._progress: JobProgress | None = None
        self._refused: set[int] = set()  # projects refused during this run

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

    def _projects(self) -> Projects:
        return Projects(self.client, self.selection, self._db, self._notice,
                        patience=self.patience, should_stop=self._stop.is_set)

    async def run(self) -> JobReport:
        """Load (or check) the input, settle every chunk not yet settled, return the report."""
        started_at = utc_now()
        journal: Journal = await self._db(Journal, self.journal_path)
        try:
            loaded = await self._db(lambda: journal.loaded)
            if not loaded and not self.sources:
                raise InputError(f"journal {journal.path} holds no loaded job: give the input")
            await self._db(lambda: check_host(journal, self.client.host, loaded=loaded))
            projects = self._projects()
            await projects.settle(journal, loaded=loaded)
            await self._db(lambda: prepare(
                journal, self.sources, self.options.as_dict(), chunk_size=self.options.chunk_size,
                notice=self._notice, stop=self._stop, projects=projects.in_job))
            lost = await self._db(journal.recover)
            if lost:
                self._notice(f"{lost:,} chunks had a call out when the last run ended: their "
                             "answers count as lost, and they are looked up before any re-send")
            covered = set(projects.covered)
            rows: list[ChunkRow] = await self._db(
                lambda: journal.chunks_to_send(retry_failed=self.retry_failed, projects=covered))
            await self._send_all(journal, rows, projects)
            unproven = await self._db(journal.unprove_not_found)
            if unproven:
                self._notice(f"{unproven:,} ids were not found after this job had deleted persons "
                             "through other ids: without lookups they may have been theirs, so "
                             "they are reported unresolved (--resolve makes this exact)")
            moved = await self._db(journal.credit_aliases)
            if moved:
                self._notice(f"{moved:,} ids were not found because this job had already "
                             "deleted their person through another of its ids: reported as such")
            wide = await self._db(journal.unprove_wide)
            if wide:
                self._notice(f"{wide:,} ids were not found after this job had deleted a person "
                             "with 10 or more distinct ids, of whom lookups show 10: they may "
                             "have been theirs, so they are reported unresolved")
            status = (await deletion_status_counts(journal, projects, self._db, self._notice)
                      if self.check_deletion_status else None)
            report: JobReport = await self._db(lambda: build_report(
                journal, started_at=started_at, finished_at=utc_now(),
                interrupted=self.stopping and not self.stopped, stopped=self.stopped,
                deletion_status=status, notes=self.notes))
            return report
        finally:
            with anyio.CancelScope(shield=True):
                await self._db(journal.close)

    async def verify(self, **kwargs: Any) -> JobReport:
        """Prove what the job did (see :func:`~posthog_async.jobs.verify_job`): every person it
        deleted or queued is no longer found, and, if it asked for ``delete_events``, their
        ``deletion_status`` rows are ``completed``. Journaled and resumable like the job; the
        report's ``verification`` says what is verified, pending or wrong."""
        return await verify_job(self, **kwargs)

    async def report(self) -> JobReport:
        """The report as the journal stands (after :meth:`run` was cancelled, for instance)."""
        journal: Journal = await self._db(Journal, self.journal_path)
        try:
            await self._db(journal.unprove_not_found)
            await self._db(journal.credit_aliases)
            await self._db(journal.unprove_wide)
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
            if row.project not in self._refused:
                yield row

    def _step(self, view: ScopedPostHog, kind: str, ledger: RunLedger) -> ChunkStep:
        o = self.options
        step = view.persons.deletion_step(
            "ids" if kind == "ids" else "distinct_ids", delete_events=o.delete_events,
            delete_recordings=o.delete_recordings, keep_person=o.keep_person, resolve=o.resolve,
            dry_run=o.dry_run, patience=self.patience, on_wait=self._on_wait,
            should_stop=self._stop.is_set)
        step.ledger = ledger  # one for both kinds of a project, seeded from earlier runs
        return step

    def _on_wait(self, seconds: float, error: RateLimitError) -> None:
        until = time.time() + seconds
        self._notice(f"PostHog asked to wait {seconds:,.0f}s (rate limit on {error.path}); "
                     f"resuming at {time.strftime('%H:%M:%S', time.localtime(until))}")
        if self._progress is not None:
            self._progress.waiting_until = until
            if self.on_progress is not None:
                self.on_progress(self._progress)

    async def _send_all(self, journal: Journal, rows: list[ChunkRow], projects: Projects) -> None:
        progress = self._progress = JobProgress(chunks_total=len(rows),
                                                ids_total=sum(r.size for r in rows))
        steps: dict[tuple[int, str], ChunkStep] = {}
        for project in {row.project for row in rows}:
            ledger: RunLedger = await self._db(journal.ledger, project)
            if self.options.keep_person:
                ledger.deleted = set()
            view = projects.view(project)
            for kind in ("distinct_ids", "ids"):
                steps[project, kind] = self._step(view, kind, ledger)
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
                result = await steps[row.project, row.kind].run(state, Recorder(row.chunk))
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

        stop_waits = STOP.set(self._stop)  # the chunks' tasks inherit it
        results = bounded_map(self._chunks(rows), settle, limit=self.concurrency)
        try:
            async for row, _, error in results:
                progress.waiting_until = None
                if isinstance(error, ChunkAbandoned):
                    continue  # stopped while it waited: left for the resumed run
                refusal = None if error is None else refused_project(error)
                if refusal is not None:
                    await self._not_covered(journal, row.project, refusal, len(projects.covered))
                    continue
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
            STOP.reset(stop_waits)

    async def _journaled(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A journal call while sending; one that fails stops the job (progress it cannot
        record, or read back, is progress it cannot prove)."""
        try:
            return await self._db(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot use the journal {self.journal_path}: {exc}") from exc

    async def _not_covered(self, journal: Journal, project: int, error: PostHogError,
                           projects: int) -> None:
        """PostHog refused ``project`` (403, 404): the job goes on without it, and says so."""
        if project in self._refused:
            return
        self._refused.add(project)
        status = getattr(error, "status_code", None)
        message = getattr(error, "detail", None) or str(error)
        await self._journaled(journal.mark_not_covered, project, status, message)
        if len(self._refused) >= projects:  # nothing left to work in: as before, a stop
            self.stopped = f"{type(error).__name__}: {error}"
            self._notice(f"stopping: {error} (this will not heal by retrying; the journal is "
                         "intact)")
            self._stop.set()
        else:
            self._notice(f"project {project} is not covered: PostHog answered {status} "
                         f"({message}); the job goes on with the other projects")


