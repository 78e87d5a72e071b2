"""What a client holds per event loop: the connection pool, the concurrency slots and the bucket
queues (their rules are in ``_queues``), and the attempts in flight.

asyncio objects belong to the loop they were made on, yet a client may be created at module
level and used by successive loops: ``asyncio.run`` twice, a test client per test, a worker
after a fork. So each loop gets a :class:`LoopPool` of its own, opened on first use. The pool
of a loop that ends is closed as the loop shuts down: :meth:`LoopPool.start` runs a tiny async
generator on the loop, which ``asyncio.run`` (and every runner built on ``asyncio.Runner``:
uvicorn, anyio, Starlette's test client) finalizes in ``shutdown_asyncgens`` while the loop
still runs, so the session is closed properly and nothing warns at exit. Two loops using one
client at the same time (two threads) cannot share slots or connections: the transport raises
``RuntimeError`` at once rather than let one thread hang on the other's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable

import aiohttp
import anyio

from . import _constants as C
from ._exceptions import PostHogError
from ._queues import Slots, Turn

__all__ = ["CLOSED_MESSAGE", "LoopPool", "Forks", "close_socket"]

logger = logging.getLogger("posthog_async")

CLOSED_MESSAGE = ("this AsyncPostHog client is closed; create a new one (a client created at "
                  "module level needs no aclose(): each event loop's pool closes with the loop)")


class Forks:
    """How many times this process was forked from its parent: a pool opened before a fork
    shares its sockets with the parent, so the child opens its own."""

    count = 0

    @classmethod
    def after_fork_in_child(cls) -> None:
        cls.count += 1


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=Forks.after_fork_in_child)


class LoopPool:
    """The aiohttp session, the concurrency slots and the bucket queues of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession,
                 max_concurrency: int, on_end: Callable[[], Awaitable[None]] | None) -> None:
        self.loop = loop
        self.thread = threading.get_ident()
        self.forks = Forks.count
        self.session = session
        self.slots = Slots(max_concurrency, loop)
        self.turns: dict[str, Turn] = {}
        #: Attempts in flight, including those abandoned by a timeout or a cancellation: they
        #: keep their slot until the server answers (or ``ABANDONED_ATTEMPT_LIMIT``).
        self.exchanges: set[asyncio.Task[None]] = set()
        #: The cancel scopes of calls waiting (for a slot, a bucket, a backoff): ``aclose``
        #: cancels them all at once.
        self.waiters: set[anyio.CancelScope] = set()
        #: Until when (loop time) attempts run guarded, in tasks that outlive their callers.
        self.guarded_until = 0.0
        self.timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self.closed = False
        self._on_end = on_end
        self._closer: AsyncGenerator[None, None] | None = None
        self._shutdown: asyncio.Task[None] | None = None

    def idle(self, buckets: tuple[str, ...]) -> bool:
        """No call of this loop queues for any of ``buckets``."""
        turns = self.turns
        for bucket in buckets:
            turn = turns.get(bucket)
            if turn is not None and turn.count:
                return False
        return True

    def turn(self, bucket: str) -> Turn:
        turn = self.turns.get(bucket)
        if turn is None:
            turn = self.turns[bucket] = Turn()
        return turn

    def in_use_elsewhere(self) -> bool:
        """Another thread runs this pool's loop right now."""
        return (self.forks == Forks.count and self.loop.is_running()
                and self.thread != threading.get_ident())

    def timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for an unguarded attempt of ``seconds`` (made once per value)."""
        timeout = self.timeouts.get(seconds)
        if timeout is None:
            timeout = self.timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    def guarded(self) -> bool:
        """Whether attempts run guarded now (see ``guard``)."""
        if self.guarded_until > self.loop.time():
            return True
        self.guarded_until = 0.0
        return False

    def guard(self) -> None:
        """An attempt was abandoned: the server is slow, or callers give up. For the next
        ``ABANDONED_ATTEMPT_LIMIT`` seconds every attempt runs guarded (see ``_attempt``)."""
        self.guarded_until = self.loop.time() + C.ABANDONED_ATTEMPT_LIMIT

    def abandon(self, task: asyncio.Task[None]) -> None:
        """The caller of this attempt left (its timeout, its deadline, a cancellation). The
        attempt goes on and keeps its slot until the server answers, so a retry never lifts
        the server's concurrent work above the cap; after ``ABANDONED_ATTEMPT_LIMIT`` seconds
        its connection is closed and the slot freed (what the server does then is unknown)."""
        self.guard()
        if task.done():
            return
        limit = self.loop.call_later(C.ABANDONED_ATTEMPT_LIMIT, task.cancel)
        task.add_done_callback(lambda _: limit.cancel())

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Have this pool closed when its loop shuts down (``shutdown_asyncgens``)."""
        self._closer = _until_loop_ends(self)
        await self._closer.__anext__()

    async def aclose(self) -> None:
        """Cancel every waiting call and attempt in flight, then close the session. At once.

        From another loop (this pool's loop was closed by hand, is left idle, or is the
        parent's of a fork) nothing of this pool can run: it is discarded instead."""
        if asyncio.get_running_loop() is not self.loop or self.forks != Forks.count:
            self.discard()
            return
        self.closed = True
        await self._shut_down()
        if self._closer is not None:
            await self._closer.aclose()

    async def _shut_down(self) -> None:
        """Once, in a task of its own: a cancelled ``aclose`` (or a second one) still closes
        everything, and waits for the same shutdown."""
        if self._shutdown is None:
            self._shutdown = self.loop.create_task(self._shut_down_now())
        await asyncio.shield(self._shutdown)

    async def _shut_down_now(self) -> None:
        self.slots.close(PostHogError(CLOSED_MESSAGE))
        for scope in list(self.waiters):
            scope.cancel()
        tasks = list(self.exchanges)
        for task in tasks:
            task.cancel()
        await self.session.close()  # the connections close at once: attempts fail fast
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._on_end is not None:
            try:
                await self._on_end()
            except Exception:  # a limiter that cannot let go of its loop: nothing to do
                logger.debug("releasing the rate limiter's loop resources failed", exc_info=True)

    def discard(self) -> None:
        """This pool's loop is gone (closed without ``shutdown_asyncgens``, stopped for good, or
        left behind in the parent of a fork): close what can be closed without running it.

        Best effort through aiohttp's and asyncio's internals, so that the sockets are closed
        now rather than reported unclosed when collected; never through the transports, whose
        closing would need the loop to run. A loop of this process left idle (it may run again)
        forgets the sockets first. In the child of a fork only the child's copies of the
        sockets are closed, and nothing of the loop is touched: the loop
        is the parent's, and so is its epoll instance (registrations belong to the open file,
        which parent and child share). Closing a connection through its asyncio transport would
        unregister the parent's socket from it, and the parent would never see its answer."""
        if self.closed:
            return
        self.closed = True
        forked = self.forks != Forks.count
        if self._closer is not None:  # finish the generator here: no finalizer on a dead loop
            with contextlib.suppress(StopIteration, RuntimeError):
                self._closer.aclose().send(None)
        connector = self.session.connector
        if connector is None:
            return
        protocols = [proto for conns in getattr(connector, "_conns", {}).values()
                     for proto, _ in conns] + list(getattr(connector, "_acquired", ()))
        transports = [getattr(proto, "transport", None) for proto in protocols]
        _forget(connector)  # never through the loop: it is closed, idle, or the parent's
        idle = not forked and not self.loop.is_closed()
        for transport in transports:
            close_socket(transport, self.loop if idle else None)
        logger.debug("closed the connection pool of an event loop that ended")


