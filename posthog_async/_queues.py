"""The queues a call may wait in on one event loop: the concurrency slots and a bucket's turn.

Both are first come, first served, and neither loses its place to a cancellation, also one
that comes after the slot or the turn was handed over. A call made inside :func:`urgent` (a
query's cancel) goes ahead of both. ``LoopPool`` holds one :class:`Slots` and a :class:`Turn`
per bucket for its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import Iterator

__all__ = ["Slots", "Turn", "TurnLock", "urgent"]


#: Set (by :func:`urgent`) around a call that must not queue behind others: it goes to the
#: front of every queue it meets (a bucket's turn, a concurrency slot).
_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("posthog_async_urgent", default=False)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """Calls made inside never queue behind other calls of this loop: not for a bucket's turn
    (see :class:`TurnLock`), and ahead of every waiter for a concurrency slot. They are still
    paced: the limiter records their send in every bucket, and no window is broken. For a
    query's cancel, which must not wait behind the other queries' status polls: every second
    it waits, the server runs the query for nothing and holds one of the project's 3 query
    slots."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


def _enqueue(waiters: deque[asyncio.Future[bool]], waiter: asyncio.Future[bool]) -> None:
    """Behind every waiter, or ahead of them all for an :func:`urgent` call."""
    if _URGENT.get():
        waiters.appendleft(waiter)
    else:
        waiters.append(waiter)


class Slots:
    """The concurrency cap of one loop: a FIFO semaphore whose common case is one check.

    ``asyncio.Semaphore`` would do, but its free slot costs a coroutine call and two looks at
    its waiters on every request (about 3% of our per-request CPU). A slot given back goes
    straight to the first waiter, so nobody overtakes a waiter; a waiter cancelled after it
    was handed a slot passes it on.
    """

    __slots__ = ("_loop", "_waiters", "free")

    def __init__(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        self.free = count
        self._loop = loop
        self._waiters: deque[asyncio.Future[bool]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for one."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    def locked(self) -> bool:
        return self.free <= 0 or bool(self._waiters)

    async def take(self, until: float | None = None) -> bool:
        """Wait for a slot, in turn; false if ``until`` (loop time) comes first. Raises the
        error :meth:`close` is given (the pool closes) at once."""
        if self.try_take():
            return True
        waiter = self._loop.create_future()
        _enqueue(self._waiters, waiter)
        timer = None if until is None else self._loop.call_at(until, _give_up, waiter)
        try:
            got: bool = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None \
                    and waiter.result():
                self.release()  # handed a slot, and cancelled before it could use it
            else:  # cancelled while waiting, or after its deadline came: it never had a slot
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not got:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        return got

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot goes to it
                return
        self.free += 1

    def close(self, error: BaseException) -> None:
        """End every wait at once with ``error``: the pool is closing."""
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)


def _give_up(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class TurnLock:
    """A FIFO lock (``asyncio.Lock``'s ``acquire``, ``release``, ``locked``) that an
    :func:`urgent` call never queues for. Released, it goes straight to the next waiter; a
    waiter cancelled after it was handed the lock passes it on.

    An urgent call finding the lock held goes on beside the holder (a *pass*, given back by
    its ``release``), and while it does the lock goes to no one else. The holder is the call
    at the head of the bucket's queue, waiting for the bucket's room; the two meet in the
    limiter, which records whichever sends first, and the urgent call has the next room to
    itself: it waits at most the holder's pacing and its own. Queued behind every waiter it
    would wait out each one's pacing (3 s apiece in PostHog's 1,200-an-hour
    ``clickhouse_sustained`` window)."""

    __slots__ = ("_held", "_passes", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._passes: set[asyncio.Task[object] | None] = set()

    def locked(self) -> bool:
        """Whether an acquire would wait (for the holder, a waiter before it, or a pass)."""
        return self._held or bool(self._waiters) or bool(self._passes)

    async def acquire(self) -> bool:
        if not self.locked():
            self._held = True
            return True
        if _URGENT.get():
            self._passes.add(asyncio.current_task())
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the lock, and cancelled before it could use it
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        return True

    def release(self) -> None:
        if self._passes:
            task = asyncio.current_task()
            if task in self._passes:
                self._passes.discard(task)
                if not self._passes and not self._held:
                    self._hand_on()
                return
        self._held = False
        if not self._passes:
            self._hand_on()

    def _hand_on(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held = True
                waiter.set_result(True)  # the lock goes to it, held
                return


class Turn:
    """One bucket's queue on one loop: a FIFO lock (the call at the head waits for the bucket's
    room) and how many calls are in the queue (the lock-free fast path never overtakes them)."""

    __slots__ = ("count", "lock")

    def __init__(self) -> None:
        self.lock = TurnLock()
        self.count = 0


