"""The shared transport: one aiohttp session, one concurrency cap, one set of throttles.

Every resource and every scoped view (``ph.project(2)``) sends through the same
:class:`Transport`, so limits hold across everything a client does.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Mapping
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
from ._ratelimit import Throttle
from ._retry import RetryEvent, RetryHook, RetryPolicy, parse_retry_after

__all__ = ["Transport", "RawResponse", "encode_params"]

logger = logging.getLogger("posthog_async")

Params = Mapping[str, Any]


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes


def encode_params(params: Params | None) -> dict[str, str]:
    """Query values as PostHog expects them: booleans as true/false, lists/dicts as JSON."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple, dict)):
            out[key] = msgspec.json.encode(value).decode()
        else:
            out[key] = str(value)
    return out


class Transport:
    """Owns the connection pool and applies throttling, the concurrency cap and retries."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        retry_policy: RetryPolicy | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self.config = config
        self.retry_policy = retry_policy or RetryPolicy(
            max_retries=config.max_retries, max_retry_after=config.max_retry_after
        )
        self.on_retry = on_retry
        self._session: aiohttp.ClientSession | None = None
        # An asyncio.Semaphore, not anyio's CapacityLimiter: aiohttp already ties us to asyncio,
        # and the anyio limiter adds two scheduler round trips per request (measured in
        # benchmarks/bench_overhead.py: about a third of our overhead over raw aiohttp).
        self._limiter: asyncio.Semaphore | None = None
        self._default_timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._closed = False
        self.throttles: dict[str, Throttle] = {}
        limits = config.rate_limits
        if limits is not None:
            for category in ("crud", "analytics"):
                self.throttles[category] = Throttle(
                    limits.for_category(category), safety_margin=limits.safety_margin
                )

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure_open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._closed:
            raise PostHogError("this AsyncPostHog client is closed; create a new one")
        if self._session is None or self._limiter is None:
            connector = aiohttp.TCPConnector(limit=self.config.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={
                    "Authorization": f"Bearer {self.config.api_key.reveal()}",
                    "User-Agent": C.USER_AGENT,
                    "Accept": "application/json",
                },
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                raise_for_status=False,
            )
            self._limiter = asyncio.Semaphore(self.config.max_concurrency)
        return self._session, self._limiter

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            # Shielded so a cancelled shutdown still closes the pool (no "Unclosed" warning).
            with anyio.CancelScope(shield=True):
                await session.close()

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
        params: Params | None = None,
        json: Any = None,
        category: str = "crud",
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> RawResponse:
        """Send one API call with throttling, the concurrency cap and retries; return its body.

        ``idempotent`` (default: true for GET/PUT/DELETE) allows retrying a 500.
        Raises the :mod:`posthog_async._exceptions` class matching the final failure.
        """
        session, limiter = self._ensure_open()
        url, path = self._resolve(path_or_url)
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        query = encode_params(params)
        data = None if json is None else msgspec.json.encode(json)
        headers = {"Content-Type": "application/json"} if data is not None else None
        client_timeout = self._timeout(timeout)
        throttle = self.throttles.get(category)
        attempt = 0
        while True:
            attempt += 1
            if throttle is not None:
                await throttle.acquire()
            error: APIError
            async with limiter:
                try:
                    async with session.request(
                        method, url, params=query or None, data=data, headers=headers,
                        timeout=client_timeout, allow_redirects=False,
                    ) as resp:
                        body = await resp.read()
                        if resp.status < 300:
                            return RawResponse(resp.status, resp.headers, body)
                        error = _status_error(method, path, resp, body)
                except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    error = _connection_error(method, path, exc, client_timeout)
            await self._retry_or_raise(error, attempt, idempotent, method, path, throttle)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        category: str = "crud",
        timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.StreamReader]:
        """Like :meth:`request` but yields the body as a stream (for large CSV exports).

        The concurrency slot is held until the ``async with`` block ends.
        """
        session, limiter = self._ensure_open()
        url, path = self._resolve(path_or_url)
        query = encode_params(params)
        client_timeout = self._timeout(timeout)
        throttle = self.throttles.get(category)
        attempt = 0
        while True:
            attempt += 1
            if throttle is not None:
                await throttle.acquire()
            error: APIError
            async with limiter:
                try:
                    resp = await session.request(
                        method, url, params=query, timeout=client_timeout, allow_redirects=False
                    )
                except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                    error = _connection_error(method, path, exc, client_timeout)
                else:
                    try:
                        if resp.status < 300:
                            yield resp.content
                            return
                        error = _status_error(method, path, resp, await resp.read())
                    finally:
                        resp.release()
            await self._retry_or_raise(error, attempt, True, method, path, throttle)

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        return self._default_timeout if seconds is None else aiohttp.ClientTimeout(total=seconds)

    def _resolve(self, path_or_url: str) -> tuple[str, str]:
        url = self.url_for(path_or_url)
        return url, urlsplit(url).path

    async def _retry_or_raise(
        self,
        error: APIError,
        attempt: int,
        idempotent: bool,
        method: str,
        path: str,
        throttle: Throttle | None,
    ) -> None:
        policy = self.retry_policy
        delay = policy.decide(error, attempt=attempt, idempotent=idempotent)
        if delay is None:
            raise error
        if isinstance(error, RateLimitError) and throttle is not None:
            # Slow every task sharing this throttle, not only the one that was told.
            throttle.penalize(delay)
        self._report_retry(RetryEvent(method, path, attempt, policy.max_retries + 1, delay, error))
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


def _status_error(
    method: str, path: str, resp: aiohttp.ClientResponse, body: bytes
) -> APIStatusError:
    return make_status_error(
        status_code=resp.status, method=method, path=path, raw_body=body,
        headers=resp.headers, retry_after=parse_retry_after(resp.headers),
    )


def _connection_error(
    method: str, path: str, exc: BaseException, timeout: aiohttp.ClientTimeout
) -> APIConnectionError:
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(
            f"{method} {path} timed out after {timeout.total}s", method=method, path=path
        )
    return APIConnectionError(
        f"{method} {path} failed: {type(exc).__name__}: {exc}", method=method, path=path,
        maybe_processed=not isinstance(exc, aiohttp.ClientConnectorError),
    )
