"""``AsyncPostHog``: the client object a web app creates once and shares.

There is one way to choose a project: the client's default (``project_id=`` or
``POSTHOG_PROJECT_ID``), or a view from ``ph.project(id)`` / ``ph.environment(id)``. Views are
free: they share the client's pool, concurrency cap and rate limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from functools import cached_property
from types import TracebackType
from typing import Any, TypeVar

from . import _constants as C
from ._concurrency import FanOutResult, fan_out
from ._config import NO_LIMIT, RequestOptions, check_options, resolve_config, resolve_project_id
from ._validation import require_project_id
from ._exceptions import ConfigurationError
from ._ratelimit import LocalRateLimiter, RateLimiter, RateLimits
from ._retry import RetryHook, RetryPolicy
from ._transport import Transport
from ._reach import ProjectReach, reachable_projects
from .resources import (
    Integrations,
    Organizations,
    PersonalAPIKeys,
    Persons,
    Projects,
    PropertyDefinitions,
    SessionRecordings,
    Subscriptions,
    Users,
)
from .resources._base import Scope
from .resources.query import Query

__all__ = ["AsyncPostHog", "ScopedPostHog", "Scope"]

R = TypeVar("R")
_DEFAULT_LIMITS = RateLimits()


class _Unset:
    def __repr__(self) -> str:
        return "(unchanged)"


_UNSET: Any = _Unset()


class ScopedPostHog:
    """The resources of one project (or environment), sharing its parent's pool and limits.

    Obtained from :meth:`AsyncPostHog.project` or :meth:`AsyncPostHog.environment`.
    """

    def __init__(self, transport: Transport, scope: Scope) -> None:
        self._transport = transport
        self.scope = scope

    @cached_property
    def persons(self) -> Persons:
        return Persons(self._transport, self.scope)

    @cached_property
    def query(self) -> Query:
        """PostHog's query API: HogQL, any query kind, insight actors, keyset reads."""
        return Query(self._transport, self.scope)

    @cached_property
    def property_definitions(self) -> PropertyDefinitions:
        return PropertyDefinitions(self._transport, self.scope)

    @cached_property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(self._transport, self.scope)

    @cached_property
    def users(self) -> Users:
        return Users(self._transport, self.scope)

    @cached_property
    def session_recordings(self) -> SessionRecordings:
        return SessionRecordings(self._transport, self.scope)

    @cached_property
    def integrations(self) -> Integrations:
        return Integrations(self._transport, self.scope)

    @cached_property
    def personal_api_keys(self) -> PersonalAPIKeys:
        return PersonalAPIKeys(self._transport, self.scope)

    @cached_property
    def organizations(self) -> Organizations:
        return Organizations(self._transport, self.scope)

    @cached_property
    def projects(self) -> Projects:
        return Projects(self._transport, self.scope)

    async def reachable_projects(
        self, project_ids: Iterable[int | str] | None = None
    ) -> ProjectReach:
        """The projects this key reaches, as PostHog decides it (the key's own record, its
        ``scoped_teams``, else its organisations' project pages), and every project it cannot
        reach (403/404) as ``not_covered`` with PostHog's message. With ``project_ids`` only
        those are checked. Needs ``project:read`` (and ``organization:read`` to discover).

        Example::

            reach = await ph.reachable_projects()
            for project in reach.projects:
                view = ph.project(project.id)   # same pool and limits
            assert reach.complete, reach.not_covered
        """
        return await reachable_projects(self.personal_api_keys, self.organizations, self.projects,
                                        project_ids=project_ids, users=self.users)

    @property
    def host(self) -> str:
        return self._transport.config.host

    @property
    def max_concurrency(self) -> int:
        """Requests in flight at once across the client and all its views."""
        return self._transport.config.max_concurrency

    @property
    def max_retry_after(self) -> float:
        """The longest ``Retry-After`` the client sleeps through before raising it."""
        return self._transport.retry_policy.max_retry_after

    def project(self, project_id: str | int) -> ScopedPostHog:
        """A view whose calls go to ``/api/projects/<project_id>/...``."""
        return ScopedPostHog(self._transport, replace(self.scope, family="projects", id=_pid(project_id)))

    def environment(self, environment_id: str | int) -> ScopedPostHog:
        """A view whose calls go to ``/api/environments/<environment_id>/...`` (PostHog marks
        this family deprecated; property definitions stay under ``/api/projects/``)."""
        return ScopedPostHog(
            self._transport, replace(self.scope, family="environments", id=_pid(environment_id))
        )

    def with_options(
        self,
        *,
        timeout: float = _UNSET,
        deadline: float | None = _UNSET,
        max_retries: int = _UNSET,
        max_wait: float | None = _UNSET,
    ) -> ScopedPostHog:
        """A view with other limits for its calls (same pool, rate limits and project).

        ``timeout`` bounds one attempt (connect, send, read); ``deadline`` the whole call:
        waiting for a concurrency slot and for its rate-limit bucket, every attempt, the
        backoff between them and any ``Retry-After``; ``max_retries`` the retries after the
        first attempt; ``max_wait`` the wait for the call's bucket, beyond which the call is
        refused at once with a :class:`RateLimitWaitError` carrying ``retry_after`` (load
        shedding). ``deadline=None`` / ``max_wait=None`` lift a limit the client sets.

        Example: ``person = await ph.with_options(deadline=2, max_retries=1).persons.retrieve(uuid)``
        """
        check_options(timeout=None if timeout is _UNSET else timeout,
                      deadline=None if deadline is _UNSET else deadline,
                      max_retries=None if max_retries is _UNSET else max_retries,
                      max_wait=None if max_wait is _UNSET else max_wait)
        current = self.scope.options
        options = RequestOptions(
            timeout=current.timeout if timeout is _UNSET else float(timeout),
            deadline=current.deadline if deadline is _UNSET else _limit(deadline),
            max_retries=current.max_retries if max_retries is _UNSET else int(max_retries),
            max_wait=current.max_wait if max_wait is _UNSET else _limit(max_wait),
        )
        return ScopedPostHog(self._transport, replace(self.scope, options=options))

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
        return f"<{type(self).__name__} {self.scope.family}={self.scope.id!r} host={self.host!r}>"


