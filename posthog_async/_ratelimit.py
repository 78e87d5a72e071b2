"""A client-side rate limiter that mirrors PostHog's own throttles.

PostHog counts requests per key in several sliding windows at once (for CRUD endpoints 480 per
minute *and* 4800 per hour). :class:`Throttle` keeps the send times of the last requests and waits
until every window has room, so a long job runs just under the limits instead of into 429s.

Unlike a plain token bucket it does not let a full window's worth of requests out at start-up:
requests are also spaced by ``period / limit`` of the shortest window, so 480/min means one
request every 125 ms from the first one on.

Example::

    throttle = Throttle([RateWindow(480, 60), RateWindow(4800, 3600)])
    async with throttle:  # or: await throttle.acquire()
        await send_request()
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Awaitable, Callable, Iterable, Sequence

import anyio

from . import _constants as C

__all__ = ["RateWindow", "RateLimits", "Throttle"]

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


def _windows(pairs: Iterable[tuple[int, float]]) -> tuple[RateWindow, ...]:
    return tuple(RateWindow(limit, period) for limit, period in pairs)


@dataclass(frozen=True)
class RateLimits:
    """The windows per endpoint category. Pass ``rate_limits=None`` to the client to disable."""

    crud: tuple[RateWindow, ...] = field(default_factory=lambda: _windows(C.CRUD_RATE_WINDOWS))
    analytics: tuple[RateWindow, ...] = field(
        default_factory=lambda: _windows(C.ANALYTICS_RATE_WINDOWS)
    )
    #: Seconds added to every period to absorb clock skew and network jitter.
    safety_margin: float = C.RATE_SAFETY_MARGIN

    def for_category(self, category: str) -> tuple[RateWindow, ...]:
        if category == "analytics":
            return self.analytics
        return self.crud


class Throttle:
    """Waits until a request fits in every window; FIFO across waiting tasks.

    ``clock`` and ``sleep`` are plain callables so tests can drive the limiter with a fake clock.
    """

    def __init__(
        self,
        windows: Sequence[RateWindow],
        *,
        safety_margin: float = C.RATE_SAFETY_MARGIN,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not windows:
            raise ValueError("Throttle needs at least one RateWindow")
        self.windows = tuple(windows)
        self._margin = safety_margin
        self._clock = clock
        self._sleep = sleep
        self._history: deque[float] = deque()
        self._keep = max(w.limit for w in self.windows)
        shortest = min(self.windows, key=lambda w: w.period)
        self._spacing = (shortest.period + safety_margin) / shortest.limit
        self._blocked_until = 0.0
        self._lock: anyio.Lock | None = None

    def _wait_needed(self, now: float) -> float:
        wait = self._blocked_until - now
        history = self._history
        if history:
            wait = max(wait, history[-1] + self._spacing - now)
        for window in self.windows:
            if len(history) >= window.limit:
                # The request that must age out of this window before we may send another.
                oldest_in_way = history[len(history) - window.limit]
                wait = max(wait, oldest_in_way + window.period + self._margin - now)
        return wait

    def delay(self) -> float:
        """Seconds a request would have to wait if it asked now (0 when it could go at once)."""
        return max(0.0, self._wait_needed(self._clock()))

    async def acquire(self) -> None:
        """Wait for room in every window, then record this request as sent."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._history.append(now)
                    if len(self._history) > self._keep:
                        self._history.popleft()
                    return
                await self._sleep(wait)

    def penalize(self, seconds: float) -> None:
        """Hold every request back ``seconds`` from now (after a 429 from the server)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
