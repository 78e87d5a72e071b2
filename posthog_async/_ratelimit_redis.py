"""``RedisRateLimiter``: one PostHog key's rate limits shared by every process, through Redis or Valkey.

PostHog counts a personal API key's requests per key, whichever process sends them, so four
workers that each pace themselves overrun the key four times over. This limiter keeps each
bucket's sliding log in Redis instead of in memory. One Lua script per request checks every
window of the call's buckets at once on the Redis server's clock and either records the send
(it leaves at once) or answers "room in ``wait`` seconds"; the caller sleeps that long without
a concurrency slot and asks again. In each process one caller per bucket asks at a time (the
client queues the others), so there is no stampede; a 429 seen by one process holds the bucket
back for all. It needs the ``redis`` extra
(``pip install "posthog-async-client[redis]"``); ``redis`` is imported only when a limiter is
built, so ``import posthog_async`` works without it.

If Redis cannot be reached it paces locally (one warning per outage) and tries Redis again
after ``cooldown`` seconds; ``on_error="raise"`` raises :class:`RateLimiterUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import anyio

from ._exceptions import ConfigurationError, PostHogError, RateLimiterUnavailableError
from ._pool import close_socket
from ._ratelimit_scripts import ACQUIRE_LUA, PENALIZE_LUA
from ._redis_location import client_location, failure_reason, redis_location
from ._ratelimit import BUCKETS, Bucket, Buckets, LocalRateLimiter, RateLimits, RateWindow, as_buckets

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger("posthog_async")

#: Default seconds added to every window: covers the lag between a slot reserved in Redis and
#: the request reaching PostHog (start-up, first connection, a busy event loop). 0.1 s was
#: still enough in the prototype (``scale-out-notes.md`` §5.4); 0.25 s costs 0.4 % of a minute.
DEFAULT_SAFETY_MARGIN = 0.25
_INSTALL_HINT = 'RedisRateLimiter needs redis-py: pip install "posthog-async-client[redis]"'

@dataclass(frozen=True)
class _Plan:
    """What one paced bucket sends to the acquire script: its keys and arguments."""

    keys: tuple[str, str, str]
    args: tuple[str, ...]
    config: str


class RedisRateLimiter:
    """A :class:`~posthog_async.RateLimiter` whose budget is shared through Redis or Valkey.

    Every process (or client) that uses the same Redis and the same PostHog key shares one
    sliding log per bucket, so together they stay under PostHog's per-key limits. Example::

        limiter = RedisRateLimiter("redis://cache:6379/0", limits=RateLimits())
        async with AsyncPostHog(rate_limiter=limiter) as ph:   # closes the limiter too
            await ph.persons.bulk_delete_all(distinct_ids=ids)

    ``redis`` is a URL or a ready ``redis.asyncio.Redis`` client (which is not closed by
    :meth:`aclose`). Keys are named ``<key_prefix>:{<fingerprint>}:<bucket>:...`` from the
    client's one-way fingerprint of host and key (or ``namespace``), never the key itself;
    every key expires once idle. All sharers must use the same windows, else
    :meth:`acquire` raises :class:`ConfigurationError`.

    ``safety_margin`` (default: 0.25 s, or ``limits.safety_margin`` if larger) is added to
    every window and spacing; half of it lets a caller late for its turn (a busy event loop) be
    recorded at its turn, so lateness does not add up from send to send, and half covers the
    way to PostHog. A send is recorded in Redis only when it is about to leave, so a
    caller that is cancelled or gives up never holds a slot (``max_reserve`` is gone: nothing
    is reserved ahead). A call counting in several buckets is recorded in all of them by one
    script run (their keys share one hash slot). Each Redis call is given ``timeout`` seconds
    and is not retried (a client you pass keeps its own settings, but is still cut off after
    ``timeout``); on failure the limiter paces this process alone with the same windows times
    ``fallback_share`` (e.g. ``0.25`` for four processes), warns once, and tries Redis again
    after ``cooldown`` seconds. Buckets without windows are paced locally only: PostHog does
    not throttle them.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        limits: RateLimits | None = None,
        namespace: str | None = None,
        key_prefix: str = "posthog_async",
        safety_margin: float | None = None,
        max_reserve: float | None = None,
        timeout: float = 1.0,
        on_error: Literal["local", "raise"] = "local",
        fallback_share: float = 1.0,
        cooldown: float = 5.0,
    ) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError
        except ImportError as exc:
            raise ConfigurationError(_INSTALL_HINT) from exc
        if on_error not in ("local", "raise"):
            raise ConfigurationError(f'on_error must be "local" or "raise", not {on_error!r}')
        if timeout <= 0 or cooldown < 0:
            raise ConfigurationError("timeout must be > 0, cooldown >= 0")
        if max_reserve is not None:
            warnings.warn("RedisRateLimiter(max_reserve=...) has no effect: sends are recorded "
                          "when they leave, never reserved ahead", DeprecationWarning, stacklevel=2)
        if not 0 < fallback_share <= 1:
            raise ConfigurationError("fallback_share must be in (0, 1]")
        for name, text in (("key_prefix", key_prefix), ("namespace", namespace or "x")):
            if not text or "{" in text or "}" in text:
                raise ConfigurationError(f"{name} must be non-empty and free of braces")
        self.limits = limits if limits is not None else RateLimits()
        self.safety_margin = (max(DEFAULT_SAFETY_MARGIN, self.limits.safety_margin)
                              if safety_margin is None else float(safety_margin))
        if self.safety_margin < 0:
            raise ConfigurationError("safety_margin must be >= 0")
        # A send recorded up to half the margin before it leaves (a caller late for its turn)
        # still leaves the other half for the network: see the acquire script.
        self._slack_ms = f"{self.safety_margin * 500:.3f}"
        self.key_prefix = key_prefix
        self.namespace = namespace
        self.timeout, self.cooldown = timeout, cooldown
        self.on_error = on_error
        self.fallback_share = fallback_share
        if isinstance(redis, str):
            self.location = redis_location(redis)
            try:
                # Our own short timeouts and no retries: redis-py's defaults take ~5 s to
                # report even a refused connection, far too long on the request path.
                self._redis: Redis = aioredis.Redis.from_url(
                    redis, socket_timeout=timeout, socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 0))
            except ValueError as exc:
                raise ConfigurationError(f"not a Redis URL: {self.location} ({exc})") from None
            self._owns_redis = True
        else:
            self.location = client_location(redis)
            self._redis, self._owns_redis = redis, False
        self._errors: tuple[type[BaseException], ...] = (
            RedisError, OSError, asyncio.TimeoutError, TimeoutError)
        self._acquire_script: AsyncScript = self._redis.register_script(ACQUIRE_LUA)
        self._penalize_script: AsyncScript = self._redis.register_script(PENALIZE_LUA)
        #: In-process pacing while Redis is away (and for buckets without windows).
        self.fallback = LocalRateLimiter(_scaled(self.limits, fallback_share))
        self.identity: str | None = None
        self._plans: dict[Bucket, _Plan] = {}
        if namespace is not None:
            self._bind(namespace)
        #: Sends paced locally because Redis failed or the circuit was open.
        self.fallbacks = 0
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._closed = False
        #: The event loop the Redis connections belong to.
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- RateLimiter -----------------------------------------------------------------------

    def bind(self, identity: str) -> None:
        """Name the budget after the client's key fingerprint (unless ``namespace`` was given).

        One limiter serves one key: binding it to another raises :class:`ConfigurationError`.
        """
        if self.namespace is not None or identity == self.identity:
            return
        if self.identity is not None:
            raise ConfigurationError("this RedisRateLimiter already paces another API key; "
                                     "create one limiter per key")
        if not identity or "{" in identity or "}" in identity:
            raise ConfigurationError("a limiter identity must be non-empty and free of braces")
        self._bind(identity)

    def try_acquire(self, buckets: Buckets) -> bool:
        """Only unpaced buckets are free without asking Redis."""
        chosen = as_buckets(buckets)
        return not any(self.limits.windows(b) for b in chosen) and self.fallback.try_acquire(chosen)

    async def wait_time(self, buckets: Buckets, *, ahead: int = 0) -> float:
        """Seconds until every bucket has room in the shared logs (``ahead``: requests of this
        process going first, counted at the bucket's spacing). Records nothing."""
        return await self._ask(as_buckets(buckets), reserve=False, ahead=ahead)

    async def reserve(self, buckets: Buckets) -> float:
        """Record a send now in every bucket's shared log, or say how long until there is room."""
        return await self._ask(as_buckets(buckets), reserve=True, ahead=0)

    async def acquire(self, buckets: Buckets) -> None:
        """Wait for room in every bucket's shared log, then record a send."""
        chosen = as_buckets(buckets)
        while (wait := await self.reserve(chosen)) > 0:
            await anyio.sleep(wait)

    async def release_loop(self) -> None:
        """Close the connections of the event loop that is ending (the client calls this as a
        loop it used shuts down): Redis connections belong to one loop, and the next loop
        opens its own."""
        if not self._closed:
            with anyio.CancelScope(shield=True), contextlib.suppress(*self._errors):
                await self._redis.connection_pool.disconnect()
            self._loop = None

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use this limiter from ``loop`` on: the connections of a loop that ended without
        :meth:`release_loop` (closed by hand, or left behind by a fork) are closed here, without
        that loop, and the pool opens new ones."""
        old, self._loop = self._loop, loop
        if old is None:
            return
        pool = self._redis.connection_pool
        connections = [*getattr(pool, "_available_connections", ()),
                       *getattr(pool, "_in_use_connections", ())]
        for connection in connections:
            writer = getattr(connection, "_writer", None)
            if writer is not None:
                close_socket(writer.transport)
                connection._writer = connection._reader = None
        with contextlib.suppress(Exception):
            pool.reset()  # type: ignore[no-untyped-call]

    async def penalize(self, bucket: Bucket, seconds: float) -> None:
        """Hold ``bucket`` back ``seconds`` for every sharer (after a 429). Never raises for
        Redis trouble: the hold is always applied to the local fallback as well."""
        await self.fallback.penalize(bucket, seconds)
        plan = self._plans.get(bucket)
        if plan is None or seconds <= 0 or self._closed or self._down_since is not None:
            return
        try:
            with anyio.fail_after(self.timeout):
                await self._penalize_script(keys=[plan.keys[1]], args=[f"{seconds * 1000:.3f}"])
        except self._errors as exc:
            if self.on_error == "raise":
                logger.warning("shared rate limiter at %s: could not share a 429 hold (%s)",
                               self.location, failure_reason(exc, self.timeout))
            else:
                self._failed(exc)

    async def aclose(self) -> None:
        """Close the Redis connection if this limiter created it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_redis:
            with anyio.CancelScope(shield=True):
                await self._redis.aclose()

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals -----------------------------------------------------------------------

    def _bind(self, identity: str) -> None:
        self.identity = identity
        margin_ms = self.safety_margin * 1000
        self._plans = {}
        for bucket in BUCKETS:
            windows = sorted(self.limits.windows(bucket), key=lambda w: (w.period, w.limit))
            if not windows:
                continue
            shortest = windows[0]
            spacing_ms = (shortest.period * 1000 + margin_ms) / shortest.limit
            pairs = [f"{x:.3f}" if isinstance(x, float) else str(x)
                     for w in windows for x in (w.limit, w.period * 1000)]
            config = ",".join(f"{w.limit}/{w.period:g}s" for w in windows)
            base = f"{self.key_prefix}:{{{identity}}}:{bucket}"
            self._plans[bucket] = _Plan(
                keys=(f"{base}:log", f"{base}:blocked", f"{base}:config"),
                args=(config, f"{spacing_ms:.3f}", f"{margin_ms:.3f}", str(len(windows)), *pairs),
                config=config,
            )

    async def _ask(self, buckets: tuple[Bucket, ...], *, reserve: bool, ahead: int) -> float:
        """One run of the acquire script over the paced buckets (local pacing while Redis is
        away; buckets without windows only honour a 429 hold, kept locally). Returns 0 (room
        now; recorded if ``reserve``) or the seconds to wait."""
        if self._closed:
            raise PostHogError("this RedisRateLimiter is closed")
        shared = tuple(b for b in buckets if self.limits.windows(b))
        if len(shared) < len(buckets):
            held = await self.fallback.wait_time(tuple(b for b in buckets if b not in shared))
            if held > 0 or not shared:
                return held
        if self.identity is None:
            raise ConfigurationError("RedisRateLimiter is not bound to a key: pass it to "
                                     "AsyncPostHog(rate_limiter=...) or give namespace=")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        probe = self._may_use_redis()
        if probe is None:
            return await self._locally(buckets, reserve, ahead)
        try:
            status, wait = await self._run(shared, reserve, ahead)
        except ConfigurationError:
            raise
        except self._errors as exc:
            self._failed(exc)
            return await self._locally(buckets, reserve, ahead)
        finally:
            if probe:
                self._probing = False
        self._recovered()
        return 0.0 if status == 1 else max(0.0, wait)

    async def _locally(self, buckets: tuple[Bucket, ...], reserve: bool, ahead: int) -> float:
        if not reserve:
            return await self.fallback.wait_time(buckets, ahead=ahead)
        wait = await self.fallback.reserve(buckets)
        if wait <= 0:
            self.fallbacks += 1
        return wait

    async def _run(self, buckets: tuple[Bucket, ...], reserve: bool,
                   ahead: int) -> tuple[int, float]:
        """One run of the acquire script: (1 recorded / 0 not, seconds to wait). Never sleeps."""
        plans = [self._plans[b] for b in buckets]
        keys = [key for plan in plans for key in plan.keys]
        args = ["reserve" if reserve else "peek", str(max(0, ahead)), self._slack_ms]
        args += [arg for plan in plans for arg in plan.args]
        with anyio.fail_after(self.timeout):
            reply = await self._acquire_script(keys=keys, args=args)
        status, value = int(reply[0]), reply[1]
        text = value.decode() if isinstance(value, bytes) else str(value)
        if status < 0:
            plan = plans[int(reply[2]) - 1]
            raise ConfigurationError(
                f"another process shares this key's {buckets[int(reply[2]) - 1]!r} budget with "
                f"windows {text} but this one has {plan.config}: every process sharing a key must "
                "use the same RateLimits (or another namespace=)")
        return status, float(text) / 1000

    def _may_use_redis(self) -> bool | None:
        """``None``: pace locally (circuit open); ``True``: this call probes; ``False``: normal."""
        if self._down_since is None:
            return False
        if self._probing or time.monotonic() < self._retry_at:
            return None
        self._probing = True
        return True

    def _failed(self, exc: BaseException) -> None:
        if self.on_error == "raise":
            raise RateLimiterUnavailableError(
                f"shared rate limiter at {self.location} unavailable "
                f"({failure_reason(exc, self.timeout)}); the request was not sent") from exc
        now = time.monotonic()
        self._retry_at = now + self.cooldown
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "shared rate limiter at %s unreachable (%s); pacing this process alone "
                "(share %g of the limits) and retrying Redis every %gs",
                self.location, failure_reason(exc, self.timeout), self.fallback_share, self.cooldown)

    def _recovered(self) -> None:
        if self._down_since is not None:
            logger.info("shared rate limiter at %s reachable again after %.1fs; sharing the "
                        "budget again", self.location, time.monotonic() - self._down_since)
            self._down_since = None

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.location!r}, limits={self.limits!r})"


def _scaled(limits: RateLimits, share: float) -> RateLimits:
    """The same windows with ``share`` of each limit (at least 1), for local fallback."""
    if share >= 1:
        return limits
    changes: dict[str, Sequence[RateWindow]] = {
        bucket: tuple(RateWindow(max(1, int(w.limit * share)), w.period)
                      for w in limits.windows(bucket))
        for bucket in BUCKETS
    }
    return replace(limits, **changes)  # type: ignore[arg-type]
