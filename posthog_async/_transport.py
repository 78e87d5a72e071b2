"""The shared transport: one connection pool per event loop, one concurrency cap, one rate
limiter, one retry loop.

Every resource and every scoped view (``ph.project(2)``) sends through the same
:class:`Transport`, so limits hold across everything a client does. Each attempt runs the same
straight path: admission (a concurrency slot, and room in every bucket the call counts in; see
:mod:`posthog_async._admission` for why a bucket is never waited for inside a slot), the send,
then the answer classified and retried or raised as the :class:`RetryPolicy` decides. Reading
the body whole (:meth:`Transport.request`) and streaming it (:meth:`Transport.stream`) share it.

Each attempt runs as a task of its own, so that its caller can leave (its ``timeout``, its
``deadline``, a cancellation) while the attempt goes on: the attempt keeps its connection and
its slot until the server answers, so the server never works on more of our requests than the
cap, even while timed-out attempts are retried.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import msgspec

from . import _constants as C
from ._admission import Admission, Call
from ._attempt import (
    EXPIRED,
    Response,
    connection_error,
    expired,
    guarded,
    path_of,
    send,
    unguarded_timeout,
    window,
)
from ._config import NO_LIMIT, NO_OPTIONS, ClientConfig, RequestOptions
from ._exceptions import (
    APIError,
    APIStatusError,
    PostHogError,
    RateLimitError,
    make_status_error,
)
from ._pool import CLOSED_MESSAGE, Forks, LoopPool
from ._ratelimit import Buckets, RateLimiter, as_buckets, refusing_bucket
from ._retry import RetryEvent, RetryHook, RetryPolicy, parse_retry_after

__all__ = ["Transport", "Response", "Repeated", "encode_params"]

logger = logging.getLogger("posthog_async")

Params = Mapping[str, Any]
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_JSON_HEADERS = {"Content-Type": "application/json"}


class Repeated(tuple[str, ...]):
    """A query value sent as a repeated parameter (``?a=1&a=2``) instead of a JSON array."""


def encode_params(params: Params | None) -> list[tuple[str, str]]:
    """Query values as PostHog reads them: ``None`` left out, booleans as true/false, lists and
    dicts as JSON (PostHog parses ``properties`` that way), :class:`Repeated` as repeated keys."""
    out: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, Repeated):
            out.extend((key, item) for item in value)
        elif isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        elif isinstance(value, (list, tuple, dict)):
            out.append((key, msgspec.json.encode(value).decode()))
        else:
            out.append((key, str(value)))
    return out


class Transport:
    """Owns the connection pools and applies the concurrency cap, the rate limiter and retries."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        rate_limiter: RateLimiter | None,
        retry_policy: RetryPolicy | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self.config = config
        self.rate_limiter = rate_limiter
        self.retry_policy = retry_policy or RetryPolicy(
            max_retries=config.max_retries, max_retry_after=config.max_retry_after
        )
        self.on_retry = on_retry
        self._admission = Admission(rate_limiter)
        self._settings = self._resolve(NO_OPTIONS)
        self._pool: LoopPool | None = None
        self._lock = threading.Lock()  # two threads opening pools at once
        self._closed = False
        limits = getattr(rate_limiter, "limits", None)
        self._periods = limits.longest_period if limits is not None else None

    def _resolve(self, options: RequestOptions) -> tuple[float, float | None, float | None,
                                                        int | None]:
        """(timeout, deadline, max_wait, max_retries) for a view's options over the client's."""
        config = self.config
        deadline = options.deadline if options.deadline is not None else config.deadline
        max_wait = options.max_wait if options.max_wait is not None else config.max_wait
        return (options.timeout if options.timeout is not None else config.timeout,
                None if deadline == NO_LIMIT else deadline,
                None if max_wait == NO_LIMIT else max_wait, options.max_retries)

    def view_deadline(self, options: RequestOptions) -> float | None:
        """The deadline a view's calls get: its own, else the client's (``None``: none). For a
        caller that makes one call of several requests (a query and its polls)."""
        return self._resolve(options)[1]

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def _open(self) -> LoopPool:
        """The running loop's pool, opened on first use (and again on each new loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise PostHogError(CLOSED_MESSAGE)
            old = self._pool
            if old is not None and not old.closed and old.loop is loop and old.forks == Forks.count:
                return old
            if old is not None and not old.closed and old.in_use_elsewhere():
                raise RuntimeError(
                    "this AsyncPostHog client is in use by another event loop, running in another "
                    "thread: a client's connections and limits belong to one loop at a time. Create "
                    "one client per thread (or send the calls to that loop with "
                    "asyncio.run_coroutine_threadsafe)")
            if old is not None:
                old.discard()
            release = getattr(self.rate_limiter, "release_loop", None)
            pool = self._pool = LoopPool(loop, self._session(), self.config.max_concurrency, release)
        await pool.start()
        return pool

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.config.max_connections),
            headers={
                "Authorization": f"Bearer {self.config.api_key.reveal()}",
                "User-Agent": C.USER_AGENT,
                "Accept": "application/json",
            },
            # No timeout of aiohttp's: each attempt is timed by the transport, which lets the
            # attempt go on (holding its slot) after its caller left; see LoopPool.abandon.
            timeout=aiohttp.ClientTimeout(total=None),
            raise_for_status=False,
        )

    async def aclose(self) -> None:
        """Close the pool (cancelling every waiting call at once) and the rate limiter."""
        pool = self._pool
        if pool is not None and not pool.closed and pool.loop is not _running_loop():
            if pool.in_use_elsewhere():
                raise RuntimeError("close this AsyncPostHog client on the event loop that uses it")
            pool.discard()
        self._closed = self._admission.closed = True
        # Shielded so a cancelled shutdown still closes the pool (no "Unclosed" warning).
        with anyio.CancelScope(shield=True):
            if pool is not None:
                await pool.aclose()
            if self.rate_limiter is not None:
                await self.rate_limiter.aclose()

    # -- requests ------------------------------------------------------------------------

    def url_for(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            self.config.check_same_origin(path_or_url)
            return path_or_url
        return self.config.host + path_or_url

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        bucket: Buckets,
        params: Params | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
        stream: bool = False,
        options: RequestOptions | None = None,
    ) -> Response:
        """Send one API call under the shared limits, retrying as the policy allows.

        ``bucket`` is the rate-limit bucket the call counts in, or a tuple of them (all paced
        before the send, all held back after a 429). ``idempotent`` (default: true for
        GET/PUT/DELETE) allows retrying a 500 or a dropped connection. ``options`` are the
        view's overrides (timeout per attempt, deadline for the whole call, retries,
        max_wait); ``timeout`` overrides both the view's and the client's for this call. With
        ``stream`` the body is not read: the response keeps its connection and slot until
        ``release()``, and the timeout bounds connecting and each read instead of the whole
        attempt (an export may take longer than any one call should).
        Raises the :mod:`posthog_async._exceptions` class matching the final failure.
        """
        pool = self._pool
        if (pool is None or pool.closed or pool.loop is not asyncio.get_running_loop()
                or pool.forks != Forks.count):
            pool = await self._open()
        url = self.url_for(path_or_url)
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        query = encode_params(params) or None
        data = None if json is None else msgspec.json.encode(json)
        headers = _JSON_HEADERS if data is not None else None
        if options is None or options is NO_OPTIONS:  # most calls: the client's own settings
            seconds, deadline, max_wait, max_retries = self._settings
        else:
            seconds, deadline, max_wait, max_retries = self._resolve(options)
        if timeout is not None:
            seconds = timeout
        buckets = (bucket,) if isinstance(bucket, str) else as_buckets(bucket)
        limiter, slots = self.rate_limiter, pool.slots
        first: APIError | None = None
        if (deadline is None and not stream  # the common case: unguarded, nobody queued, a
                and not (pool.guarded_until and pool.guarded())  # free slot, and room in the
                and (limiter is None or not pool.turns or pool.idle(buckets))  # buckets
                and slots.try_take()):
            if limiter is None or limiter.try_acquire(buckets):
                answer = await send(pool, method, url, query, data, headers,
                                    pool.timeouts.get(seconds) or pool.timeout(seconds),
                                    seconds, False, _status_error)
                if isinstance(answer, Response):
                    return answer
                first = answer
            else:
                slots.release()
        call = Call(method, url, buckets, 0.0 if deadline is None else pool.loop.time(),
                    deadline, max_wait, max_retries, self.retry_policy.max_retry_after)
        if first is not None:  # the first attempt, sent above, failed
            call.attempts = 1
            await self._retry_or_raise(pool, call, expired(pool, call, seconds, False)
                                       if first is EXPIRED else first, idempotent)
        while True:
            call.attempts += 1
            if slots.try_take():
                if limiter is not None and not (
                        (not pool.turns or pool.idle(buckets)) and limiter.try_acquire(buckets)):
                    slots.release()
                    await self._admission.admit(pool, call)
            elif limiter is None:  # only the cap to wait for
                await self._admission.slot(pool, call)
            else:
                await self._admission.admit(pool, call)
            wait, clipped = (seconds, False) if call.end is None else window(pool, call, seconds)
            if call.end is not None or (pool.guarded_until and pool.guarded()):  # see _attempt
                outcome = await guarded(pool, call, query, data, headers, seconds, wait, stream,
                                        _status_error)
            else:  # plain aiohttp until an attempt is abandoned: see _attempt
                outcome = await send(pool, method, url, query, data, headers,
                                     unguarded_timeout(pool, seconds, wait, clipped, stream),
                                     seconds, stream, _status_error)
            if isinstance(outcome, Response):
                return outcome
            if outcome is EXPIRED:
                outcome = expired(pool, call, seconds, clipped)
            await self._retry_or_raise(pool, call, outcome, idempotent)

    async def _retry_or_raise(self, pool: LoopPool, call: Call, error: APIError,
                              idempotent: bool) -> None:
        if self._closed:
            raise PostHogError(CLOSED_MESSAGE) from error
        policy = self.retry_policy
        delay = policy.decide(error, attempt=call.attempts, idempotent=idempotent,
                              max_retries=call.max_retries)
        held = False
        if isinstance(error, RateLimitError) and self.rate_limiter is not None:
            held = policy.holds_bucket(error)
            hold = delay if delay is not None else error.retry_after
            if held and hold:
                # Slow every call sharing the buckets, not only this one; also when the wait
                # is too long for us and the error goes to the caller. Admission waits it out.
                await self._hold(call, hold)
        if delay is None:
            raise error
        now = pool.loop.time()
        if call.end is not None and now + delay > call.end:
            if isinstance(error, RateLimitError):
                raise error  # the server said when to come back: the caller may, then
            call.last_error = error
            raise call.deadline_error(now, f"a retry in {delay:.2f}s")
        max_attempts = (policy.max_retries if call.max_retries is None else call.max_retries) + 1
        self._report_retry(RetryEvent(error.method, error.path, call.attempts, max_attempts,
                                      delay, error))
        call.last_error = error
        if not held:
            await self._admission.sleep(pool, call, delay, f"the retry after {type(error).__name__}")

    async def _hold(self, call: Call, seconds: float) -> None:
        """Hold back the bucket that refused, for ``seconds``: of a call in several buckets (a
        query's ``persons`` and ``queries``), the one :func:`refusing_bucket` names, so an
        hourly query refusal does not stall persons reads ("a 429 holds only the bucket that
        refused", ``posthog-query-notes.md``)."""
        assert self.rate_limiter is not None
        buckets = call.buckets
        if len(buckets) > 1 and self._periods is not None:
            buckets = (refusing_bucket(buckets, seconds, self._periods),)
        for bucket in buckets:
            await self.rate_limiter.penalize(bucket, seconds)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path_or_url: str,
        *,
        bucket: Buckets,
        params: Params | None = None,
        timeout: float | None = None,
        chunk_size: int = 65536,
        options: RequestOptions | None = None,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """:meth:`request` with ``stream=True``, as a context manager that releases at the end.

        It gives the body in chunks of up to ``chunk_size`` bytes. A read that fails or waits
        longer than the timeout raises :class:`APIConnectionError` / :class:`APITimeoutError`,
        as a failed send would; it is not retried (the caller has part of the body already).
        """
        resp = await self.request(method, path_or_url, bucket=bucket, params=params,
                                  idempotent=True, timeout=timeout, stream=True, options=options)
        assert resp.stream is not None
        seconds = timeout if timeout is not None else self._resolve(options or NO_OPTIONS)[0]
        chunks = _chunks(resp.stream, chunk_size, method, path_of(self.url_for(path_or_url)), seconds)
        try:
            yield chunks
        finally:
            try:
                await chunks.aclose()
            finally:
                resp.release()

    def _report_retry(self, event: RetryEvent) -> None:
        status = (
            str(event.error.status_code)
            if isinstance(event.error, APIStatusError)
            else type(event.error).__name__
        )
        logger.info(
            "retrying %s %s in %.2fs (attempt %d of %d failed: %s)",
            event.method, event.path, event.delay, event.attempt, event.max_attempts, status,
        )
        if self.on_retry is not None:
            self.on_retry(event)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _chunks(body: aiohttp.StreamReader, size: int, method: str, path: str,
                  seconds: float) -> AsyncGenerator[bytes, None]:
    """The body's chunks, with a failed or stalled read raised as one of our errors."""
    try:
        async for chunk in body.iter_chunked(size):
            yield chunk
    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
        raise connection_error(method, path, exc, seconds) from None


def _status_error(
    method: str, path: str, resp: aiohttp.ClientResponse, body: bytes
) -> APIStatusError:
    # The key as this request sent it: an error page that echoes it must not carry it further.
    sent = resp.request_info.headers.get("Authorization", "")
    return make_status_error(
        status_code=resp.status, method=method, path=path, raw_body=body,
        headers=resp.headers, retry_after=parse_retry_after(resp.headers),
        secrets=(sent, sent.partition(" ")[2]),
    )


