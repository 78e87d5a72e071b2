"""The one per-chunk deletion step: look a chunk up, delete it, settle every id exactly.

``bulk_delete`` takes at most 1000 ids a call and answers with counts, not names. To say what
happened to each id, a chunk can be looked up first (``resolve``): then every outcome is exact.
When an answer is lost (a dropped connection, a 5xx, a crash), re-sending blindly would find
nobody for the persons the lost call deleted and report them "not found"; so a chunk whose
outcome is unknown is looked up again before it is re-sent: ids found before and gone now were
deleted by the lost call.

The step takes plain callables (delete a chunk, look a chunk up), so it knows nothing of
resources; :func:`~posthog_async._bulk.bulk_delete_all` and ``DeletionJob`` both run it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import anyio

from ._chunk_result import (
    ChunkResult, ChunkState, Kind, Outcome, RunLedger, settle_answer, settle_uncounted,
    wide_persons,
)
from ._exceptions import (
    APIConnectionError, APIStatusError, AuthenticationError, InternalServerError, NotFoundError,
    PermissionDeniedError, PostHogError, RateLimitError, RedirectError,
    UnexpectedResponseError, WaitAbandonedError,
)
from ._models import BulkDeleteResult, Person, answer_status

__all__ = [
    "DeleteChunk", "LookupChunk", "WaitCallback", "ChunkIncomplete", "ChunkAbandoned",
    "ChunkRecorder", "ChunkStep", "is_fatal",
]

#: ``delete(ids)``: one ``bulk_delete`` call of at most 1000 ids.
DeleteChunk = Callable[[list[str]], Awaitable[BulkDeleteResult]]
#: ``lookup(ids)``: one batch lookup of at most 200 ids -> ``{id: person}``.
LookupChunk = Callable[[list[str]], Awaitable[dict[str, Person]]]
#: ``on_wait(seconds, error)``: PostHog asked for a wait longer than the client sleeps through.
WaitCallback = Callable[[float, RateLimitError], object]


#: A wait for PostHog's rate limit longer than this makes a chunk's lookup worth doing again.
STALE_LOOKUP = 60.0


def is_fatal(error: BaseException) -> bool:
    """Errors no retry will heal for the rest of a job: a bad key, a missing scope or project,
    a server that refuses connections."""
    if isinstance(error, ChunkIncomplete):
        return is_fatal(error.cause)
    if isinstance(error, (AuthenticationError, PermissionDeniedError, NotFoundError, RedirectError)):
        return True
    if isinstance(error, APIConnectionError):
        return not error.maybe_processed
    return isinstance(error, PostHogError) and not isinstance(error, APIStatusError)


def _outcome_unknown(error: BaseException) -> bool:
    """The call may have been processed: the answer was lost, the server failed midway, or a
    2xx came back whose body is not PostHog's answer (a proxy's page)."""
    return isinstance(error, InternalServerError) or (
        isinstance(error, (APIConnectionError, UnexpectedResponseError))
        and error.maybe_processed)


class ChunkIncomplete(Exception):
    """A chunk given up on (its last error is ``cause``): ``partial`` holds the outcomes that
    are known, every other id of the chunk failed."""

    def __init__(self, cause: Exception, partial: ChunkResult) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause, self.partial = cause, partial


class ChunkAbandoned(Exception):
    """The run was asked to stop while this chunk waited (for PostHog's rate limit, or to retry):
    nothing of it is settled here; ``state.answer_lost`` says whether a send may have gone through."""


class ChunkRecorder(Protocol):
    """Where a step reports progress that must survive a crash (the job's journal).

    ``sending`` comes before every ``bulk_delete`` call (``seq``: its number in the job, see
    :class:`RunLedger`); the call then ends in a settled result, or in ``unanswered``: ``lost``
    when it may have been processed and its answer tells nothing (a dropped connection, a 5xx,
    a 2xx body that is not PostHog's answer, an answer whose lookup after it failed), not when
    it was refused unprocessed (a 429 or other 4xx, a refused connection, the client's own
    rate limit, a stop while it waited to be sent). A call that ends in neither (the process
    died, or the run was cancelled) had its answer lost too.
    """

    async def looked_up(self, state: ChunkState) -> None: ...

    async def sending(self, state: ChunkState, seq: int) -> None: ...

    async def unanswered(self, state: ChunkState, *, lost: bool) -> None: ...


class ChunkStep:
    """Look a chunk up (optional), delete it, and settle every id, whatever goes wrong between.

    ``patience`` bounds how long (seconds) a chunk keeps retrying failures that may heal (5xx,
    timeouts, dropped connections) before it is reported failed. A ``Retry-After`` longer than
    the transport sleeps through is waited out here (``on_wait`` is told), not counted as failure.
    ``should_stop`` is polled while waiting: when it turns true, the chunk is abandoned
    (:class:`ChunkAbandoned`) instead of being sent after the wait; a wait inside the transport
    that a :class:`~posthog_async._admission.WaitStop` ends abandons it too.

    :attr:`ledger` is what the run's chunks know of each other (share one between the steps of
    a run, seed it when resuming): the persons they deleted, so a person a lookup found that
    PostHog no longer counts because an earlier chunk deleted it through another of its ids
    does not make the chunk's counts look stale; and whether any call may have removed a
    person, so that without lookups "not found" is claimed only where it is proven.
    ``delete_events``/``delete_recordings`` are what the calls ask for: a call whose answer was
    lost queued them for the persons it deleted, whatever the re-send says.
    """

    def __init__(
        self,
        *,
        delete: DeleteChunk | None,
        lookup: LookupChunk | None,
        lookup_size: int,
        resolve: bool,
        kind: Kind = "distinct_ids",
        keep_person: bool = False,
        delete_events: bool = False,
        delete_recordings: bool = False,
        patience: float = 600.0,
        on_wait: WaitCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        if resolve and lookup is None:
            raise ValueError("resolve needs a lookup")
        self.delete, self.lookup, self.lookup_size = delete, lookup, lookup_size
        self.resolve, self.kind, self.keep_person = resolve, kind, keep_person
        self.delete_events, self.delete_recordings = delete_events, delete_recordings
        self.patience, self.on_wait, self.should_stop = patience, on_wait, should_stop
        self.ledger = RunLedger()

    @property
    def deleted(self) -> set[str]:
        """The persons the run's chunks deleted (or queued) so far, by uuid."""
        return self.ledger.deleted

    async def find(self, ids: Sequence[str],
                   aliases: dict[str, str] | None = None) -> dict[str, str]:
        """``{id: person uuid}`` for the ids that match a person (batch lookups, in order);
        ``aliases`` collects every distinct id of the persons found."""
        assert self.lookup is not None
        found: dict[str, str] = {}
        for start in range(0, len(ids), self.lookup_size):
            persons = await self._patiently(list(ids[start:start + self.lookup_size]))
            found.update((key, person.uuid) for key, person in persons.items())
            if aliases is not None:
                aliases.update((alias, person.uuid) for person in persons.values()
                               for alias in person.distinct_ids)
                if self.kind != "ids":  # the id looked up, even if not among the 10 shown
                    aliases.update((key, person.uuid) for key, person in persons.items())
        return found

    async def _look_up(self, state: ChunkState, recorder: ChunkRecorder | None) -> None:
        state.found = await self.find(state.ids, state.aliases)
        state.bound = self.ledger.next_seq
        if recorder is not None:
            await recorder.looked_up(state)

    async def run(self, state: ChunkState, recorder: ChunkRecorder | None = None) -> ChunkResult:
        """Settle ``state.ids``. Raises what will not heal (see :func:`is_fatal`), or the chunk's
        last error; :class:`ChunkIncomplete` when some of its ids were settled first."""
        if self.resolve and state.found is None:
            await self._look_up(state, recorder)
        if self.delete is None:  # a dry run: the lookup is the answer
            assert state.found is not None
            result = ChunkResult(persons_found=len(set(state.found.values())))
            result.add([i for i in state.ids if i in state.found], "found")
            result.add([i for i in state.ids if i not in state.found], "not_found")
            return result
        settled: dict[str, tuple[Outcome, str | None]] = {}
        persons_gone: set[str] = set()
        delete_calls = lost = refusals = 0
        first_seq: int | None = None
        deadline: float | None = None  # patience runs from the first failure that may heal
        try:
            while True:
                to_send, found_now, exact = list(state.ids), state.found, True
                if state.answer_lost:
                    to_send, found_now, exact = await self._recheck(state, settled, persons_gone)
                if not to_send:
                    result = ChunkResult(exact=exact)
                    break
                self._check_stop()
                seq = self.ledger.take()
                first_seq = seq if first_seq is None else first_seq
                if recorder is not None:
                    await recorder.sending(state, seq)
                try:
                    answer = await self._send(to_send, seq)
                except RateLimitError as error:  # refused, not processed: wait as PostHog says
                    if recorder is not None:
                        await recorder.unanswered(state, lost=False)
                    refusals += 1
                    waited = await self._wait(error, attempt=refusals)
                    if deadline is not None:
                        deadline += waited
                    if self.resolve and not state.answer_lost and waited > STALE_LOOKUP:
                        await self._look_up(state, recorder)  # the data may have changed since
                    continue
                except WaitAbandonedError as error:  # a stop ended a wait: not sent (again)
                    if recorder is not None:
                        await recorder.unanswered(state, lost=error.maybe_processed)
                    state.answer_lost |= error.maybe_processed
                    raise ChunkAbandoned(str(error)) from error
                except Exception as error:
                    unknown = _outcome_unknown(error)
                    if recorder is not None:
                        await recorder.unanswered(state, lost=unknown)
                    if not unknown:
                        raise
                    delete_calls += 1
                    state.answer_lost = True
                    lost += 1
                    if is_fatal(error):  # not PostHog's answer: stop; a resume looks it up first
                        raise
                    now = anyio.current_time()
                    deadline = now + self.patience if deadline is None else deadline
                    if now >= deadline:  # a last look settles what it can
                        left, _, exact = await self._recheck(state, settled, persons_gone)
                        if left:
                            raise
                        result = ChunkResult(exact=exact)  # the lost calls did it all
                        break
                    await self._sleep(_backoff(lost))
                    continue
                delete_calls += 1
                state.answer_lost = True  # processed: until recorded, its outcome is ours only
                try:
                    result = await self._settle(state, to_send, found_now, answer)
                except Exception:  # the lookup after it failed: its answer is lost to us
                    lost += 1
                    if recorder is not None:
                        await recorder.unanswered(state, lost=True)
                    raise
                result.exact = result.exact and exact
                break
        except ChunkAbandoned:
            raise
        except Exception as error:
            if (settled or persons_gone) and isinstance(error, PostHogError):
                partial = self._with_settled(ChunkResult(exact=False, aliases=state.aliases),
                                             settled, persons_gone, delete_calls, lost)
                if not self.keep_person:
                    self.ledger.deleted |= partial.persons
                raise ChunkIncomplete(error, partial) from error
            raise  # a journal that cannot be written, say: not the chunk's failure
        result.aliases = state.aliases
        self._with_settled(result, settled, persons_gone, delete_calls, lost)
        if result.counts()["not_found"]:  # proven later: see RunLedger.proves_absent
            looked = state.bound if self.resolve else None  # None: rebuilt, not looked up here
            result.bound = self.ledger.next_seq if looked is None else looked
        if not self.keep_person:
            self.ledger.deleted |= result.persons
            if first_seq is not None and result.persons & wide_persons(state.aliases):
                self.ledger.removed_wide(first_seq)
        return result

    async def _settle(self, state: ChunkState, ids: list[str], found: dict[str, str] | None,
                      answer: BulkDeleteResult) -> ChunkResult:
        """Every id's outcome from PostHog's answer, and from a lookup after it where the answer
        does not name enough: the persons PostHog failed on (without a lookup before), or the
        answer had no counts (an old PostHog's bare 202, or a body that is not its answer at
        all, which proves nothing)."""
        uncounted = not answer.counts_known and self.lookup is not None
        after = None
        if uncounted or (answer.deletion_errors and found is None):
            after = await self.find(ids, state.aliases)
        if uncounted:
            assert after is not None
            if after:  # PostHog deletes before it answers, even its oldest 202: not its answer
                raise UnexpectedResponseError(
                    f"POST persons/bulk_delete/: accepted without counts (a "
                    f"{answer_status(answer)} with no bulk_delete answer), yet {len(after):,} of "
                    f"its {len(ids):,} ids still name a person: not PostHog's answer (a proxy, a "
                    "firewall or a login page in the way?)", method="POST",
                    path="persons/bulk_delete/", status_code=answer_status(answer), body=None,
                    maybe_processed=True)
            return settle_uncounted(ids, found, delete_events=self.delete_events)
        queued = (answer.persons_queued_for_deletion or 0) > 0
        return settle_answer(ids, found, answer, after, deleted=self.deleted,
                             success=self.success_outcome(queued=queued))

    async def _send(self, ids: list[str], seq: int) -> BulkDeleteResult:
        """Call ``seq``: one ``bulk_delete``, told to the ledger if it may have removed a person
        (its answer says so or says nothing, or it may have been processed unanswered)."""
        assert self.delete is not None
        removed = True
        try:
            answer = await self.delete(ids)
            removed = answer.persons_found is None or bool(
                (answer.persons_deleted or 0) + (answer.persons_queued_for_deletion or 0))
        except PostHogError as error:
            removed = _outcome_unknown(error) or getattr(error, "maybe_processed", False)
            raise
        finally:
            if removed:
                self.ledger.removed(self.kind, seq)
        return answer

    def _with_settled(self, result: ChunkResult, settled: dict[str, tuple[Outcome, str | None]],
                      persons_gone: set[str], delete_calls: int, lost: int) -> ChunkResult:
        result.add_each(settled)
        if persons_gone:  # the lost calls found them, and queued what they asked for
            result.persons_found = (result.persons_found or 0) + len(persons_gone)
            result.persons_deleted += len(persons_gone)
            result.persons |= persons_gone
            result.events_queued |= self.delete_events
            result.recordings_queued |= self.delete_recordings
        result.delete_calls, result.lost_answers = delete_calls, lost
        return result

    async def _recheck(
        self, state: ChunkState, settled: dict[str, tuple[Outcome, str | None]],
        persons_gone: set[str],
    ) -> tuple[list[str], dict[str, str] | None, bool]:
        """After a lost answer: who is still there? Returns what to re-send, and its lookup."""
        present = await self.find(state.ids, state.aliases)
        if state.found is not None:
            for key, person in state.found.items():
                if key in present:
                    continue
                if person in self.deleted and person not in state.own:  # counted where it was
                    settled[key] = ("deleted", "its person was deleted by this job through "
                                               "another of its ids")
                else:
                    settled[key] = ("deleted", "deleted by a call whose answer was lost")
                    persons_gone.add(person)
            return [i for i in state.ids if i not in settled], present, True
        absent = [key for key in state.ids if key not in present]
        for key in absent:
            settled[key] = ("unresolved", "not there after a call whose answer was lost: "
                            "deleted by it, or never there (look ups first make this exact)")
        return [i for i in state.ids if i in present], present, not absent

    async def _patiently(self, batch: list[str]) -> dict[str, Person]:
        """A lookup (safe to repeat), retried through long waits and failures that may heal."""
        assert self.lookup is not None
        started, attempt = anyio.current_time(), 0
        while True:
            attempt += 1
            try:
                return await self.lookup(batch)
            except WaitAbandonedError as error:  # a stop ended the transport's wait
                raise ChunkAbandoned(str(error)) from error
            except RateLimitError as error:
                await self._wait(error, attempt=attempt)
            except (InternalServerError, APIConnectionError) as error:
                if is_fatal(error) or anyio.current_time() - started > self.patience:
                    raise
                await self._sleep(_backoff(attempt))

    def success_outcome(self, *, queued: bool) -> Outcome:
        """What a person PostHog found and did not fail on became: kept, queued or deleted."""
        return "kept" if self.keep_person else ("queued" if queued else "deleted")

    def _check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise ChunkAbandoned("stopped before this chunk was settled")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, giving up early (:class:`ChunkAbandoned`) when the run is asked to stop."""
        if self.should_stop is None:
            await anyio.sleep(seconds)
            return
        end = anyio.current_time() + seconds
        while True:
            self._check_stop()
            left = end - anyio.current_time()
            if left <= 0:
                return
            await anyio.sleep(min(left, 0.2))

    async def _wait(self, error: RateLimitError, *, attempt: int) -> float:
        seconds = error.retry_after if error.retry_after is not None else _backoff(attempt)
        if self.on_wait is not None:
            self.on_wait(seconds, error)
        await self._sleep(seconds)
        return seconds

def _backoff(attempt: int) -> float:
    return float(min(60.0, 0.5 * 2 ** min(attempt - 1, 8)))
