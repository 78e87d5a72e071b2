"""Readers of many pages wait out the long rate-limit waits a single call refuses to sleep through.

A call never sleeps longer than ``max_retry_after`` (120 s) for its rate limit: a wait for a
spent window or a 429's hold longer than that raises :class:`RateLimitWaitError` at once (and
a server's ``Retry-After`` longer than that raises its :class:`RateLimitError`), so that a web
handler is never stuck for an hour. A reader of every row is another matter: PostHog's HogQL
budget is 120 queries an hour, so a persons export or a keyset read of a big project meets an
hour-long wait after ~120 pages, and giving up there would throw the read away. So the export,
the keyset reader and the actors iteration wait those out themselves, between pages (holding
no query slot, no concurrency slot), tell ``on_wait`` when they will resume, and can be stopped
meanwhile by cancelling the task (the export stays resumable: nothing of the next page was
read). Every bound the caller set still applies: a wait longer than a view's ``max_wait`` or
``deadline`` is raised, not waited out. Closing the client ends the wait too (within
``_CLOSE_CHECK`` seconds), with the "client is closed" error, as it ends every wait of the
transport's: a lifespan that awaits its background reads after ``aclose()`` must not hang for
the rest of an hour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ..._chunk_step import WaitCallback
from ..._exceptions import PostHogError, RateLimitError, RateLimitWaitError
from ..._pool import CLOSED_MESSAGE
from ..._transport import Transport

__all__ = ["ClientRun", "WaitCallback", "is_long_wait", "patiently"]

logger = logging.getLogger("posthog_async")
T = TypeVar("T")
#: How often a long wait between pages looks whether its client was closed meanwhile.
_CLOSE_CHECK = 0.25


class ClientRun:
    """A reader's page-fetching callable (``run``) that belongs to a client: the reader's
    waits between pages end when that client is closed (see :func:`patiently`)."""

    __slots__ = ("_run", "_transport")

    def __init__(self, run: Callable[..., Awaitable[Any]], transport: Transport) -> None:
        self._run, self._transport = run, transport

    def __call__(self, *args: Any) -> Awaitable[Any]:
        return self._run(*args)

    def closed(self) -> bool:
        return self._transport.closed


def is_long_wait(error: RateLimitError, max_retry_after: float) -> bool:
    """A wait the client refused to sleep through only because it is long: the client's own
    (``bound == "max_retry_after"``), or the server's ``Retry-After`` beyond ``max_retry_after``.
    Not one the caller bounded (``max_wait``, ``deadline``), nor a 429 the retries gave up on."""
    if isinstance(error, RateLimitWaitError):
        return error.bound == "max_retry_after"
    return error.retry_after is not None and error.retry_after > max_retry_after


async def patiently(fetch: Callable[[], Awaitable[T]], *, max_retry_after: float,
                    on_wait: WaitCallback | None, what: str, run: object = None) -> T:
    """``await fetch()``, waiting out each long rate-limit wait (see :func:`is_long_wait`)
    and asking again; ``on_wait`` is told before each wait. Cancellation ends the wait, and
    so does closing the client of ``run`` (a :class:`ClientRun`), raising its error."""
    while True:
        try:
            return await fetch()
        except RateLimitError as error:
            if not is_long_wait(error, max_retry_after):
                raise
            seconds = float(error.retry_after or 0.0)
            logger.info("%s: rate limit (%s); waiting %.0fs, resuming at %s", what,
                        getattr(error, "bucket", None) or error.path, seconds,
                        time.strftime("%H:%M:%S", time.localtime(time.time() + seconds)))
            if on_wait is not None:
                on_wait(seconds, error)
            await _sleep(seconds, run.closed if isinstance(run, ClientRun) else None)


async def _sleep(seconds: float, closed: Callable[[], bool] | None) -> None:
    """Sleep ``seconds``, or until ``closed()`` says the client was closed (then raise)."""
    if closed is None:
        await anyio.sleep(seconds)
        return
    end = anyio.current_time() + seconds
    while not closed():
        left = end - anyio.current_time()
        if left <= 0:
            return
        await anyio.sleep(min(left, _CLOSE_CHECK))
    raise PostHogError(CLOSED_MESSAGE)
