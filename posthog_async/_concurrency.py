"""Running many calls at once: a bounded streaming map, and fan-out across projects.

:func:`bounded_map` uses asyncio tasks rather than an anyio task group on purpose: it is an async
generator, and a task group must not stay open across a ``yield`` (the consumer's code would run
inside our cancel scope). The generator cancels and awaits its tasks when closed, so nothing
outlives it. :func:`fan_out` is a plain coroutine and uses an anyio task group.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
)
from dataclasses import dataclass, field
from typing import (
    Generic,
    TypeVar,
)

import anyio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["as_async_iter", "bounded_map", "FanOutResult", "fan_out"]

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)


async def as_async_iter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """Any iterable as an async iterator."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def bounded_map(
    items: Iterable[T] | AsyncIterable[T],
    fn: Callable[[T], Awaitable[R]],
    *,
    limit: int,
) -> AsyncGenerator[tuple[T, R | None, Exception | None], None]:
    """Run ``fn`` over ``items`` with at most ``limit`` calls in flight, yielding as each ends.

    Yields ``(item, result, None)`` or ``(item, None, error)``: an ``Exception`` from one call
    does not stop the others. Input is read only as fast as calls finish, so a generator of
    millions of items is never held in memory. ``BaseException`` (cancellation, Ctrl-C) is
    never swallowed.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    source = as_async_iter(items).__aiter__()
    pending: dict[asyncio.Future[R], T] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < limit:
                try:
                    item = await source.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    break
                pending[asyncio.ensure_future(fn(item))] = item
            if not pending:
                return
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                item = pending.pop(task)
                if task.cancelled():
                    raise asyncio.CancelledError()
                error = task.exception()
                if error is None:
                    yield item, task.result(), None
                elif isinstance(error, Exception):
                    yield item, None, error
                else:
                    raise error
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class FanOutResult(Generic[K, R]):
    """What :func:`fan_out` collected: a result or an error for every key."""

    results: dict[K, R] = field(default_factory=dict)
    errors: dict[K, Exception] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


async def fan_out(
    keys: Iterable[K],
    fn: Callable[[K], Awaitable[R]],
    *,
    fail_fast: bool = False,
) -> FanOutResult[K, R]:
    """Run ``fn(key)`` for every key concurrently in one anyio task group.

    With ``fail_fast=False`` (default) an error is recorded for its key and the others go on;
    with ``fail_fast=True`` the first error cancels the rest and is raised.
    """
    outcome: FanOutResult[K, R] = FanOutResult()

    async def run(key: K) -> None:
        try:
            outcome.results[key] = await fn(key)
        except Exception as exc:
            if fail_fast:
                raise
            outcome.errors[key] = exc

    try:
        async with anyio.create_task_group() as tg:
            for key in dict.fromkeys(keys):
                tg.start_soon(run, key)
    except BaseExceptionGroup as group:
        if fail_fast and len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise
    return outcome
