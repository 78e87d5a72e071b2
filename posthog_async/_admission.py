"""When a call may send: a concurrency slot, and room in every rate-limit bucket it counts in.

A call never waits for a bucket while it holds a concurrency slot. A slot held through a
bucket's pacing or a spent window is a slot every other bucket needs: a paced bulk delete would
slow a web app's reads fivefold, a spent hourly window would stall them for most of an hour.
So each bucket has a FIFO queue per loop (a :class:`~posthog_async._pool.Turn`); the call at
the head waits for the bucket's room *without* a slot, then takes a slot and records its send
in the limiter under it, at the moment it leaves. A send is never recorded ahead of time, so
no reservation made earlier can burst out later and break a window (locally or in Redis).
Calls of other buckets meanwhile take slots freely.

Every wait is bounded. A wait for a bucket longer than the call may wait (``max_wait``, what
is left of its ``deadline``, or ``max_retry_after`` for a single hold or spent window) raises
:class:`RateLimitWaitError` at once, carrying ``retry_after``; a slot or backoff wait that
reaches the deadline raises :class:`DeadlineExceededError`; ``aclose()`` cancels every wait.

A run that may be stopped (the deletion job: Ctrl-C, SIGTERM) makes its calls under a
:class:`WaitStop` (:data:`STOP`, a context variable its tasks inherit). Once it is set, from any
thread, every bucket wait and retry sleep of those calls ends at once with
:class:`WaitAbandonedError`: the call is not sent (again), while sends already out go on and
are answered. Example::

    stop = WaitStop()
    token = STOP.set(stop)
    try:
        await ph.persons.bulk_delete(distinct_ids=ids)  # stop.set() elsewhere ends its waits
    finally:
        STOP.reset(token)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import urlsplit

import anyio

from ._exceptions import (
    APIConnectionError,
    APIError,
    DeadlineExceededError,
    InternalServerError,
    PostHogError,
    RateLimitWaitError,
    WaitAbandonedError,
)
from ._pool import CLOSED_MESSAGE, LoopPool
from ._queues import Turn
from ._ratelimit import BUCKETS, Bucket, RateLimiter, RateLimits

__all__ = ["Call", "Admission", "WaitStop", "STOP"]


class WaitStop(threading.Event):
    """An event that, once set (from any thread), ends the transport's waits of the calls made
    under it (:data:`STOP`): they raise :class:`WaitAbandonedError` instead of being sent."""

    def __init__(self) -> None:
        super().__init__()
        self._mutex = threading.Lock()
        self._waits: dict[anyio.CancelScope, asyncio.AbstractEventLoop] = {}

    def set(self) -> None:
        super().set()
        with self._mutex:
            waits = list(self._waits.items())
        for scope, loop in waits:
            loop.call_soon_threadsafe(scope.cancel)

    def add(self, scope: anyio.CancelScope, loop: asyncio.AbstractEventLoop) -> None:
        with self._mutex:
            self._waits[scope] = loop
        if self.is_set():  # set meanwhile: never miss it
            loop.call_soon_threadsafe(scope.cancel)

    def discard(self, scope: anyio.CancelScope) -> None:
        with self._mutex:
            self._waits.pop(scope, None)


#: The stop of the run the current task belongs to (``None``: waits end only as bounded).
STOP: ContextVar[WaitStop | None] = ContextVar("posthog_async_wait_stop", default=None)



class Call:
    """One API call: its buckets, its bounds, and what it has done so far (for its errors)."""

    __slots__ = ("attempts", "bucket_waited", "buckets", "deadline", "end", "last_error",
                 "max_retries", "max_retry_after", "max_wait", "method", "started", "url")

    def __init__(self, method: str, url: str, buckets: tuple[Bucket, ...], started: float,
                 deadline: float | None, max_wait: float | None, max_retries: int | None,
                 max_retry_after: float) -> None:
        # Positional, and nothing computed: one of these is made per call, on the hot path.
        self.method, self.url, self.buckets, self.started = method, url, buckets, started
        self.deadline, self.max_wait, self.max_retries = deadline, max_wait, max_retries
        self.max_retry_after = max_retry_after
        self.end = None if deadline is None else started + deadline
        self.attempts = 0
        self.bucket_waited = 0.0
        self.last_error: APIError | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def deadline_error(self, now: float, waiting_for: str, *,
                       in_attempt: bool = False) -> DeadlineExceededError:
        """The deadline came while the call waited for ``waiting_for``."""
        last = self.last_error
        assert self.deadline is not None
        text = (f"{self.method} {self.path}: deadline of {self.deadline:g}s exceeded after "
                f"{now - self.started:.2f}s ({self.attempts} attempt"
                f"{'' if self.attempts == 1 else 's'}; waiting for {waiting_for})")
        if last is not None:
            text += f"; last error: {last}"
        return DeadlineExceededError(
            text, method=self.method, path=self.path, deadline=self.deadline,
            waited=now - self.started, attempts=self.attempts, waiting_for=waiting_for,
            last_error=last, maybe_processed=in_attempt or _maybe_processed(last))

    def stopped_error(self, waiting_for: str) -> WaitAbandonedError:
        """The call's run was asked to stop while it waited for ``waiting_for``: not sent."""
        return WaitAbandonedError(
            f"{self.method} {self.path}: not sent: the run was asked to stop while the call "
            f"waited for {waiting_for}", method=self.method, path=self.path,
            maybe_processed=_maybe_processed(self.last_error))

    def wait_error(self, buckets: tuple[Bucket, ...], wait: float, bound: str,
                   limit: float) -> RateLimitWaitError:
        """Waiting ``wait`` seconds for ``buckets`` is more than ``bound`` allows: not sent."""
        names = ", ".join(repr(b) for b in buckets)
        if bound == "max_wait":
            allowed = f"its max_wait of {self.max_wait:g}s"
            if self.bucket_waited >= 0.005:
                allowed += f" ({self.bucket_waited:.2f}s waited already)"
        elif bound == "deadline":
            allowed = f"the {limit:.2f}s left of its deadline of {self.deadline:g}s"
        else:
            allowed = f"max_retry_after ({self.max_retry_after:g}s), the longest wait it sleeps through"
        return RateLimitWaitError(
            f"{self.method} {self.path}: not sent: rate-limit bucket{'s' if len(buckets) > 1 else ''}"
            f" {names} would make it wait {wait:.2f}s, longer than {allowed}",
            method=self.method, path=self.path, retry_after=wait, bucket=buckets[0], bound=bound,
            limit=limit)


