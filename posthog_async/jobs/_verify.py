"""Verification: proof, after the fact, that a deletion job's work was done at PostHog.

PostHog accepts a deletion long before it has done it. For every person a job deleted or queued,
``verify`` looks them up again (batch lookups, 200 a call: gone, or found again), and every
distinct id it erased (it may name a new person now); where the job asked for ``delete_events``,
it reads their ``deletion_status`` rows (scan or filter, whichever costs fewer calls) until each
is ``completed``, recording PostHog's ``delete_verified_at``. Only a row created after the job
began is its proof: an older one is an earlier erasure's (the person came back under the same
uuid, which PostHog derives from the distinct id).

Every answer is journaled as it arrives (one call's worth in one transaction), in the job's own
journal and under its lock, so a verification killed at any point resumes with what it knew.
Each run looks every person up again (one proven gone may be back: "checked" always means
checked by this run); its later ``wait`` passes skip those it has seen gone. Completed event
rows are not read again. Calls go through the client, so they are paced in PostHog's
``persons`` bucket with the job's; a ``deletion_status`` read that keeps failing (5xx) is retried
for the job's ``patience``, then its events are ``check_failed``. ``wait=True`` checks again
every ``interval`` seconds (until ``until``) while work is pending at PostHog.

The verdict (:func:`~posthog_async.jobs._report_build.verdict`): ``verified``; ``pending``
(queued deletions within their grace period, event rows not yet completed, rows not yet written
before PostHog's next batch); ``failed`` (a person found again or never deleted, an erased id
naming another person, a row missing after the batch ran, a project not covered, a job that did
not finish, a check that failed); ``unverifiable`` (the job kept its persons and deleted only
recordings, on which PostHog reports nothing).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio

from .. import _constants as C
from .._bulk import iter_lookup
from .._chunk_step import is_fatal
from .._client import ScopedPostHog
from .._exceptions import APIConnectionError, InternalServerError
from .._event_deletions import find_deletion_statuses, next_event_deletion_batch
from .._models import DeletionStatus, Page
from ._input_bytes import InputError
from ._job_projects import Projects, refused_project
from ._journal import Journal
from ._loading import check_host, check_unchanged
from ._report import JobReport
from ._report_build import VERIFICATION_META, build_report
from ._verifiable import VerifiableJob

__all__ = ["EventBatchSchedule", "VerifyProgress", "verify_job"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class EventBatchSchedule:
    """When PostHog's event-deletion batch starts each week, in UTC (``weekday``: Monday 0).

    The default is PostHog's ``CLEAR_CLICKHOUSE_REMOVED_DATA_SCHEDULE_CRON`` (Sundays 05:00).
    PostHog Cloud has also run the sweep as a Dagster job (at one time Saturdays 22:00 UTC) that
    marks rows verified at the end of the same run: ``EventBatchSchedule.parse("sat 22:00")``.
    """

    weekday: int = C.EVENT_DELETION_WEEKDAY
    hour: int = C.EVENT_DELETION_HOUR
    minute: int = C.EVENT_DELETION_MINUTE

    @classmethod
    def parse(cls, text: str) -> EventBatchSchedule:
        """``"sun 05:00"`` (a day's first three letters, then ``HH:MM`` in UTC)."""
        day, _, clock = text.strip().lower().partition(" ")
        hour, _, minute = clock.strip().partition(":")
        if (day[:3] not in _DAYS or not (hour.isdigit() and minute.isdigit())
                or int(hour) > 23 or int(minute) > 59):
            raise ValueError(f"a batch schedule is a weekday and a UTC time (00:00 to 23:59), "
                             f"like 'sun 05:00'; got {text!r}")
        return cls(_DAYS.index(day[:3]), int(hour), int(minute))

    def next_after(self, moment: datetime) -> datetime:
        return next_event_deletion_batch(moment, weekday=self.weekday, hour=self.hour,
                                         minute=self.minute)

    def describe(self) -> str:
        default = (self.weekday, self.hour, self.minute) == (
            C.EVENT_DELETION_WEEKDAY, C.EVENT_DELETION_HOUR, C.EVENT_DELETION_MINUTE)
        return (f"{_DAYS[self.weekday].capitalize()} {self.hour:02d}:{self.minute:02d} UTC weekly"
                + (" (PostHog's default batch schedule)" if default else ""))


@dataclass
class VerifyProgress:
    """Told to ``on_progress`` after each pass (and each call within one)."""

    state: str = "checking"
    checked: int = 0
    persons: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    next_batch_at: str | None = None
    next_check_at: float | None = None  # wall-clock time of the next pass, while waiting
    passes: int = 0


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class _Verification:
    def __init__(self, job: VerifiableJob, journal: Journal, projects: Projects, *,
                 queued_grace: float, schedule: EventBatchSchedule,
                 on_progress: Callable[[VerifyProgress], object] | None,
                 clock: Callable[[], datetime]) -> None:
        self.job, self.journal, self.projects = job, journal, projects
        self.grace, self.schedule, self.on_progress, self.clock = (
            queued_grace, schedule, on_progress, clock)
        self.progress = VerifyProgress()
        #: A run's first pass looks every target up again; its later ``--wait`` passes only
        #: those it has not seen gone.
        self.first_pass = True
        self.started_at = _iso(clock())
        self.db = job._db
        options = journal.get_meta("options") or {}
        self.delete_events = bool(options.get("delete_events"))
        self.keep_person = bool(options.get("keep_person"))

    def _tell(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)

    async def run_pass(self) -> None:
        await self.db(lambda: self.journal.add_targets(delete_events=self.delete_events,
                                                       keep_person=self.keep_person))
        for project in self.projects.covered:
            if self.job.stopping:
                return
            view = self.projects.view(project)
            try:
                await self._persons(view, project)
                if self.delete_events and not self.job.stopping:
                    await self._events_or_note(view, project)
            except Exception as error:
                refusal = refused_project(error)
                if refusal is None:
                    raise
                message = refusal.detail or str(refusal)
                await self.db(self.journal.mark_not_covered, project, refusal.status_code, message)
                self.job._notice(f"project {project} is not covered: PostHog answered "
                                 f"{refusal.status_code} ({message})")
        now = self.clock()
        if not self.job.stopping:
            self.first_pass = False
        await self.db(self.journal.set_meta, VERIFICATION_META, {
            "started_at": self.started_at, "checked_at": _iso(now),
            "schedule": self.schedule.describe(),
            "next_batch_at": _iso(self.schedule.next_after(now)),
            "queued_grace_seconds": self.grace})

    async def _persons(self, view: ScopedPostHog, project: int) -> None:
        """Every target of the project (on this run's first pass: a person proven gone may be
        back), then every erased distinct id (it may name a new person now)."""
        targets: dict[str, list[str]] = await self.db(
            lambda: self.journal.person_targets(project, again=self.first_pass))
        cutoff = _iso(self.clock() - timedelta(seconds=self.grace))

        def failed(chunk: list[str], error: Exception | None) -> bool:
            if error is not None and is_fatal(error):
                raise error
            if error is not None:
                self.job._notice(f"a lookup in project {project} failed ({error}): its "
                                 f"{len(chunk)} ids are checked again by the next verify")
            return error is not None

        async def record(kind: str, chunk: list[str], found: dict[str, Any],
                         error: Exception | None) -> None:
            bad = failed(chunk, error)
            gone = [] if bad else [t for t in chunk if t not in found]
            now_found = {} if bad else {t: p.uuid for t, p in found.items()}
            await self.job._journaled(lambda: self.journal.record_check(
                project, kind, gone=gone, found=now_found,
                failed=chunk if bad else [], grace_cutoff=cutoff))
            self.progress.checked += len(chunk)
            self._tell()

        async def record_ids(chunk: list[str], found: dict[str, Any],
                             error: Exception | None) -> None:
            bad = failed(chunk, error)
            now_found = {} if bad else {
                key: (p.uuid, None if p.created_at is None else _iso(p.created_at))
                for key, p in found.items()}
            await self.job._journaled(lambda: self.journal.record_id_check(
                project, found=now_found, free=[] if bad else [k for k in chunk if k not in found],
                failed=chunk if bad else []))
            self.progress.checked += len(chunk)
            self._tell()

        for kind, items in targets.items():
            if kind == "distinct_ids":
                if not await self._by_distinct_ids(view, items, lambda c, f, e: record(
                        "distinct_ids", c, f, e)):
                    return
                continue
            checks = view.persons.verification.check_gone(items, concurrency=self.job.concurrency)
            async with aclosing(checks):  # type: ignore[type-var]
                async for check in checks:
                    await record(kind, check.ids, check.found, check.error)
                    if self.job.stopping:
                        return
        erased: list[str] = await self.db(
            lambda: self.journal.id_targets(project, again=self.first_pass))
        if erased:
            await self._by_distinct_ids(view, erased, record_ids)

    async def _by_distinct_ids(
            self, view: ScopedPostHog, items: list[str],
            record: Callable[[list[str], dict[str, Any], Exception | None], Awaitable[None]],
    ) -> bool:
        """Look ``items`` up, 200 a call; ``False`` when the job is stopping."""
        lookups = iter_lookup(items, view.persons.batch_by_distinct_ids,
                              chunk_size=C.MAX_BATCH_DISTINCT_IDS,
                              concurrency=self.job.concurrency, uuids=False)
        async with aclosing(lookups):
            async for chunk, found, error in lookups:
                await record(chunk, found, error)
                if self.job.stopping:
                    return False
        return True

    async def _events_or_note(self, view: ScopedPostHog, project: int) -> None:
        """The project's status rows; when PostHog keeps failing (5xx, dropped connections)
        past the job's patience, its event deletions are "not checked" this time, said why."""
        try:
            await self._events(view, project)
        except (InternalServerError, APIConnectionError) as error:
            if is_fatal(error):
                raise
            status = getattr(error, "status_code", None)
            why = f"PostHog {status}" if status else type(error).__name__
            count = await self.job._journaled(self.journal.mark_events_unread, project)
            self.job._notice(f"project {project}: PostHog's event-deletion status could not be "
                             f"read ({why}: {error}); {count:,} event deletions are not checked "
                             "this time: verify again")

    async def _events(self, view: ScopedPostHog, project: int) -> None:
        uuids: list[str] = await self.db(self.journal.event_targets, project)
        if not uuids:
            return
        wanted = set(uuids)
        paginator = view.persons.deletion_status
        since = self._requests_since()
        fresh: set[str] = set()  # persons with a row of this job's request
        older: dict[str, str | None] = {}  # persons whose rows all predate it: when

        async def keep(rows: list[DeletionStatus]) -> None:
            """Only a row written for this job's request proves its event deletion: a person
            erased before (and back: PostHog derives a uuid from the distinct id) has an older
            row, completed before this request was made. The newest fresh row wins."""
            mine: dict[str, DeletionStatus] = {}
            for r in rows:
                key = r.person_uuid.lower()
                if key not in wanted:
                    continue
                if since is not None and r.created_at is not None and r.created_at < since:
                    if key not in fresh:
                        older.setdefault(key, _iso(r.created_at))
                    continue
                best = mine.get(key)
                if best is None or (r.created_at and best.created_at and
                                    r.created_at > best.created_at):
                    mine[key] = r
            if mine:
                fresh.update(mine)
                for key in mine:
                    older.pop(key, None)
                await self.job._journaled(self.journal.record_event_rows, project, [
                    (r.person_uuid, r.status, r.created_at, r.delete_verified_at)
                    for r in mine.values()])

        patiently = self.projects._patiently  # 5xx retried for the job's patience, as chunks

        async def page(offset: int, limit: int) -> Page[DeletionStatus]:
            result: Page[DeletionStatus] = await patiently(
                lambda: paginator(limit=limit, offset=offset).first_page())
            await keep(result.results)
            return result

        async def rows(person_uuid: str) -> list[DeletionStatus]:
            found: list[DeletionStatus] = await patiently(
                lambda: paginator(person_uuid=person_uuid).to_list())
            await keep(found)
            return found

        lookup = await find_deletion_statuses(uuids, page=page, rows=rows)
        now = self.clock()

        def batch_ran(requested_at: str | None) -> bool:
            return requested_at is None or now >= self.schedule.next_after(_parse(requested_at))

        missing = [u for u in (*lookup.missing, *lookup.rows) if u not in fresh]
        await self.job._journaled(self.journal.record_missing_rows, project, missing,
                                  batch_ran, older)

    def _requests_since(self) -> datetime | None:
        """Rows created before this (less :data:`~posthog_async._constants.DELETION_ROW_SKEW`
        for the clocks' difference) are not of this job: its journal did not exist yet."""
        created = self.journal.get_meta("created_at")
        if not created:
            return None
        return _parse(created) - timedelta(seconds=C.DELETION_ROW_SKEW)

    def _job_times(self) -> tuple[str, str]:
        """When the deletion job began (its journal was created) and when its last chunk was
        settled: the verify report keeps the job's own times (the verification's are in its
        ``verification`` section), so it never hides when the erasure ran."""
        started = self.journal.get_meta("created_at") or ""
        row = self.journal.connection.execute(
            "SELECT MAX(updated_at) FROM chunks WHERE state IN ('done', 'failed')").fetchone()
        return started, (row[0] if row and row[0] else "")

    def report(self) -> JobReport:
        started_at, finished_at = self._job_times()
        report = build_report(self.journal, started_at=started_at, finished_at=finished_at,
                              interrupted=self.job.stopping, stopped=None, deletion_status=None,
                              notes=self.job.notes)
        verification = report.verification or {}
        self.progress.state = verification.get("state", "checking")
        self.progress.persons = dict(verification.get("persons") or {})
        self.progress.events = dict(verification.get("events") or {})
        self.progress.next_batch_at = verification.get("next_batch_at")
        return report


async def verify_job(
    job: VerifiableJob, *, wait: bool = False, until: datetime | None = None,
    interval: float = C.VERIFY_INTERVAL, queued_grace: float = C.QUEUED_DELETION_GRACE,
    schedule: EventBatchSchedule | None = None,
    on_progress: Callable[[VerifyProgress], object] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> JobReport:
    """Verify what ``job`` did (see the module docstring); return its report, whose
    ``verification["state"]`` is ``verified``, ``pending``, ``failed`` or ``unverifiable``.
    The report keeps the job's ``started_at``/``finished_at``; the verification's own times
    are ``verification["started_at"]`` and ``["checked_at"]``.

    ``wait``: check again every ``interval`` seconds while work is pending at PostHog, until
    it is not or ``until`` (an aware datetime) passes. ``queued_grace``: how long a queued
    deletion's person may still be found before it is wrong. ``schedule``: PostHog's weekly
    batch (default Sundays 05:00 UTC): a missing event row is wrong only once the first batch
    after the request has run. ``clock`` returns now (tests move it past a batch).
    """
    if interval <= 0 or queued_grace < 0:
        raise ValueError("interval must be positive and queued_grace not negative")
    if until is not None and until.tzinfo is None:
        raise ValueError("until must be an aware datetime (with its time zone)")
    now = clock or (lambda: datetime.now(timezone.utc))
    journal: Journal = await job._db(Journal, job.journal_path)
    try:
        if not journal.loaded:
            raise InputError(f"journal {journal.path} holds no loaded job: nothing to verify")
        options = journal.get_meta("options") or {}
        if options.get("dry_run"):
            raise InputError("a dry run deleted nothing: there is nothing to verify")
        await job._db(lambda: check_host(journal, job.client.host, loaded=True))
        if job.sources:
            await job._db(lambda: check_unchanged(journal, job.sources, job._stop))
        projects = job._projects()
        await projects.settle(journal, loaded=True)
        verification = _Verification(job, journal, projects, queued_grace=queued_grace,
                                     schedule=schedule or EventBatchSchedule(),
                                     on_progress=on_progress, clock=now)
        while True:
            verification.progress.passes += 1
            await verification.run_pass()
            report: JobReport = await job._db(verification.report)
            verification._tell()
            if not wait or verification.progress.state != "pending" or job.stopping:
                return report
            left = interval if until is None else (until - now()).total_seconds()
            if left <= 0:
                return report
            pause = min(interval, left)
            verification.progress.next_check_at = time.time() + pause
            verification._tell()
            end = anyio.current_time() + pause
            while not job.stopping and anyio.current_time() < end:
                await anyio.sleep(min(0.2, end - anyio.current_time()))
            verification.progress.next_check_at = None
            if job.stopping:
                return await job._db(verification.report)
    finally:
        with anyio.CancelScope(shield=True):
            await job._db(journal.close)
