"""The shared transport: one aiohttp session, one concurrency cap, one rate limiter, one retry loop.

Every resource and every scoped view (``ph.project(2)``) sends through the same
:class:`Transport`, so limits hold across everything a client does. Each attempt runs the same
straight path: take a concurrency slot, take a rate-limit slot for the call's bucket, send,
classify the answer, and retry or raise as the :class:`RetryPolicy` decides. Reading the body
whole (:meth:`Transport.request`) and streaming it (:meth:`Transport.stream`) share that loop.

After a 429 the bucket is held back, and calls wait that hold out *before* taking a concurrency
slot: a throttled bucket (deletes held for an hour) must not fill the slots that calls in the
other buckets (a web app's reads sharing the client) need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Union
from urllib.parse import urlsplit

import aiohttp
import anyio
import msgspec

from . import _constants as C
from ._config import ClientConfig
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    PostHogError,
    RateLimitError,
    make_status_error,
)
from ._ratelimit import BUCKETS, Bucket, RateLimiter, RateLimits
from ._retry import RetryEvent, RetryHook, RetryPolicy, parse_retry_after

__all__ = ["Transport", "Response", "Repeated", "encode_params"]

logger = logging.getLogger("posthog_async")

Params = Mapping[str, Any]
#: One bucket, or several that all pace the call before it is sent (a query counts in the
#: persons bucket's minute *and* its own hourly window).
Buckets = Union[Bucket, "tuple[Bucket, ...]"]
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_JSON_HEADERS = {"Content-Type": "application/json"}


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
    """Owns the connection pool and applies the concurrency cap, the rate limiter and retries."""

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
        self._session: aiohttp.ClientSession | None = None
        # An asyncio.Semaphore, not anyio's CapacityLimiter: aiohttp already ties us to asyncio,
        # and the anyio limiter adds two scheduler round trips per request (measured in
        # benchmarks/bench_overhead.py: about a third of our overhead over raw aiohttp).
        self._slots: asyncio.Semaphore | None = None
        self._default_timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._closed = False
        # After a 429: when each bucket may send again; and the calls waiting for a bucket's
        # rate-limit slot, which a new hold of it calls back out of their concurrency slots.
        self._holds: dict[Bucket, float] = {}
        self._recalls: dict[Bucket, set[anyio.CancelScope]] = {b: set() for b in BUCKETS}

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure_open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._closed:
            raise PostHogError("this AsyncPostHog client is closed; create a new one")
        if self._session is None or self._slots is None:
            connector = aiohttp.TCPConnector(limit=self.config.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={
                    "Authorization": f"Bearer {self.config.api_key.reveal()}",
                    "User-Agent": C.USER_AGENT,
                    "Accept": "application/json",
                },
                timeout=self._default_timeout,
                raise_for_status=False,
            )
            self._slots = asyncio.Semaphore(self.config.max_concurrency)
        return self._session, self._slots

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        # Shielded so a cancelled shutdown still closes the pool (no "Unclosed" warning).
        with anyio.CancelScope(shield=True):
            if session is not None:
                await session.close()
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
    ) -> Response:
        """Send one API call under the shared limits, retrying as the policy allows.

        This is the one attempt loop: a concurrency slot, a rate-limit slot for ``bucket``
        (taken last, so the send follows at once), the send, then the answer classified and
        retried or raised. ``idempotent`` (default: true for GET/PUT/DELETE) allows retrying a
        500 or a dropped connection. With ``stream`` the body is not read: the response keeps
        its connection and slot until ``release()``, and the timeout bounds connecting and each
        read instead of the whole call (an export may take longer than any one call should).
        Raises the :mod:`posthog_async._exceptions` class matching the final failure.
        """
        session, slots = self._ensure_open()
        url = self.url_for(path_or_url)
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        query = encode_params(params) or None
        data = None if json is None else msgspec.json.encode(json)
        headers = _JSON_HEADERS if data is not None else None
        seconds = self.config.timeout if timeout is None else timeout
        if stream:
            client_timeout = aiohttp.ClientTimeout(total=None, connect=seconds,
                                                   sock_connect=seconds, sock_read=seconds)
        elif timeout is None:
            client_timeout = self._default_timeout
        else:
            client_timeout = aiohttp.ClientTimeout(total=timeout)
        attempt = 0
        while True:
            attempt += 1
            error: APIError
            handed_over = False
            await self._take_slots(slots, bucket)
            try:
                resp = await session.request(
                    method, url, params=query, data=data, headers=headers,
                    timeout=client_timeout, allow_redirects=False,
                )
                try:
                    if resp.status < 300 and stream:
                        handed_over = True
                        return Response(resp.status, resp.headers, b"", resp.content,
                                        _releaser(resp, slots))
                    body = await resp.read()
                    if resp.status < 300:
                        return Response(resp.status, resp.headers, body)
                    error = _status_error(method, _path(url), resp, body)
                finally:
                    if not handed_over:
                        resp.release()
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                error = _connection_error(method, _path(url), exc, seconds)
            finally:
                if not handed_over:
                    slots.release()
            await self._retry_or_raise(error, attempt, idempotent, bucket)

    async def _take_slots(self, slots: asyncio.Semaphore, bucket: Buckets) -> None:
        """A concurrency slot, then a rate-limit slot for ``bucket`` (for each of a tuple of
        buckets); a known 429 hold of a bucket is waited out first, without the concurrency
        slot, also one that begins while we wait for the rate-limit slot."""
        limiter = self.rate_limiter
        buckets = (bucket,) if isinstance(bucket, str) else bucket
        while True:
            while (wait := max(self._holds.get(b, 0.0) for b in buckets) - time.monotonic()) > 0:
                await anyio.sleep(wait)
            await slots.acquire()
            if limiter is None:
                return
            try:
                for b in buckets:
                    if not await self._rate_slot(limiter, b):
                        break
                else:
                    return
            except BaseException:
                slots.release()
                raise
            slots.release()

    async def _rate_slot(self, limiter: RateLimiter, bucket: Bucket) -> bool:
        """``limiter.acquire(bucket)``, or false (no slot taken) if the bucket is held back
        already or :meth:`_hold` recalls us meanwhile."""
        if self._holds.get(bucket, 0.0) > time.monotonic():
            return False
        if limiter.try_acquire(bucket):  # the common case: no wait, so nothing to recall
            return True
        recalls = self._recalls[bucket]
        with anyio.CancelScope() as recall:
            recalls.add(recall)
            try:
                await limiter.acquire(bucket)
            finally:
                recalls.discard(recall)
        return not recall.cancelled_caught

    def _hold(self, bucket: Bucket, seconds: float) -> None:
        """Hold ``bucket`` back ``seconds`` from now, recalling the calls that wait for its
        rate-limit slot (they would sit out the hold inside their concurrency slots)."""
        self._holds[bucket] = max(self._holds.get(bucket, 0.0), time.monotonic() + seconds)
        for recall in self._recalls[bucket]:
            recall.cancel()

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
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """:meth:`request` with ``stream=True``, as a context manager that releases at the end.

        It gives the body in chunks of up to ``chunk_size`` bytes. A read that fails or waits
        longer than the timeout raises :class:`APIConnectionError` / :class:`APITimeoutError`,
        as a failed send would; it is not retried (the caller has part of the body already).
        """
        resp = await self.request(method, path_or_url, bucket=bucket, params=params,
                                  idempotent=True, timeout=timeout, stream=True)
        assert resp.stream is not None
        seconds = self.config.timeout if timeout is None else timeout
        chunks = _chunks(resp.stream, chunk_size, method, _path(self.url_for(path_or_url)), seconds)
        try:
            yield chunks
        finally:
            try:
                await chunks.aclose()
            finally:
                resp.release()

    async def _retry_or_raise(
        self, error: APIError, attempt: int, idempotent: bool, bucket: Buckets
    ) -> None:
        policy = self.retry_policy
        delay = policy.decide(error, attempt=attempt, idempotent=idempotent)
        if (isinstance(error, RateLimitError) and self.rate_limiter is not None
                and is_rate_window(error)):
            # Slow every task sharing this bucket, not only the one that was told; also when
            # the wait is too long for us and the error goes to the caller.
            hold = delay if delay is not None else error.retry_after
            if hold:
                held = _refusing_bucket(bucket, hold, getattr(self.rate_limiter, "limits", None))
                self._hold(held, hold)
                await self.rate_limiter.penalize(held, hold)
        if delay is None:
            raise error
        self._report_retry(RetryEvent(error.method, error.path, attempt, policy.max_retries + 1,
                                      delay, error))
        await anyio.sleep(delay)

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


def is_rate_window(error: RateLimitError) -> bool:
    """Whether a 429 is a rate window (hold the bucket back) or PostHog's query-concurrency 429
    ("Exceeded maximum concurrency limit ...", no ``Retry-After``): that one says "too many at
    once", not "too many this hour", so it is retried with backoff and holds nothing back."""
    detail = error.detail or ""
    return not any(marker in detail for marker in C.QUERY_CONCURRENCY_429_MARKERS)


