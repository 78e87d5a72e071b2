"""``AsyncPostHog``: the client object a web app creates once and shares."""

from __future__ import annotations

from dataclasses import replace
from types import TracebackType
from typing import Awaitable, Callable, Iterable, TypeVar

from . import _constants as C
from ._concurrency import FanOutResult, fan_out
from ._config import resolve_config
from ._ratelimit import RateLimits
from ._retry import RetryHook, RetryPolicy
from ._transport import Transport
from .resources import (
    Integrations, Persons, PropertyDefinitions, SessionRecordings, Subscriptions, Users,
)
from .resources._base import Scope

__all__ = ["AsyncPostHog", "ScopedPostHog"]

R = TypeVar("R")
_DEFAULT_LIMITS = RateLimits()


class ScopedPostHog:
    """The resources of one project (or environment), sharing its parent's pool and limits.

    Obtained from :meth:`AsyncPostHog.project` or :meth:`AsyncPostHog.environment`.
    """

    def __init__(self, transport: Transport, scope: Scope) -> None:
        self._transport = transport
        self.scope = scope
        self.persons = Persons(transport, scope)
        self.property_definitions = PropertyDefinitions(transport, scope)
        self.subscriptions = Subscriptions(transport, scope)
        self.users = Users(transport, scope)
        self.session_recordings = SessionRecordings(transport, scope)
        self.integrations = Integrations(transport, scope)

    def project(self, project_id: str | int) -> ScopedPostHog:
        """A view whose calls go to ``/api/projects/<project_id>/...``."""
        return ScopedPostHog(self._transport, replace(self.scope, family="projects", id=str(project_id)))

    def environment(self, environment_id: str | int) -> ScopedPostHog:
        """A view whose calls go to ``/api/environments/<environment_id>/...``."""
        return ScopedPostHog(
            self._transport, replace(self.scope, family="environments", id=str(environment_id))
        )

    def with_options(self, *, timeout: float) -> ScopedPostHog:
        """A view with another per-request timeout (same pool, limits and project).

        Example: ``person = await ph.with_options(timeout=2).persons.retrieve(uuid)``
        """
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        return ScopedPostHog(self._transport, replace(self.scope, timeout=float(timeout)))

    async def fan_out(
        self,
        project_ids: Iterable[str | int],
        fn: Callable[[ScopedPostHog], Awaitable[R]],
        *,
        fail_fast: bool = False,
    ) -> FanOutResult[str | int, R]:
        """Run ``fn(ph.project(id))`` for every project at once, under the shared limits.

        Errors are collected per project in ``result.errors`` and do not cancel the other
        projects unless ``fail_fast=True``.

        Example::

            result = await ph.fan_out([1, 2, 3], lambda p: p.persons.values(key="plan"))
            for pid, values in result.results.items(): ...
        """

        async def run(pid: str | int) -> R:
            return await fn(self.project(pid))

        return await fan_out(project_ids, run, fail_fast=fail_fast)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scope.family}={self.scope.id!r} host={self._transport.config.host!r}>"


class AsyncPostHog(ScopedPostHog):
    """An asyncio client for PostHog's REST API.

    Create it once (it may be created outside a running event loop; the connection pool opens
    on first use) and share it::

        async with AsyncPostHog(project_id=12345) as ph:   # key from POSTHOG_PERSONAL_API_KEY
            person = await ph.persons.retrieve("0190b7a4-...")
            async for p in ph.persons.list(search="@acme.com"):
                ...

    Every request goes through one pool (``max_connections``), one cap on requests in flight
    (``max_concurrency``), and per-category throttles that follow PostHog's rate limits
    (``rate_limits``; pass ``None`` to disable). Failed requests are retried as the
    :class:`RetryPolicy` decides; ``on_retry`` is told of each retry.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str | None = None,
        project_id: str | int | None = None,
        max_connections: int = C.DEFAULT_MAX_CONNECTIONS,
        max_concurrency: int = C.DEFAULT_MAX_CONCURRENCY,
        rate_limits: RateLimits | None = _DEFAULT_LIMITS,
        max_retries: int = C.DEFAULT_MAX_RETRIES,
        max_retry_after: float = C.DEFAULT_MAX_RETRY_AFTER,
        timeout: float = C.DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        config = resolve_config(
            api_key=api_key, host=host, project_id=project_id, timeout=timeout,
            max_connections=max_connections, max_concurrency=max_concurrency,
            max_retries=max_retries, max_retry_after=max_retry_after, rate_limits=rate_limits,
        )
        transport = Transport(config, retry_policy=retry_policy, on_retry=on_retry)
        super().__init__(transport, Scope("projects", config.project_id))

    @property
    def host(self) -> str:
        return self._transport.config.host

    @property
    def project_id(self) -> str | None:
        return self.scope.id

    @property
    def closed(self) -> bool:
        return self._transport.closed

    async def aclose(self) -> None:
        """Close the connection pool. Safe to call twice, and when cancelled."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncPostHog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
