"""Bulk helpers: any number of ids as calls the server accepts, with every id accounted for.

Input is cleaned and chunked lazily (:mod:`posthog_async._ids`), chunks run concurrently under
the client's limits, and each runs the one per-chunk step (:mod:`posthog_async._chunk_step`).
"""

from __future__ import annotations

from collections import Counter, deque
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
    """What :func:`bulk_delete_all` did: every id accounted for, and the persons counted.

    ``outcomes`` counts every id per outcome; ``not_found``, ``unresolved`` and ``rejected``
    name the first :attr:`named` of theirs (1000 by default), so the report stays small however
    many ids there were (a per-id record of any size is ``DeletionJob``'s journal). With lookups
    (``resolve=True``) each person is counted once, by uuid (deleted before queued); without,
    ``persons_*`` are PostHog's per-call counts, summed. They are exact when ``exact`` is true;
    outcomes are exact per id when no id is ``unresolved``.
    """

    input: InputStats = field(default_factory=InputStats)
    rejected: list[RejectedId] = field(default_factory=list)
    chunks: int = 0
    #: ``bulk_delete`` calls PostHog may have acted on: answered 2xx, or answer lost (not the
    #: calls it refused, a 429 or another 4xx, nor those refused a connection).
    delete_calls: int = 0
    #: Of those, the calls whose outcome was not heard (a dropped connection, a 5xx).
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
    #: The most ids each of ``not_found``, ``unresolved`` and ``rejected`` names.
    named: int = C.REPORT_NAMED_IDS
    _finding: int = field(default=0, repr=False, compare=False)  # calls that found persons
    _stayed: int = field(default=0, repr=False, compare=False)  # ... some of whom were not deleted

    @property
    def failed_ids(self) -> list[str]:
        return [i for chunk in self.failed_chunks for i in chunk.ids]

    @property
    def ok(self) -> bool:
        """True when every id was settled: no failure, no invalid id, nothing left unsent."""
        return not (self.failed_chunks or self.input.invalid or self.outcomes["failed"]
                    or self.stopped_early)

    def add(self, result: ChunkResult) -> list[str]:
        """Sum a settled chunk. Its "not found" ids are returned, not counted: the caller settles
        them (:meth:`settle_not_found`) once no chunk that may have deleted their person through
        another id is still out."""
        self.delete_calls += result.delete_calls
        self.lost_answers += result.lost_answers
        self.persons_found += result.persons_found or 0
        self.persons_deleted += result.persons_deleted
        self.persons_queued_for_deletion += result.persons_queued
        self.events_queued_for_deletion |= result.events_queued
        self.recordings_queued_for_deletion |= result.recordings_queued
        self.deletion_errors.extend(result.deletion_errors)
        self.exact = self.exact and result.exact and result.persons_found is not None
        if result.persons_found:
            self._finding += 1
            self._stayed += result.persons_found > result.persons_deleted
        tally = result.counts()  # per group of ids, not per id
        del tally["not_found"]
        self.outcomes.update(tally)
        if tally["unresolved"]:
            self._name(self.unresolved, result.ids_with("unresolved"))
        return result.ids_with("not_found")

    def _name(self, names: list[str], ids: list[str]) -> None:
        if len(names) < self.named:
            names.extend(ids[:self.named - len(names)])

    def reject(self, item: RejectedId) -> None:
        if len(self.rejected) < self.named:
            self.rejected.append(item)

    def fail(self, ids: list[str], error: Exception) -> None:
        self.failed_chunks.append(ChunkFailure(ids, error))
        self.outcomes["failed"] += len(ids)

    def settle_not_found(self, ids: list[str], persons: _Persons, *, proven: bool = True) -> None:
        """An id "not found" because this call had already deleted (or queued) its person
        through another of its ids was deleted (queued), not absent: say so. The rest are
        counted (and named, up to :attr:`named`) as not found, or, when that is not ``proven``
        (no lookup, and an earlier call may have deleted their person), as unresolved."""
        still = ids
        if persons.outcome:
            still = []
            for key in ids:
                outcome = persons.of(key)
                if outcome in ("deleted", "queued"):
                    self.outcomes[outcome] += 1
                else:
                    still.append(key)
        outcome = "not_found" if proven else "unresolved"
        self.outcomes[outcome] += len(still)
        self._name(self.not_found if proven else self.unresolved, still)

    def finish(self, persons: _Persons, *, resolve: bool, repeats_possible: bool) -> None:
        """Person totals, and whether they are exact. With lookups each person is counted once
        (deleted before queued); without, PostHog's per-call counts are summed, and they may
        count a person twice if one call left them findable (queued, kept, failed) and another
        call found persons by ids that may name them too."""
        if resolve and self.exact:
            self.persons_found = len(persons.outcome.keys() | persons.failed)
            tally = Counter(persons.outcome.values())
            self.persons_deleted, self.persons_queued_for_deletion = tally["deleted"], tally["queued"]
        elif self._stayed and self._finding >= 2 and repeats_possible:
            self.exact = False
        if self.outcomes["not_found"] and persons.wide():
            self.exact = False  # a "not found" id may be one no lookup showed of one deleted here