def _refusing_bucket(bucket: Buckets, wait: float, limits: RateLimits | None) -> Bucket:
    """The bucket a 429 holds back: the only one, or, for a call paced in several, the one
    whose windows can ask for that long a wait (the hourly one for a long ``Retry-After``), so
    a 429 of a query's hourly window does not hold every persons call back for an hour."""
    if isinstance(bucket, str):
        return bucket
    if limits is None:
        return bucket[0]
    fitting = [(max((w.period for w in limits.windows(b)), default=0.0), b) for b in bucket]
    longer = [item for item in fitting if item[0] >= wait]
    return min(longer)[1] if longer else max(fitting)[1]


def _releaser(resp: aiohttp.ClientResponse, slots: asyncio.Semaphore) -> Callable[[], None]:
    def release() -> None:
        resp.release()
        slots.release()

    return release


async def _chunks(body: aiohttp.StreamReader, size: int, method: str, path: str,
                  seconds: float) -> AsyncGenerator[bytes, None]:
    """The body's chunks, with a failed or stalled read raised as one of our errors."""
    try:
        async for chunk in body.iter_chunked(size):
            yield chunk
    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
        raise _connection_error(method, path, exc, seconds) from None


def _path(url: str) -> str:
    """The URL's path: what errors and logs show (never the query string)."""
    return urlsplit(url).path


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


def _connection_error(
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