def _forget(connector: aiohttp.BaseConnector) -> None:
    """Mark ``connector`` (and so its session) closed without closing anything through its loop
    (a fork child's copy of the parent's): no "Unclosed" warning when it is collected."""
    with contextlib.suppress(AttributeError, TypeError):
        connector._closed = True
        connector._conns.clear()
        connector._acquired.clear()


async def _until_loop_ends(pool: LoopPool) -> AsyncGenerator[None, None]:
    """Suspended for the pool's whole life; closed by the loop's ``shutdown_asyncgens``."""
    try:
        yield
    finally:
        if not pool.closed:
            pool.closed = True
            await pool._shut_down()


def close_socket(transport: asyncio.BaseTransport | None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Close an asyncio transport's socket without its loop (which may be closed), first
    unregistering it from ``loop`` (an idle loop of this process, which may run again; never
    a fork parent's, whose epoll is shared)."""
    if transport is None:
        return
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is not None:  # TLS: the socket is under the SSL protocol's transport
        with contextlib.suppress(AttributeError):
            transport._closed = True  # type: ignore[attr-defined]
        transport = getattr(ssl_protocol, "_transport", None)
    sock = getattr(transport, "_sock", None)
    if sock is not None:
        if loop is not None:
            with contextlib.suppress(Exception):
                loop._remove_reader(sock.fileno())  # type: ignore[attr-defined]
                loop._remove_writer(sock.fileno())  # type: ignore[attr-defined]
        sock.close()
        with contextlib.suppress(AttributeError):
            transport._sock = None  # type: ignore[union-attr]
            transport._closing = True  # type: ignore[union-attr]  # so no stream warns of it
