"""One attempt: a send in a task of its own, which its caller may leave while it goes on.

A caller leaves an attempt when its ``timeout`` or its ``deadline`` is up, or when it is
cancelled (``asyncio.timeout``, a web client that went away). The server, though, goes on
working on a request whose client gave up. If the slot were freed then, a retry (or the next
call) would add a request to the server's load while it still works on the old one: with a cap
of 8, a slow server saw 16 to 40 of our requests at once. So the attempt keeps its connection
and its concurrency slot until the server answers (or ``ABANDONED_ATTEMPT_LIMIT``), and only
then gives them back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ._admission import Call
from ._exceptions import APIConnectionError, APIError, APIStatusError, APITimeoutError
from ._pool import LoopPool

__all__ = ["Response", "StatusError", "attempt", "connection_error", "path_of"]

logger = logging.getLogger("posthog_async")

#: ``status_error(method, path, response, body)``: the exception for a non-2xx answer.
StatusError = Callable[[str, str, aiohttp.ClientResponse, bytes], APIStatusError]
#: What an attempt's waiter is given when its caller's time is up.
_EXPIRED: Any = object()
#: aiohttp times nothing: the caller's wait is the attempt's timeout (see ``attempt``).
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None)


class Response:
    """An answer: status, headers and body, or with ``stream=True`` a body still to be read
    (``stream``) whose connection and concurrency slot are held until :meth:`release`."""

    __slots__ = ("_release", "content", "headers", "status", "stream")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes,
                 stream: aiohttp.StreamReader | None = None,
                 release: Callable[[], None] | None = None) -> None:
        self.status, self.headers, self.content = status, headers, content
        self.stream, self._release = stream, release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


async def attempt(pool: LoopPool, call: Call, query: list[tuple[str, str]] | None,
                  data: bytes | None, headers: Mapping[str, str] | None, seconds: float,
                  stream: bool, status_error: StatusError) -> Response | APIError:
    """One send, in a task of its own that owns the slot taken for it. Its caller waits at
    most ``seconds`` (or until the deadline): then, or when it is cancelled, it leaves and
    the attempt goes on, keeping its slot until the server answers."""
    loop = pool.loop
    wait, clipped = seconds, False
    if call.end is not None:
        left = call.end - loop.time()
        if left < seconds:
            wait, clipped = left, True
            if left <= 0:
                pool.slots.release()
                raise call.deadline_error(loop.time(), f"attempt {call.attempts} to begin")
    waiter = loop.create_future()
    task = loop.create_task(_exchange(pool, waiter, call, query, data, headers, seconds,
                                      stream, status_error))
    pool.exchanges.add(task)
    timer = loop.call_later(wait, _expire, waiter)
    try:
        outcome = await waiter
    except BaseException:  # our caller is cancelled: the attempt goes on without it
        timer.cancel()
        pool.abandon(task)
        raise
    timer.cancel()
    if outcome is not _EXPIRED:
        return outcome  # type: ignore[no-any-return]
    pool.abandon(task)
    if clipped:
        raise call.deadline_error(loop.time(), f"the answer to attempt {call.attempts}",
                                  in_attempt=True)
    return APITimeoutError(f"{call.method} {call.path} timed out after {seconds:g}s "
                           "(timeout, one attempt)", method=call.method, path=call.path)


async def _exchange(pool: LoopPool, waiter: asyncio.Future[Any], call: Call,
                    query: list[tuple[str, str]] | None, data: bytes | None,
                    headers: Mapping[str, str] | None, seconds: float, stream: bool,
                    status_error: StatusError) -> None:
    """Send, read the answer, give the slot back; hand the outcome to the caller if it still
    waits (a streamed response keeps the slot until it is released)."""
    method, url, slots = call.method, call.url, pool.slots
    handed_over = False
    outcome: Response | APIError
    try:
        try:
            resp = await pool.session.request(
                method, url, params=query, data=data, headers=headers, allow_redirects=False,
                timeout=_stream_timeout(seconds) if stream else _NO_TIMEOUT)
            try:
                if resp.status < 300 and stream:
                    handed_over = True
                    outcome = Response(resp.status, resp.headers, b"", resp.content,
                                       _releaser(resp, slots))
                else:
                    body = await resp.read()
                    outcome = (Response(resp.status, resp.headers, body) if resp.status < 300
                               else status_error(method, path_of(url), resp, body))
            finally:
                if not handed_over:
                    resp.release()
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            outcome = connection_error(method, path_of(url), exc, seconds)
    except asyncio.CancelledError:  # aclose, or ABANDONED_ATTEMPT_LIMIT: the connection is closed
        if not waiter.done():
            waiter.set_result(APIConnectionError(
                f"{method} {path_of(url)} was cut off: the client is closing",
                method=method, path=path_of(url)))
        raise
    except BaseException as exc:
        if not waiter.done():
            waiter.set_exception(exc)
        raise
    finally:
        if not handed_over:
            slots.release()
        pool.exchanges.discard(asyncio.current_task())
    if waiter.done():  # the caller left: nobody will read this answer
        if handed_over:
            outcome.release()  # type: ignore[union-attr]
        logger.debug("%s %s: an abandoned attempt ended: %s", method, path_of(url),
                     getattr(outcome, "status", None) or outcome)
        return
    waiter.set_result(outcome)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_EXPIRED)


def _stream_timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds,
                                 sock_read=seconds)


def _releaser(resp: aiohttp.ClientResponse, slots: asyncio.Semaphore) -> Callable[[], None]:
    def release() -> None:
        resp.release()
        slots.release()

    return release


def path_of(url: str) -> str:
    """The URL's path: what errors and logs show (never the query string)."""
    return urlsplit(url).path


def connection_error(
    method: str, path: str, exc: BaseException, seconds: float
) -> APIConnectionError:
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(
            f"{method} {path} timed out after {seconds}s", method=method, path=path
        )
    return APIConnectionError(
        f"{method} {path} failed: {type(exc).__name__}: {exc}", method=method, path=path,
        maybe_processed=not isinstance(exc, aiohttp.ClientConnectorError),
    )
