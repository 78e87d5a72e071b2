"""Client-side rate limiting that mirrors PostHog's own per-key throttles.

PostHog counts a personal API key's requests in buckets, each a sliding log checked over one or
more windows (person deletes: 480 per minute *and* 4800 per hour). :class:`Throttle` keeps the
send times of the last requests of one bucket and waits until every window has room, so a long
job runs just under the limits instead of into 429s. Unlike a token bucket it does not let a
full window out at start-up: requests are spaced by ``period / limit`` of the shortest window.

A :class:`RateLimiter` paces every bucket of one key; :class:`LocalRateLimiter` does it in this
process, and ``RedisRateLimiter`` shares one budget between processes. Example::

    limiter = LocalRateLimiter(RateLimits(person_deletes=[(60, 10)]))
    await limiter.acquire("person_deletes")   # waits for a slot, then takes it
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, Union, get_args

import anyio

from . import _constants as C

__all__ = [
    "Bucket", "BUCKETS", "RateWindow", "RateLimits", "RateLimiter", "LocalRateLimiter", "Throttle",
]

Bucket = Literal["persons", "person_deletes", "general", "users", "hogql", "queries"]
"""PostHog's throttle buckets for personal API keys: which budget a request counts against
(``posthog-api-notes.md`` and ``posthog-query-notes.md``, rate limits)."""
BUCKETS: tuple[Bucket, ...] = get_args(Bucket)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RateWindow:
    """At most ``limit`` requests in any ``period`` seconds."""

    limit: int
    period: float

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.period <= 0:
            raise ValueError(f"a rate window needs limit > 0 and period > 0, got {self}")


#: A bucket's windows: ``RateWindow``s or ``(limit, period)`` pairs.
Windows = Sequence[Union[RateWindow, "tuple[int, float]"]]


def _windows(pairs: Iterable[RateWindow | tuple[int, float]]) -> tuple[RateWindow, ...]:
    return tuple(w if isinstance(w, RateWindow) else RateWindow(int(w[0]), float(w[1]))
                 for w in pairs)


@dataclass(frozen=True)
class RateLimits:
    """The windows of every bucket; an empty tuple leaves a bucket unpaced.

    Defaults are PostHog's production limits per personal API key. Any window may be changed
    or removed, e.g. ``RateLimits(person_deletes=[(60, 10)])`` for a test-sized window. Pass
    ``rate_limits=None`` to the client to disable pacing altogether.
    """

    #: Every persons call except deletes (PostHog's ``clickhouse_burst``).
    persons: Windows = field(default=_windows(C.PERSONS_RATE_WINDOWS))
    #: ``DELETE persons/:id/`` and ``persons/bulk_delete/`` (``persons_delete_*``).
    person_deletes: Windows = field(default=_windows(C.PERSON_DELETES_RATE_WINDOWS))
    #: Property definitions, subscriptions, sharing, integrations (``burst`` + ``sustained``).
    general: Windows = field(default=_windows(C.GENERAL_RATE_WINDOWS))
    #: ``/api/users/``: PostHog has no per-key throttle there.
    users: Windows = field(default=_windows(C.USERS_RATE_WINDOWS))
    #: HogQL queries (``HogQLQueryThrottle``, 120 an hour); on the "API queries" plan use
    #: ``RateLimits(hogql=API_QUERIES_PLAN_RATE_WINDOWS)`` (240 a minute and 2400 an hour).
    hogql: Windows = field(default=_windows(C.HOGQL_RATE_WINDOWS))
    #: Other query kinds, status polls and cancels: their hourly ``clickhouse_sustained``
    #: window (each also takes a slot in ``persons``, PostHog's ``clickhouse_burst``).
    queries: Windows = field(default=_windows(C.QUERIES_RATE_WINDOWS))
    #: Seconds added to every period to absorb clock skew and network jitter.
    safety_margin: float = C.RATE_SAFETY_MARGIN

    def __post_init__(self) -> None:
        for bucket in BUCKETS:  # accept (limit, period) pairs as well as RateWindow
            object.__setattr__(self, bucket, _windows(getattr(self, bucket)))
        if self.safety_margin < 0:
            raise ValueError("safety_margin must be >= 0")

    def windows(self, bucket: Bucket) -> tuple[RateWindow, ...]:
        return _windows(getattr(self, bucket))


class Throttle:
    """Waits until a request fits in every window of one bucket; FIFO across waiting tasks.

    The common case (nobody waiting, room in every window) records the request without a lock
    or a trip through the event loop; only a request that must wait queues on the lock.
    ``clock`` and ``sleep`` are plain callables so tests can drive it with a fake clock.
    """

    def __init__(
        self,
        windows: Sequence[RateWindow],
        *,
        safety_margin: float = C.RATE_SAFETY_MARGIN,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.windows = tuple(windows)
        self._margin = safety_margin
        self._clock = clock
        self._sleep = sleep
        self._history: deque[float] = deque()
        self._keep = max((w.limit for w in self.windows), default=0)
        shortest = min(self.windows, key=lambda w: w.period, default=None)
        self._spacing = 0.0 if shortest is None else (shortest.period + safety_margin) / shortest.limit
        self._blocked_until = 0.0
        self._waiting = 0
        self._lock: asyncio.Lock | None = None

    def _wait_needed(self, now: float) -> float:
        wait = self._blocked_until - now
        history = self._history
        if history:
            wait = max(wait, history[-1] + self._spacing - now)
            for window in self.windows:
                if len(history) >= window.limit:
                    # The request that must age out of this window before another may go.
                    oldest_in_way = history[len(history) - window.limit]
                    wait = max(wait, oldest_in_way + window.period + self._margin - now)
        return wait

    def _record(self, now: float) -> None:
        if self._keep:
            self._history.append(now)
            if len(self._history) > self._keep:
                self._history.popleft()

    def try_acquire(self) -> bool:
        """Record this request as sent if it may go now without waiting (nobody queued)."""
        if not self._waiting:
            now = self._clock()
            if self._wait_needed(now) <= 0:
                self._record(now)
                return True
        return False

    async def acquire(self) -> None:
        """Wait for room in every window, then record this request as sent."""
        if not self.try_acquire():
            await self._acquire_in_turn()

    async def _acquire_in_turn(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._waiting += 1
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    wait = self._wait_needed(now)
                    if wait <= 0:
                        self._record(now)
                        return
                    await self._sleep(wait)
        finally:
            self._waiting -= 1

    def penalize(self, seconds: float) -> None:
        """Hold every request back ``seconds`` from now (after a 429 from the server)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class RateLimiter(Protocol):
    """Paces the requests of one personal API key, bucket by bucket.

    The transport takes a slot after it has a concurrency slot, just before sending: first
    :meth:`try_acquire`, then, if that says no, :meth:`acquire` (which may wait, and may be
    cancelled when a 429 holds the bucket back). It calls :meth:`penalize` after a 429 so that
    every sharer of the bucket slows down. The client
    calls :meth:`bind` once with a fingerprint of its host and key (never the key itself), so a
    shared limiter can keep different keys apart.
    """

    def bind(self, identity: str) -> None: ...

    def try_acquire(self, bucket: Bucket) -> bool:
        """Take a slot now if one is free without waiting or I/O, else return false (then the
        transport awaits :meth:`acquire`). The common case costs no trip through the loop."""
        ...

    async def acquire(self, bucket: Bucket) -> None: ...

    async def penalize(self, bucket: Bucket, seconds: float) -> None: ...

    async def aclose(self) -> None: ...


class LocalRateLimiter:
    """A :class:`RateLimiter` for one process: one :class:`Throttle` per bucket."""

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.limits = limits if limits is not None else RateLimits()
        self._throttles = {
            bucket: Throttle(self.limits.windows(bucket), safety_margin=self.limits.safety_margin,
                             clock=clock, sleep=sleep)
            for bucket in BUCKETS
        }

    def throttle(self, bucket: Bucket) -> Throttle:
        return self._throttles[bucket]

    def bind(self, identity: str) -> None:
        """Nothing to do: this limiter lives inside one client."""

    def try_acquire(self, bucket: Bucket) -> bool:
        return self._throttles[bucket].try_acquire()

    async def acquire(self, bucket: Bucket) -> None:
        await self._throttles[bucket].acquire()

    async def penalize(self, bucket: Bucket, seconds: float) -> None:
        self._throttles[bucket].penalize(seconds)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"LocalRateLimiter({self.limits!r})"
