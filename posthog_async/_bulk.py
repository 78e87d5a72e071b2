"""Bulk helpers: any number of ids as calls the server accepts, with every id accounted for.

Input is cleaned and chunked lazily (:mod:`posthog_async._ids`), chunks run concurrently under
the client's limits, and each runs the one per-chunk step (:mod:`posthog_async._chunk_step`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from . import _constants as C
from ._chunk_result import ChunkResult, ChunkState
from ._chunk_step import ChunkIncomplete, ChunkStep, LookupChunk, is_fatal
from ._concurrency import bounded_map
from ._ids import IdCleaner, IdSource, InputStats, RejectedId, cleaned_chunks
from ._models import DeletionError, Person

__all__ = [
    "ChunkFailure", "BulkDeleteReport", "LookupReport", "ProgressCallback", "bulk_delete_all",
    "iter_lookup", "lookup_all",
]

ProgressCallback = Callable[[int, "int | None"], object]
"""``on_progress(done, total)``: ids settled so far, and the total when the input's size is known."""


@dataclass
class ChunkFailure:
    """A chunk that failed for good: its ids and why. Nothing in it was confirmed done."""

    ids: list[str]
    error: Exception

    @property
    def reason(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@dataclass
class BulkDeleteReport:
    """What :func:`bulk_delete_all` did: PostHog's counts summed, and every id accounted for.

    ``outcomes`` counts ids per outcome; ``not_found``/``unresolved`` name them. Counts are
    exact when ``exact`` is true (always with ``resolve=True``).
    """

    input: InputStats = field(default_factory=InputStats)
    rejected: list[RejectedId] = field(default_factory=list)
    chunks: int = 0
    delete_calls: int = 0
    lost_answers: int = 0
    persons_found: int = 0
    persons_deleted: int = 0
    persons_queued_for_deletion: int = 0
    events_queued_for_deletion: bool = False
    recordings_queued_for_deletion: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    not_found: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    deletion_errors: list[DeletionError] = field(default_factory=list)
    failed_chunks: list[ChunkFailure] = field(default_factory=list)
    exact: bool = True
    stopped_early: bool = False
    stop_reason: str | None = None

    @property
    def failed_ids(self) -> list[str]:
        return [i for chunk in self.failed_chunks for i in chunk.ids]

    @property
    def ok(self) -> bool:
        """True when every id was settled: no failure, no invalid id, nothing left unsent."""
        return not (self.failed_chunks or self.input.invalid or self.outcomes["failed"]
                    or self.stopped_early)

    def add(self, result: ChunkResult) -> None:
        self.delete_calls += result.delete_calls
        self.lost_answers += result.lost_answers
        self.persons_found += result.persons_found or 0
        self.persons_deleted += result.persons_deleted
        self.persons_queued_for_deletion += result.persons_queued
        self.events_queued_for_deletion |= result.events_queued
        self.recordings_queued_for_deletion |= result.recordings_queued
        self.deletion_errors.extend(result.deletion_errors)
        self.exact = self.exact and result.exact and result.persons_found is not None
        tally = result.counts()  # per group of ids, not per id
        self.outcomes.update(tally)
        if tally["not_found"]:
            self.not_found.extend(result.ids_with("not_found"))
        if tally["unresolved"]:
            self.unresolved.extend(result.ids_with("unresolved"))

    def fail(self, ids: list[str], error: Exception) -> None:
        self.failed_chunks.append(ChunkFailure(ids, error))
        self.outcomes["failed"] += len(ids)

    def credit_aliases(self, aliases: dict[str, str], persons: dict[str, str]) -> None:
        """An id "not found" because this call had already deleted (or queued) its person
        through another of its ids was deleted (queued), not absent: say so. ``persons`` maps
        each person settled to its outcome; ``aliases`` each distinct id seen to its person."""
        if not (aliases and persons):
            return
        still: list[str] = []
        for key in self.not_found:
            outcome = persons.get(aliases.get(key, ""))
            if outcome in ("deleted", "queued"):
                self.outcomes["not_found"] -= 1
                self.outcomes[outcome] += 1
            else:
                still.append(key)
        self.not_found = still
        seen = Counter(aliases.values())
        wide = C.MAX_LOOKUP_DISTINCT_IDS
        if still and any(seen[p] >= wide for p, o in persons.items() if o != "kept"):
            self.exact = False  # a "not found" id may be an id no lookup showed of one deleted here


async def bulk_delete_all(
    source: IdSource,
    *,
    step: ChunkStep,
    uuids: bool,
    chunk_size: int,
    concurrency: int,
    dedupe: bool = True,
    on_progress: ProgressCallback | None = None,
    stop_on_error: bool = False,
) -> BulkDeleteReport:
    """Clean ``source`` lazily, run ``step`` over chunks of ``chunk_size`` concurrently, sum up."""
    if isinstance(source, (str, bytes)):
        raise TypeError("pass an iterable of ids, not a single string")
    report = BulkDeleteReport()
    cleaner = IdCleaner(uuids=uuids, dedupe=dedupe, stats=report.input,
                        on_reject=report.rejected.append)
    total = len(source) if isinstance(source, Sequence) else None

    async def run(chunk: list[str]) -> ChunkResult:
        return await step.run(ChunkState(chunk))

    async def until_stopped() -> AsyncIterator[list[str]]:
        async for chunk in cleaned_chunks(source, cleaner, chunk_size):
            if report.stopped_early:
                return  # no new chunk; those in flight finish and are counted
            yield chunk

    aliases: dict[str, str] = {}
    persons: dict[str, str] = {}  # person -> its outcome
    done = 0
    results = bounded_map(until_stopped(), run, limit=concurrency)
    try:
        async for chunk, result, error in results:
            report.chunks += 1
            if isinstance(error, ChunkIncomplete):
                result, settled = error.partial, set(error.partial.outcomes)
                report.fail([key for key in chunk if key not in settled], error.cause)
            elif error is not None:
                report.fail(chunk, error)
            if result is not None:
                report.add(result)
                aliases.update(result.aliases)
                outcome = step.success_outcome(queued=result.persons_queued > 0)
                persons.update(dict.fromkeys(result.persons, outcome))
            if error is not None and (stop_on_error or is_fatal(error)) and not report.stopped_early:
                report.stopped_early, report.stop_reason = True, str(error)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
    finally:
        await results.aclose()
    report.credit_aliases(aliases, persons)
    return report


@dataclass
class LookupReport:
    """Merged batch lookups: ``found`` maps each requested id to its person."""

    found: dict[str, Person] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    failed: list[ChunkFailure] = field(default_factory=list)
    input: InputStats = field(default_factory=InputStats)
    rejected: list[RejectedId] = field(default_factory=list)


async def iter_lookup(
    source: IdSource, lookup: LookupChunk, *, chunk_size: int, concurrency: int, uuids: bool,
    cleaner: IdCleaner | None = None,
) -> AsyncGenerator[tuple[list[str], dict[str, Person], Exception | None], None]:
    """Yield ``(chunk, found, error)`` as each lookup call completes."""
    if isinstance(source, (str, bytes)):
        raise TypeError("pass an iterable of ids, not a single string")
    cleaner = cleaner or IdCleaner(uuids=uuids)
    results = bounded_map(cleaned_chunks(source, cleaner, chunk_size), lookup, limit=concurrency)
    try:
        async for chunk, found, error in results:
            yield chunk, found or {}, error
    finally:
        await results.aclose()


async def lookup_all(
    source: IdSource, lookup: LookupChunk, *, chunk_size: int, concurrency: int, uuids: bool
) -> LookupReport:
    """Merge every lookup; a failed call is listed in ``failed``, but an error that no later
    call can escape (a bad key, a missing scope or project: :func:`is_fatal`) is raised at
    once instead of being repeated for every 200 ids."""
    report = LookupReport()
    cleaner = IdCleaner(uuids=uuids, stats=report.input, on_reject=report.rejected.append)
    results = iter_lookup(source, lookup, chunk_size=chunk_size, concurrency=concurrency,
                          uuids=uuids, cleaner=cleaner)
    async with aclosing(results):  # a raise below cancels the lookups in flight now
        async for chunk, found, error in results:
            if error is not None:
                if is_fatal(error):
                    raise error
                report.failed.append(ChunkFailure(chunk, error))
                continue
            report.found.update(found)
            report.not_found.extend(i for i in chunk if i not in found)
    return report