@dataclass
class _Persons:
    """The persons a run found by lookups (resolve mode, or a recheck after a lost answer).

    ``aliases`` maps every id a lookup saw to its person; ``outcome`` each person to the best of
    its ids' outcomes (deleted before queued before kept); ``failed`` the persons PostHog could
    not delete. Grows with the persons found (not with ids that were not).
    """

    uuids: bool
    aliases: dict[str, str] = field(default_factory=dict)
    outcome: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def of(self, key: str) -> str | None:
        return self.outcome.get(key if self.uuids else self.aliases.get(key, ""))

    def add(self, result: ChunkResult) -> None:
        self.aliases.update(result.aliases)
        self.failed.update(e.person_uuid for e in result.deletion_errors if e.person_uuid)
        rank = {"deleted": 0, "queued": 1, "kept": 2}
        for ids, outcome, _ in result.groups:
            if outcome not in rank or not (self.uuids or self.aliases):
                continue
            for key in ids:
                person = key if self.uuids else self.aliases.get(key)
                if person is not None and rank[outcome] < rank.get(self.outcome.get(person, ""), 3):
                    self.outcome[person] = outcome

    def wide(self) -> bool:
        """A person deleted here showed 10 distinct ids (all a lookup shows): they may have more."""
        seen = Counter(self.aliases.values())
        return any(seen[p] >= C.MAX_LOOKUP_DISTINCT_IDS for p, o in self.outcome.items()
                   if o != "kept")


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
    cleaner = IdCleaner(uuids=uuids, dedupe=dedupe, stats=report.input, on_reject=report.reject)
    total = len(source) if isinstance(source, Sequence) else None
    step.ledger.repeats = not dedupe

    async def run(item: tuple[int, list[str]]) -> ChunkResult:
        chunk = item[1]
        unique = chunk if dedupe else list(dict.fromkeys(chunk))
        if len(unique) == len(chunk):
            return await step.run(ChunkState(chunk))
        try:  # without de-duplication, a chunk may repeat an id: send it once, count each copy
            result = await step.run(ChunkState(unique))
        except ChunkIncomplete as error:
            error.partial.repeat(chunk)
            raise
        result.repeat(chunk)
        return result

    started = 0
    out: set[int] = set()  # the chunks started and not yet settled

    async def until_stopped() -> AsyncIterator[tuple[int, list[str]]]:
        nonlocal started
        async for chunk in cleaned_chunks(source, cleaner, chunk_size):
            if report.stopped_early:
                return  # no new chunk; those in flight finish and are counted
            out.add(started)
            started += 1
            yield started - 1, chunk

    persons = _Persons(uuids)
    # "Not found" ids wait until every chunk started before theirs settled (one of those may
    # have deleted their person through another id first, and says so only when it settles):
    # (chunks started when they settled, their ids, their RunLedger bound). Only ids settled
    # while an older chunk is still out wait here, so this stays small.
    waiting: deque[tuple[int, list[str], int | None]] = deque()

    def settle_waiting(final: bool = False) -> None:
        oldest = min(out, default=started)
        while waiting and (final or waiting[0][0] <= oldest):
            _, ids, bound = waiting.popleft()
            proven = bound is None or step.ledger.proves_absent(
                step.kind, bound, looked_up=step.resolve)
            report.settle_not_found(ids, persons, proven=proven)

    done = 0
    results = bounded_map(until_stopped(), run, limit=concurrency)
    try:
        async for (index, chunk), result, error in results:
            out.discard(index)
            report.chunks += 1
            if isinstance(error, ChunkIncomplete):
                result, settled = error.partial, set(error.partial.outcomes)
                report.fail([key for key in chunk if key not in settled], error.cause)
            elif error is not None:
                report.fail(chunk, error)
            if result is not None:
                absent = report.add(result)
                if step.resolve or result.persons:  # without lookups, nothing to keep per person
                    persons.add(result)
                if absent:
                    waiting.append((started, absent, result.bound))
            settle_waiting()
            if error is not None and (stop_on_error or is_fatal(error)) and not report.stopped_early:
                report.stopped_early, report.stop_reason = True, str(error)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
    finally:
        await results.aclose()
    settle_waiting(final=True)
    report.finish(persons, resolve=step.resolve, repeats_possible=not uuids or not dedupe)
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

