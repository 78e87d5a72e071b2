"""Bulk helpers: split any number of ids into calls the server accepts and account for each id.

``bulk_delete`` takes at most 1000 ids a call and ``batch_by_distinct_ids`` silently keeps only the
first 200, so these helpers chunk lazily (a generator over a huge file is never loaded whole),
send chunks concurrently under the client's limits, and report every id that was not done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence,
)

from . import _constants as C
from ._concurrency import _as_async, aiter_chunks, bounded_map
from ._models import BulkDeleteResult, DeletionError, Person
from ._validation import is_uuid

if TYPE_CHECKING:
    from .resources.persons import Persons

__all__ = [
    "BulkDeleteReport", "ChunkFailure", "LookupReport", "InputStats",
    "clean_ids", "bulk_delete_all", "iter_lookup", "lookup_all",
]

ProgressCallback = Callable[[int, "int | None"], object]
IdSource = Iterable[str] | AsyncIterable[str]


@dataclass
class ChunkFailure:
    """A chunk that failed for good: its ids and why. Nothing in it was confirmed done."""

    ids: list[str]
    error: Exception

    @property
    def reason(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@dataclass
class InputStats:
    """What cleaning the input dropped, so that ``requested = sent + dropped``."""

    requested: int = 0
    blank: int = 0
    duplicates: int = 0
    invalid: list[str] = field(default_factory=list)


async def clean_ids(
    source: IdSource, stats: InputStats, *, uuids: bool, dedupe: bool = True
) -> AsyncIterator[str]:
    """Strip whitespace; drop blanks, duplicates and (for UUIDs) malformed ids, counting each.

    De-duplication keeps a set of the ids seen (about 100 bytes an id); pass ``dedupe=False``
    for input known to be unique when memory must stay flat whatever its size.
    """
    seen: set[str] = set()
    async for raw in _as_async(source):
        stats.requested += 1
        value = raw.strip() if isinstance(raw, str) else str(raw).strip()
        if not value:
            stats.blank += 1
            continue
        if uuids:
            if not is_uuid(value):
                stats.invalid.append(value)
                continue
            value = value.lower()
        if dedupe:
            if value in seen:
                stats.duplicates += 1
                continue
            seen.add(value)
        yield value


@dataclass
class BulkDeleteReport:
    """The sum of every ``bulk_delete`` call of a job, and every id that was not done."""

    input: InputStats = field(default_factory=InputStats)
    chunks_sent: int = 0
    chunks_succeeded: int = 0
    ids_sent: int = 0
    persons_found: int = 0
    persons_deleted: int = 0
    persons_queued_for_deletion: int = 0
    events_queued_for_deletion: int = 0
    recordings_queued_for_deletion: int = 0
    deletion_errors: list[DeletionError] = field(default_factory=list)
    failed_chunks: list[ChunkFailure] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def failed_ids(self) -> list[str]:
        return [i for chunk in self.failed_chunks for i in chunk.ids]

    @property
    def ok(self) -> bool:
        """True when every chunk succeeded, no id was invalid and no deletion error came back."""
        return not (self.failed_chunks or self.input.invalid or self.deletion_errors
                    or self.stopped_early)

    def add(self, result: BulkDeleteResult) -> None:
        self.chunks_succeeded += 1
        self.persons_found += result.persons_found
        self.persons_deleted += result.persons_deleted
        self.persons_queued_for_deletion += result.persons_queued_for_deletion
        self.events_queued_for_deletion += result.events_queued_for_deletion
        self.recordings_queued_for_deletion += result.recordings_queued_for_deletion
        self.deletion_errors.extend(result.deletion_errors)


async def bulk_delete_all(
    persons: Persons,
    *,
    ids: IdSource | None,
    distinct_ids: IdSource | None,
    delete_events: bool,
    delete_recordings: bool,
    keep_person: bool,
    chunk_size: int,
    concurrency: int,
    on_progress: ProgressCallback | None,
    stop_on_error: bool,
    report_not_found: bool,
    dedupe: bool,
    project_id: str | int | None,
) -> BulkDeleteReport:
    if (ids is None) == (distinct_ids is None):
        raise ValueError("pass exactly one of ids or distinct_ids")
    if isinstance(ids if ids is not None else distinct_ids, (str, bytes)):
        raise TypeError("pass an iterable of ids, not a single string")
    if not 1 <= chunk_size <= C.MAX_BULK_DELETE_IDS:
        raise ValueError(f"chunk_size must be between 1 and {C.MAX_BULK_DELETE_IDS}")
    by_uuid = ids is not None
    source: IdSource = ids if ids is not None else distinct_ids  # type: ignore[assignment]
    report = BulkDeleteReport()
    total = len(source) if isinstance(source, Sequence) else None

    async def send(chunk: list[str]) -> BulkDeleteResult:
        if report_not_found:
            found = await (persons.batch_by_uuids_all if by_uuid else persons.batch_by_distinct_ids_all)(
                chunk, project_id=project_id
            )
            report.not_found.extend(found.not_found)
            if found.failed:
                raise found.failed[0].error
        kwargs = {"ids": chunk} if by_uuid else {"distinct_ids": chunk}
        return await persons.bulk_delete(
            **kwargs, delete_events=delete_events, delete_recordings=delete_recordings,
            keep_person=keep_person, project_id=project_id,
        )

    chunks = aiter_chunks(clean_ids(source, report.input, uuids=by_uuid, dedupe=dedupe), chunk_size)
    done = 0
    results = bounded_map(chunks, send, limit=concurrency)
    try:
        async for chunk, result, error in results:
            report.chunks_sent += 1
            report.ids_sent += len(chunk)
            if error is not None:
                report.failed_chunks.append(ChunkFailure(chunk, error))
            elif result is not None:
                report.add(result)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
            if error is not None and stop_on_error:
                report.stopped_early = True
                break
    finally:
        await results.aclose()
    return report


@dataclass
class LookupReport:
    """Merged batch lookups: ``found`` maps each requested id to its person."""

    found: dict[str, Person] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    failed: list[ChunkFailure] = field(default_factory=list)
    input: InputStats = field(default_factory=InputStats)


Lookup = Callable[[list[str]], Awaitable[dict[str, Person]]]


async def iter_lookup(
    source: IdSource, lookup: Lookup, *, chunk_size: int, concurrency: int, uuids: bool,
    stats: InputStats | None = None,
) -> AsyncIterator[tuple[list[str], dict[str, Person], Exception | None]]:
    """Yield ``(chunk, found, error)`` as each lookup call completes."""
    cleaned = clean_ids(source, stats or InputStats(), uuids=uuids)
    results = bounded_map(aiter_chunks(cleaned, chunk_size), lookup, limit=concurrency)
    try:
        async for chunk, found, error in results:
            yield chunk, found or {}, error
    finally:
        await results.aclose()


async def lookup_all(
    source: IdSource, lookup: Lookup, *, chunk_size: int, concurrency: int, uuids: bool
) -> LookupReport:
    report = LookupReport()
    async for chunk, found, error in iter_lookup(
        source, lookup, chunk_size=chunk_size, concurrency=concurrency, uuids=uuids,
        stats=report.input,
    ):
        if error is not None:
            report.failed.append(ChunkFailure(chunk, error))
            continue
        report.found.update(found)
        report.not_found.extend(i for i in chunk if i not in found)
    return report
