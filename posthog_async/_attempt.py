"""One attempt: a send, and what becomes of it when its caller leaves before the answer.

A caller leaves an attempt when its ``timeout`` or its ``deadline`` is up, or when it is
cancelled (``asyncio.timeout``, a web client that went away). The server goes on working on a
request whose client gave up; if the slot were freed then, a retry (or the next call) would add
to the server's load while it still works on the old one (with a cap of 8 a slow server saw 16
to 40 of our requests at once). A *guarded* attempt runs in a task of its own, which its
caller can leave while it goes on: it keeps its connection and its concurrency slot until the
server answers (or ``ABANDONED_ATTEMPT_LIMIT``).

A task per attempt costs two extra turns of the event loop, about 5% of a request's CPU. So
the attempts of a call with a ``deadline`` (which expects to leave attempts) are always guarded;
other attempts run inline, like plain aiohttp, until one is abandoned: from then on, for
``ABANDONED_ATTEMPT_LIMIT`` seconds, every attempt of the loop's pool is guarded (see
:meth:`LoopPool.guard`). What is left unguarded is the first wave: attempts without a deadline
in flight when trouble begins, at most ``max_concurrency`` of them, may still be at work on the
server after their connection closed (measured in ``tests/test_in_flight.py``).
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
from ._queues import Slots

__all__ = ["EXPIRED", "Response", "StatusError", "connection_error", "expired", "guarded",
           "path_of", "send", "unguarded_timeout", "window"]

logger = logging.getLogger("posthog_async")

#: ``status_error(method, path, response, body)``: the exception for a non-2xx answer.
StatusError = Callable[[str, str, aiohttp.ClientResponse, bytes], APIStatusError]
#: An attempt whose caller's time was up before the answer came.
EXPIRED: Any = object()
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


def window(pool: LoopPool, call: Call, seconds: float) -> tuple[float, bool]:
    """How long the caller waits for this attempt's answer: its ``timeout``, or less if the
    call's deadline comes first (then true). Gives the slot back and raises if it has come."""
    left = call.end - pool.loop.time()  # type: ignore[operator]
    if left >= seconds:
        return seconds, False
    if left <= 0:
        pool.slots.release()
        raise call.deadline_error(pool.loop.time(), f"attempt {call.attempts} to begin")
    return left, True


def unguarded_timeout(pool: LoopPool, seconds: float, wait: float, clipped: bool,
                      stream: bool) -> aiohttp.ClientTimeout:
    """aiohttp times an unguarded attempt (a guarded one is timed by its caller)."""
    if stream:
        return _stream_timeout(seconds)
    return aiohttp.ClientTimeout(total=wait) if clipped else pool.timeout(seconds)


def expired(pool: LoopPool, call: Call, seconds: float, clipped: bool) -> APIError:
    """The error for an attempt whose answer did not come in time (the deadline's, if it was
    the deadline that cut the wait short)."""
    if clipped:
        raise call.deadline_error(pool.loop.time(), f"the answer to attempt {call.attempts}",
                                  in_attempt=True)
    return APITimeoutError(f"{call.method} {call.path} timed out after {seconds:g}s "
                           "(timeout, one attempt)", method=call.method, path=call.path)


async def guarded(pool: LoopPool, call: Call, query: list[tuple[str, str]] | None,
                   data: bytes | None, headers: Mapping[str, str] | None, seconds: float,
                   wait: float, stream: bool, status_error: StatusError) -> Response | APIError:
    """The attempt in a task that outlives its caller (see the module's docstring)."""
    loop = pool.loop
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
    if outcome is EXPIRED:
        pool.abandon(task)
    return outcome  # type: ignore[no-any-return]


async def send(pool: LoopPool, method: str, url: str, query: list[tuple[str, str]] | None,
               data: bytes | None, headers: Mapping[str, str] | None,
               timeout: aiohttp.ClientTimeout, seconds: float, stream: bool,
               status_error: StatusError) -> Response | APIError:
    """Send and read the answer, then give the slot back (a streamed 2xx keeps it until it is
    released). A timeout of aiohttp's comes back as ``EXPIRED``. Unguarded, a timeout or a
    cancellation leaves the server at work on a closed connection: the pool turns guarded."""
    slots = pool.slots
    handed_over = False
    try:
        resp = await pool.session.request(method, url, params=query, data=data, headers=headers,
                                          allow_redirects=False, timeout=timeout)
        try:
            if resp.status < 300 and stream:
                handed_over = True
                return Response(resp.status, resp.headers, b"", resp.content,
                                _releaser(resp, slots))
            body = await resp.read()
            if resp.status < 300:
                return Response(resp.status, resp.headers, body)
            return status_error(method, path_of(url), resp, body)
        finally:
            if not handed_over:
                resp.release()
    except asyncio.TimeoutError:
        if stream:
            return connection_error(method, path_of(url), asyncio.TimeoutError(), seconds)
        pool.guard()
        return EXPIRED  # type: ignore[no-any-return]
    except aiohttp.ClientError as exc:
        return connection_error(method, path_of(url), exc, seconds)
    except BaseException:  # cancelled
        pool.guard()
        raise
    finally:
        if not handed_over:
            slots.release()


async def _exchange(pool: LoopPool, waiter: asyncio.Future[Any], call: Call,
                    query: list[tuple[str, str]] | None, data: bytes | None,
                    headers: Mapping[str, str] | None, seconds: float, stream: bool,
                    status_error: StatusError) -> None:
    """A guarded attempt's task: send, give the slot back when the answer is in, and hand the
    outcome to the caller if it still waits."""
    if waiter.done():  # the caller left before the send began: nothing was sent, send nothing
        pool.slots.release()
        pool.exchanges.discard(asyncio.current_task())
        return
    timeout = _stream_timeout(seconds) if stream else _NO_TIMEOUT
    try:
        outcome = await send(pool, call.method, call.url, query, data, headers, timeout,
                             seconds, stream, status_error)
    except asyncio.CancelledError:  # aclose, or ABANDONED_ATTEMPT_LIMIT: the connection is closed
        if not waiter.done():
            waiter.set_result(APIConnectionError(
                f"{call.method} {call.path} was cut off: the client is closing",
                method=call.method, path=call.path))
        raise
    except BaseException as exc:
        if not waiter.done():
            waiter.set_exception(exc)
        raise
    finally:
        pool.exchanges.discard(asyncio.current_task())
    if waiter.done():  # the caller left: nobody will read this answer
        if isinstance(outcome, Response):
            outcome.release()
        logger.debug("%s %s: an abandoned attempt ended: %s", call.method, call.path,
                     getattr(outcome, "status", None) or outcome)
        return
    waiter.set_result(outcome)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(EXPIRED)


def _stream_timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds,
                                 sock_read=seconds)


def _releaser(resp: aiohttp.ClientResponse, slots: Slots) -> Callable[[], None]:
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
