"""Client-side rate limiting that mirrors PostHog's own per-key throttles.

PostHog counts a personal API key's requests in buckets, each a sliding log checked over one or
more windows (person deletes: 480 per minute *and* 4800 per hour). :class:`Throttle` keeps the
send times of the last requests of one bucket and says how long until every window has room, so
a long job runs just under the limits instead of into 429s. Unlike a token bucket it does not
let a full window out at start-up: requests are spaced by ``period / limit`` of the shortest
window. Some calls count in two buckets at once (a query kind PostHog throttles in the persons
bucket and in a window of its own): every method takes one bucket or a tuple of buckets, and a
send is recorded in all of them or in none.

A :class:`RateLimiter` paces every bucket of one key; :class:`LocalRateLimiter` does it in this
process, and ``RedisRateLimiter`` shares one budget between processes. Example::

    limiter = LocalRateLimiter(RateLimits(person_deletes=[(60, 10)]))
    await limiter.acquire("person_deletes")   # waits for room, then records the send
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, Union, get_args

import anyio

from . import _constants as C

__all__ = [
    "Bucket", "BUCKETS", "Buckets", "RateWindow", "RateLimits", "RateLimiter", "LocalRateLimiter",
    "Throttle", "as_buckets", "refusing_bucket",
]

Bucket = Literal["persons", "person_deletes", "general", "users", "hogql", "queries"]
"""PostHog's throttle buckets for personal API keys: which budget a request counts against
(``posthog-api-notes.md`` and ``posthog-query-notes.md``, rate limits). A new bucket is a name
here and a field of :class:`RateLimits`, nothing else."""
BUCKETS: tuple[Bucket, ...] = get_args(Bucket)
#: What a call counts in: one bucket, or several at once.
Buckets = Union[Bucket, "tuple[Bucket, ...]"]


def as_buckets(buckets: Buckets | Sequence[Bucket]) -> tuple[Bucket, ...]:
    """One bucket or several, as a tuple without repeats."""
    if isinstance(buckets, str):
        return (buckets,)
    return tuple(dict.fromkeys(buckets))


def refusing_bucket(buckets: Sequence[Bucket], wait: float,
                    longest: Callable[[Bucket], float]) -> Bucket:
    """Of a call's buckets, the one a 429 asking for ``wait`` seconds came from.

    PostHog runs every throttle of a request and its ``Retry-After`` is the longest wait among
    those that refused. So the bucket held back is the narrowest whose longest window
    (``longest``, e.g. :meth:`RateLimits.longest_period`; ``inf`` for a bucket the client does
    not pace, which could have any window) can ask for that long; if none can, the one with
    the longest window (PostHog's are longer than the client was told). Should another have
    refused too, with a shorter wait, its own next call meets its own 429: one more 429,
    rather than every bucket of the call held for nothing.
    """
    periods = {bucket: longest(bucket) for bucket in buckets}
    fitting = [bucket for bucket in buckets if periods[bucket] >= wait]
    if fitting:
        return min(fitting, key=periods.__getitem__)
    return max(buckets, key=periods.__getitem__)


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

    def longest_period(self, bucket: Bucket) -> float:
        """The longest wait one of the bucket's windows can ask for (``inf`` if unpaced here:
        PostHog may still have a window we do not know of)."""
        windows = self.windows(bucket)
        return max(w.period for w in windows) + self.safety_margin if windows else math.inf

    def turn_order(self, buckets: Sequence[Bucket]) -> tuple[Bucket, ...]:
        """``buckets`` narrowest first (fewest requests per second), a fixed order for all.

        A call counting in two buckets queues for the narrow one before the wide one, so it
        never blocks the queue of a busy wide bucket (persons) while it waits for room in a
        narrow one; and one order for every call means no two calls wait for each other.
        """
        def rate(bucket: Bucket) -> float:
            windows = self.windows(bucket)
            return min((w.limit / w.period for w in windows), default=math.inf)

        rank = {b: i for i, b in enumerate(BUCKETS)}
        return tuple(sorted(buckets, key=lambda b: (rate(b), rank.get(b, len(rank)), b)))


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

    def wait_time(self, *, ahead: int = 0, horizon: float = math.inf) -> float:
        """Seconds until a request may go, with ``ahead`` others going first (each as soon as
        it may), or the first estimate past ``horizon``: what a caller queued behind ``ahead``
        others would wait. Records nothing."""
        now = self._clock()
        wait = self._wait_needed(now)
        if ahead <= 0 or wait > horizon or not self._keep:
            return max(0.0, wait)
        saved = self._history
        self._history = deque(saved, maxlen=self._keep)  # a scratch log for the simulation
        try:
            at = now + max(0.0, wait)
            for _ in range(ahead):
                self._history.append(at)
                at = max(at, now + self._wait_needed(now))
                if at - now > horizon:
                    break
            return at - now
        finally:
            self._history = saved

    def record(self) -> bool:
        """Record a send now if every window has room now (queued waiters or not)."""
        now = self._clock()
        if self._wait_needed(now) > 0:
            return False
        self._record(now)
        return True

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

    Every method takes the buckets a call counts in (a tuple; ``LocalRateLimiter`` and
    ``RedisRateLimiter`` also accept one bucket name). The transport never waits inside a
    limiter while it holds a concurrency slot: it asks :meth:`wait_time` (how long until every
    bucket has room) and sleeps without a slot, then takes a slot and calls :meth:`reserve`,
    which records the send *now* or records nothing and says how long to wait. So a send is
    always recorded at the moment it leaves, and no reservation made earlier can burst out
    later. :meth:`try_acquire` is the lock-free common case. After a 429 the transport calls
    :meth:`penalize` so that every sharer of the bucket slows down. The client calls
    :meth:`bind` once with a fingerprint of its host and key (never the key itself), so a
    shared limiter can keep different keys apart. A limiter holding resources that belong to
    one event loop (connections) may also define ``async def release_loop()``: the client calls
    it as each loop it used shuts down.
    """

    def bind(self, identity: str) -> None: ...

    def try_acquire(self, buckets: tuple[Bucket, ...]) -> bool:
        """Record a send in every bucket now if each has room without waiting or I/O, else
        return false (then the transport takes the slow path). The common case costs no trip
        through the event loop."""
        ...

    async def wait_time(self, buckets: tuple[Bucket, ...], *, ahead: int = 0) -> float:
        """Seconds until every bucket has room (0 if now), with ``ahead`` other requests of
        this process going first; records nothing. Ahead of a long queue this is an estimate."""
        ...

    async def reserve(self, buckets: tuple[Bucket, ...]) -> float:
        """Record a send in every bucket now and return 0 if each has room now; else record
        nothing and return the seconds until it may have. Called just before the send."""
        ...

    async def acquire(self, buckets: tuple[Bucket, ...]) -> None:
        """Wait for room in every bucket, then record a send (for use without a client)."""
        ...

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
        self._sleep = sleep
        self._throttles = {
            bucket: Throttle(self.limits.windows(bucket), safety_margin=self.limits.safety_margin,
                             clock=clock, sleep=sleep)
            for bucket in BUCKETS
        }

    def throttle(self, bucket: Bucket) -> Throttle:
        return self._throttles[bucket]

    def bind(self, identity: str) -> None:
        """Nothing to do: this limiter lives inside one client."""

    def try_acquire(self, buckets: Buckets) -> bool:
        if isinstance(buckets, str):
            return self._throttles[buckets].try_acquire()
        if len(buckets) == 1:
            return self._throttles[buckets[0]].try_acquire()
        throttles = [self._throttles[b] for b in buckets]
        if any(t._waiting for t in throttles):
            return False
        return self._record_all(throttles)

    async def wait_time(self, buckets: Buckets, *, ahead: int = 0) -> float:
        return max(self._throttles[b].wait_time(ahead=ahead) for b in as_buckets(buckets))

    async def reserve(self, buckets: Buckets) -> float:
        throttles = [self._throttles[b] for b in as_buckets(buckets)]
        if self._record_all(throttles):
            return 0.0
        return max(t.wait_time() for t in throttles)

    async def acquire(self, buckets: Buckets) -> None:
        chosen = as_buckets(buckets)
        if len(chosen) == 1:  # the throttle's own queue keeps waiters in order
            await self._throttles[chosen[0]].acquire()
            return
        while (wait := await self.reserve(chosen)) > 0:
            await self._sleep(wait)

    async def penalize(self, bucket: Bucket, seconds: float) -> None:
        self._throttles[bucket].penalize(seconds)

    async def aclose(self) -> None:
        """Nothing to release."""

    @staticmethod
    def _record_all(throttles: list[Throttle]) -> bool:
        """Record a send in every throttle, or in none if one has no room now."""
        if len(throttles) == 1:
            return throttles[0].record()
        now = throttles[0]._clock()
        if any(t._wait_needed(now) > 0 for t in throttles):
            return False
        for throttle in throttles:
            throttle._record(now)
        return True

    def __repr__(self) -> str:
        return f"LocalRateLimiter({self.limits!r})"