def _maybe_processed(error: APIError | None) -> bool:
    """Whether the attempt that ended with ``error`` may have done its work on the server."""
    if isinstance(error, APIConnectionError):
        return error.maybe_processed
    return isinstance(error, InternalServerError) and error.status_code in (500, 502, 504)


class Admission:
    """The slow path of taking a slot: bucket queues, pacing, shedding, bounded waits."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        limits = getattr(limiter, "limits", None)
        self._limits = limits if isinstance(limits, RateLimits) else None
        self._orders: dict[tuple[Bucket, ...], tuple[Bucket, ...]] = {}
        self.closed = False

    async def admit(self, pool: LoopPool, call: Call) -> None:
        """Return holding a slot, with the send recorded in every bucket of the call."""
        limiter = self.limiter
        if limiter is None:
            await self.slot(pool, call)
            return
        order = self._order(call.buckets)
        turns = [pool.turn(b) for b in order]
        for turn in turns:
            turn.count += 1
        held: list[Turn] = []
        try:
            if call.max_wait is not None or call.end is not None:  # shed before queueing
                ahead = max(turn.count for turn in turns) - 1
                estimate = await limiter.wait_time(order, ahead=ahead)
                self._check(pool, call, order, estimate, single_wait=ahead == 0)
            for i, turn in enumerate(turns):  # narrowest first: see RateLimits.turn_order
                await self._queue(pool, call, turn, order)
                held.append(turn)
                if i < len(turns) - 1 or pool.slots.locked():  # else reserve() says (one trip)
                    await self._until_room(pool, call, order[:i + 1])
            while True:
                await self.slot(pool, call)
                try:
                    wait = await limiter.reserve(order)
                except BaseException:
                    pool.slots.release()
                    raise
                if wait <= 0:
                    return
                pool.slots.release()  # room went (another process, a new hold): wait again
                await self._until_room(pool, call, order, wait)
        finally:
            for turn in turns:
                turn.count -= 1
            for turn in held:
                turn.lock.release()

    async def slot(self, pool: LoopPool, call: Call) -> None:
        """A concurrency slot, waiting at most until the call's deadline."""
        if self.closed or pool.closed:
            raise PostHogError(CLOSED_MESSAGE)
        if not await pool.slots.take(call.end):  # aclose ends the wait too
            raise self._ended(pool, call, "a concurrency slot")

    async def sleep(self, pool: LoopPool, call: Call, seconds: float, what: str) -> None:
        """Sleep ``seconds`` (already checked against the deadline); ``aclose`` interrupts."""
        with self._bounded(pool, call, None, what) as scope:
            await anyio.sleep(seconds)
        if scope.cancelled_caught:
            raise self._ended(pool, call, what)

    # -- internals -------------------------------------------------------------------------

    def _order(self, buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
        order = self._orders.get(buckets)
        if order is None:
            if self._limits is not None:
                order = self._limits.turn_order(buckets)
            else:
                rank = {b: i for i, b in enumerate(BUCKETS)}
                order = tuple(sorted(buckets, key=lambda b: (rank.get(b, len(rank)), b)))
            self._orders[buckets] = order
        return order

    async def _queue(self, pool: LoopPool, call: Call, turn: Turn,
                     order: tuple[Bucket, ...]) -> None:
        """Wait for this bucket's turn: a bucket wait, bounded by max_wait and the deadline."""
        if not turn.lock.locked():
            await turn.lock.acquire()
            return
        now = pool.loop.time()
        until, bound, limit = self._allowance(pool, call, now)
        with self._bounded(pool, call, None if math.isinf(until) else until,
                           "its turn in its rate-limit buckets") as scope:
            await turn.lock.acquire()
        waited = pool.loop.time() - now
        call.bucket_waited += waited
        if scope.cancelled_caught:
            if self.closed or pool.closed:
                raise PostHogError(CLOSED_MESSAGE)
            estimate = await self.limiter.wait_time(order, ahead=turn.count - 1)  # type: ignore[union-attr]
            raise call.wait_error(order, waited + estimate, bound, limit)

    async def _until_room(self, pool: LoopPool, call: Call, buckets: tuple[Bucket, ...],
                          wait: float | None = None) -> None:
        """Sleep (holding the turns, never a slot) until every bucket has room."""
        assert self.limiter is not None
        while True:
            if wait is None:
                wait = await self.limiter.wait_time(buckets)
            if wait <= 0:
                return
            self._check(pool, call, buckets, wait, single_wait=True)
            await self.sleep(pool, call, wait, f"room in bucket {buckets[-1]!r}")
            call.bucket_waited += wait
            wait = None

    def _allowance(self, pool: LoopPool, call: Call, now: float) -> tuple[float, str, float]:
        """(until when, which bound, seconds) the call may still wait for its buckets."""
        until, bound, limit = math.inf, "max_wait", math.inf
        if call.max_wait is not None:
            limit = max(0.0, call.max_wait - call.bucket_waited)
            until = now + limit
        if call.end is not None and call.end < until:
            until, bound, limit = call.end, "deadline", max(0.0, call.end - now)
        return until, bound, limit

    def _check(self, pool: LoopPool, call: Call, buckets: tuple[Bucket, ...], wait: float,
               *, single_wait: bool) -> None:
        """Raise :class:`RateLimitWaitError` if waiting ``wait`` for ``buckets`` is too long.

        ``single_wait``: one hold or window (not a queue's length), also bounded by
        ``max_retry_after``, so that a job can wait out long ones where a stop can reach it.
        A wait past a bound the caller set (``max_wait``, ``deadline``) is named by it even
        when ``max_retry_after`` is shorter: a reader that waits out long waits between pages
        must not wait out one its caller refused."""
        _, bound, limit = self._allowance(pool, call, pool.loop.time())
        if wait > limit:
            raise call.wait_error(buckets, wait, bound, limit)
        if single_wait and wait > call.max_retry_after:
            raise call.wait_error(buckets, wait, "max_retry_after", call.max_retry_after)

    @contextlib.contextmanager
    def _bounded(self, pool: LoopPool, call: Call, until: float | None,
                 what: str) -> Iterator[anyio.CancelScope]:
        """A cancel scope ending at ``until`` (loop time) that ``aclose`` can cancel, and the
        run's :class:`WaitStop` (then :class:`WaitAbandonedError`)."""
        if self.closed or pool.closed:
            raise PostHogError(CLOSED_MESSAGE)
        stop = STOP.get()
        if stop is not None and stop.is_set():
            raise call.stopped_error(what)
        scope = anyio.CancelScope(deadline=math.inf if until is None else until)
        pool.waiters.add(scope)
        if stop is not None:
            stop.add(scope, pool.loop)
        try:
            with scope:
                yield scope
        finally:
            pool.waiters.discard(scope)
            if stop is not None:
                stop.discard(scope)
        if stop is not None and stop.is_set() and scope.cancelled_caught:
            raise call.stopped_error(what)

    def _ended(self, pool: LoopPool, call: Call, what: str) -> PostHogError:
        if self.closed or pool.closed:
            return PostHogError(CLOSED_MESSAGE)
        return call.deadline_error(pool.loop.time(), what)
