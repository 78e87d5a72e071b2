"""At most ``limit`` queries of one project in flight per client: PostHog runs at most 3 queries
at once per team and answers a 4th with a 429 after holding it up to 30 s, so the client keeps
its own queries under that cap and the 429 does not happen in normal use."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ... import _constants as C
from ..._exceptions import RateLimitWaitError
from ..._transport import Transport

__all__ = ["QueryGate", "gate_for"]


class _LoopGate:
    """One event loop's part of a :class:`QueryGate` (asyncio objects belong to one loop)."""

    __slots__ = ("background", "changed", "in_flight")

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.in_flight: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.background: set[asyncio.Task[Any]] = set()


class QueryGate:
    """At most ``limit`` queries in flight per project, for one client (all its views).

    A client serves successive event loops (``asyncio.run`` twice, a test client per test), so
    the waiting and counting are per loop, as the connection pool is: each loop that runs
    queries gets its own, dropped with the loop. ``limit`` is the client's, for every loop."""

    def __init__(self, limit: int = C.MAX_QUERIES_IN_FLIGHT) -> None:
        self.limit = limit
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopGate] = (
            weakref.WeakKeyDictionary())

    def _here(self) -> _LoopGate:
        loop = asyncio.get_running_loop()
        gate = self._loops.get(loop)
        if gate is None:
            gate = self._loops[loop] = _LoopGate()
        return gate

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a background task of the running loop (a cancel) until it is done."""
        tasks = self._here().background
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def in_flight(self, project: tuple[str, str]) -> int:
        """Queries of ``project`` in flight on the running loop."""
        return self._here().in_flight[project]

    @asynccontextmanager
    async def slot(self, project: tuple[str, str], *, max_wait: float | None = None,
                   path: str = "") -> AsyncIterator[None]:
        """A query slot of ``project``; with ``max_wait`` (the view's load shedding), waiting
        longer than that for one raises :class:`RateLimitWaitError` instead (not sent). How
        long the wait would be is not known (a slot frees when a query of the project ends),
        so its ``retry_after`` is ``max_wait``, at least a second."""
        gate = self._here()
        changed, in_flight = gate.changed, gate.in_flight

        def free() -> bool:
            return in_flight[project] < self.limit

        async with changed:
            if max_wait is None:
                await changed.wait_for(free)
            elif not free():
                with anyio.move_on_after(max_wait):
                    await changed.wait_for(free)
                if not free():
                    raise RateLimitWaitError(
                        f"POST {path}: not sent: the project's {self.limit} query slots "
                        f"(queries in flight at once) stayed taken longer than its max_wait "
                        f"of {max_wait:g}s", method="POST", path=path,
                        retry_after=max(1.0, max_wait), bucket="query slots", bound="max_wait",
                        limit=max_wait)
            in_flight[project] += 1
        try:
            yield
        finally:
            in_flight[project] -= 1
            with anyio.CancelScope(shield=True):  # a cancelled query still frees its slot
                async with changed:
                    changed.notify_all()


_gates: weakref.WeakKeyDictionary[Transport, QueryGate] = weakref.WeakKeyDictionary()


def gate_for(transport: Transport) -> QueryGate:
    """The client's gate (shared by every view of one client)."""
    gate = _gates.get(transport)
    if gate is None:
        gate = _gates[transport] = QueryGate()
    return gate