def _pid(project_id: str | int) -> str:
    return require_project_id(project_id)


def _limit(value: float | None) -> float:
    """A view's deadline or max_wait: ``None`` lifts the client's (no limit)."""
    return NO_LIMIT if value is None else float(value)


class AsyncPostHog(ScopedPostHog):
    """An asyncio client for PostHog's REST API.

    Create it once (it may be created outside a running event loop; the connection pool opens
    on first use) and share it::

        async with AsyncPostHog(project_id=12345) as ph:   # key from POSTHOG_PERSONAL_API_KEY
            person = await ph.persons.retrieve("0190b7a4-...")
            async for p in ph.persons.list(search="@acme.com"):
                ...

    Every request goes through one pool (``max_connections``), one cap on requests in flight
    (``max_concurrency``), and a rate limiter that paces PostHog's per-key buckets
    (``rate_limits``; ``None`` disables pacing). Several processes sharing one key can share one
    budget with ``rate_limiter=RedisRateLimiter(...)``. Failed requests are retried as the
    :class:`RetryPolicy` decides; ``on_retry`` is told of each retry. ``timeout`` bounds one
    attempt, ``deadline`` a whole call, ``max_wait`` the wait for a rate-limit bucket (see
    :meth:`with_options`, which sets them per view).

    One client serves one event loop at a time, and successive loops one after the other: a
    client made at module level opens a fresh pool on each new loop (``asyncio.run`` twice, a
    test client per test) and the pool of a loop that ended is closed with it. Two threads
    using it at the same time get a ``RuntimeError``: give each thread its own client.
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
        rate_limiter: RateLimiter | None = None,
        max_retries: int = C.DEFAULT_MAX_RETRIES,
        max_retry_after: float = C.DEFAULT_MAX_RETRY_AFTER,
        timeout: float = C.DEFAULT_TIMEOUT,
        deadline: float | None = C.DEFAULT_DEADLINE,
        max_wait: float | None = C.DEFAULT_MAX_WAIT,
        retry_policy: RetryPolicy | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        config = resolve_config(
            api_key=api_key, host=host, timeout=timeout, max_connections=max_connections,
            max_concurrency=max_concurrency, max_retries=max_retries,
            max_retry_after=max_retry_after, deadline=deadline, max_wait=max_wait,
        )
        if rate_limiter is not None and rate_limits is not _DEFAULT_LIMITS:
            raise ConfigurationError(
                "pass rate_limits to the rate limiter itself, not beside rate_limiter=")
        limiter = rate_limiter
        if limiter is None and rate_limits is not None:
            limiter = LocalRateLimiter(rate_limits)
        if limiter is not None:
            limiter.bind(config.key_fingerprint)
        transport = Transport(config, rate_limiter=limiter, retry_policy=retry_policy,
                              on_retry=on_retry)
        super().__init__(transport, Scope("projects", resolve_project_id(project_id)))

    @property
    def project_id(self) -> str | None:
        return self.scope.id

    @property
    def rate_limiter(self) -> RateLimiter | None:
        return self._transport.rate_limiter

    @property
    def closed(self) -> bool:
        return self._transport.closed

    async def aclose(self) -> None:
        """Close the connection pool (and the rate limiter). Safe to call twice, and when cancelled."""
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
