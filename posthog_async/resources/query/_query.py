"""``ph.query``: PostHog's query API (``POST /api/projects/:id/query/``, scope ``query:read``).

The way a personal API key reads analytics and persons at scale: HogQL (``hogql``), any query
kind (``run``), the persons behind an insight point (``actors``), and every row of a result too
big for one answer (``keyset``). Rate limits are PostHog's: HogQL queries have their own bucket
(120 an hour by default), other kinds count in the persons bucket *and* their own hourly window;
at most 3 queries per project are in flight (PostHog's own per-team cap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from ... import _constants as C
from ..._query_models import ActorsResponse, HogQLResponse, QueryResponse
from ..._validation import require_text
from .._base import Resource
from ._actors import ActorsPaginator, actors_source
from ._keyset import KeysetReader, RunHogQL
from ._send import HOGQL_BUCKETS, OTHER_QUERY_BUCKETS, QuerySender, gate_for
from ._waits import ClientRun, WaitCallback

__all__ = ["Query", "Refresh", "REFRESH_MODES"]

R = TypeVar("R", bound=QueryResponse)

Refresh = Literal["blocking", "async", "lazy_async", "force_blocking", "force_async",
                  "force_cache", "async_except_on_cache_miss"]
"""A query's ``refresh``: whether PostHog may answer from its cache and whether it waits."""
REFRESH_MODES = ("blocking", "async", "lazy_async", "force_blocking", "force_async",
                 "force_cache", "async_except_on_cache_miss")
"""PostHog's ``refresh`` values (``posthog/hogql_queries/query_runner.py``)."""
_MAX_NAME = 128


class Query(Resource):
    """Everything under ``/api/projects/:project_id/query/``."""

    bucket = "queries"

    @property
    def max_in_flight(self) -> int:
        """Queries of one project in flight at once, for the whole client (default 3, as
        PostHog's per-team cap). Setting it applies to every view of the client."""
        return gate_for(self._transport).limit

    @max_in_flight.setter
    def max_in_flight(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("max_in_flight must be a whole number >= 1")
        gate_for(self._transport).limit = value

    @property
    def max_retry_after(self) -> float:
        """The longest rate-limit wait one call sleeps through (the client's
        ``RetryPolicy.max_retry_after``); readers of many pages wait longer ones out."""
        return self._transport.retry_policy.max_retry_after

    def _sender(self) -> QuerySender:
        # The gate is per team, as PostHog's cap (``api:query:per-team:<team_id>``): project N
        # and environment N are the same team (a project's id is its main environment's), so
        # ``ph.project(1).query`` and ``ph.environment(1).query`` share three slots.
        return QuerySender(self._transport, self._base(), ("team", str(self._scope.id)),
                           self._scope.options)

    async def hogql(
        self, sql: str, *, values: Mapping[str, Any] | None = None,
        refresh: Refresh = "force_blocking", name: str | None = None,
        timeout: float = C.QUERY_TIMEOUT, deadline: float = C.QUERY_DEADLINE,
    ) -> HogQLResponse:
        """Run one HogQL query; ``{name}`` placeholders in ``sql`` come from ``values``
        (PostHog writes them into the query as constants; lists become tuples).

        ``refresh`` defaults to ``"force_blocking"`` so a lookup never reads a stale cached
        answer (PostHog caches HogQL on its day-insight schedule); ``"force_async"`` runs it in
        the background and polls. ``timeout`` is per request (above PostHog's own 10 s for
        HogQL; the view's and client's ``timeout`` do not apply), ``deadline`` the whole
        query's, after which it is cancelled on the server. The view's ``deadline``
        (``ph.with_options(deadline=2)``) bounds the whole query too, its wait for a query slot
        and every poll included, and the shorter of the two wins; its ``max_wait`` and
        ``max_retries`` apply as to any call.

        The answer may be cut: 100 rows when the SQL has no LIMIT (``has_more``), at most
        50,000 with one. ``response.complete`` says so and iterating a cut answer warns; read
        every row with :meth:`keyset`. OFFSET is refused to personal API keys (400).

        Example::

            answer = await ph.query.hogql(
                "SELECT id, properties.email FROM persons WHERE properties.plan = {plan} LIMIT 10",
                values={"plan": "pro"})
            for person_id, email in answer: ...
        """
        require_text(sql, "sql")
        query: dict[str, Any] = {"kind": "HogQLQuery", "query": sql}
        if values:
            query["values"] = {k: list(v) if isinstance(v, (tuple, set, frozenset)) else v
                               for k, v in values.items()}
        return await self._execute(query, HogQLResponse, refresh=refresh, name=name,
                                   timeout=timeout, deadline=deadline)

    async def run(
        self, query: Mapping[str, Any], *, refresh: Refresh | None = None,
        name: str | None = None, timeout: float = C.QUERY_TIMEOUT,
        deadline: float = C.QUERY_DEADLINE,
    ) -> QueryResponse:
        """Send any query kind (a mapping with ``kind``) and return its answer.

        ``refresh`` is PostHog's (default: the server's, ``"blocking"``; HogQL queries sent
        through :meth:`run` default to ``"force_blocking"`` as in :meth:`hogql`). ``timeout``
        and ``deadline`` are as in :meth:`hogql`, and so are the view's options.

        Example: ``answer = await ph.query.run({"kind": "TrendsQuery", "series": [...]})``
        """
        if not isinstance(query, Mapping) or not isinstance(query.get("kind"), str):
            raise ValueError("query must be a mapping with a 'kind', e.g. {'kind': 'HogQLQuery', ...}")
        if query["kind"] == "HogQLQuery" and refresh is None:
            refresh = "force_blocking"
        cls: type[QueryResponse] = (HogQLResponse if query["kind"] == "HogQLQuery"
                                    else ActorsResponse if query["kind"] == "ActorsQuery"
                                    else QueryResponse)
        return await self._execute(query, cls, refresh=refresh, name=name, timeout=timeout,
                                   deadline=deadline)

    async def _execute(self, query: Mapping[str, Any], cls: type[R], *, refresh: str | None,
                       name: str | None, timeout: float, deadline: float) -> R:
        if refresh is not None and refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH_MODES)}, got {refresh!r}")
        if name is not None and (not isinstance(name, str) or len(name) > _MAX_NAME):
            raise ValueError(f"name must be a string of at most {_MAX_NAME} characters")
        if timeout <= 0 or deadline <= 0:
            raise ValueError("timeout and deadline must be > 0")
        buckets = HOGQL_BUCKETS if query.get("kind") == "HogQLQuery" else OTHER_QUERY_BUCKETS
        return await self._sender().execute(query, cls, refresh=refresh, name=name,
                                            timeout=timeout, deadline=deadline, buckets=buckets)

    def actors(
        self, insight_query: Mapping[str, Any], *, day: date | datetime | str | int | None = None,
        series: int | None = None, status: str | None = None, breakdown: Any = None,
        compare: str | None = None, interval: int | None = None, operator: str | None = None,
        funnel_step: int | None = None, funnel_step_breakdown: Any = None,
        funnel_custom_steps: Sequence[int] | None = None,
        funnel_trends_drop_off: bool | None = None,
        funnel_trends_entrance_period_start: str | None = None,
        correlation_person_converted: bool | None = None, correlation_person_entity: Any = None,
        correlation_property_values: Any = None, include_recordings: bool | None = None,
        select: Sequence[str] | None = None, search: str | None = None,
        properties: Sequence[Mapping[str, Any]] | None = None,
        order_by: Sequence[str] | None = None, limit: int | None = None,
        offset: int | None = None, refresh: Refresh | None = None,
        on_wait: WaitCallback | None = None,
    ) -> ActorsPaginator:
        """The persons behind one point of an insight, through an ``ActorsQuery``.

        ``insight_query`` is the insight's query (``TrendsQuery``, ``LifecycleQuery``,
        ``StickinessQuery``, ``RetentionQuery``, ``FunnelsQuery``, ``FunnelCorrelationQuery``);
        the other arguments pick the point (see ``posthog_async/resources/query/_actors.py``
        for which kind takes which). Awaited, the first page; ``async for``, every person
        once (``limit`` per page, 1000 by default; PostHog's ``hasMore`` and ``offset``).
        Iterating waits out a rate-limit wait longer than one call sleeps through (PostHog's
        1,200 queries an hour, spent) before the next page, ``on_wait(seconds, error)`` told
        first; awaited, the one call raises it (``RateLimitWaitError``) as any call does.

        Example::

            trend = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
            async for person in ph.query.actors(trend, day="2026-01-10"):
                print(person.id, person.distinct_ids)
        """
        source = actors_source(
            insight_query, day=day, series=series, status=status, breakdown=breakdown,
            compare=compare, interval=interval, operator=operator, funnel_step=funnel_step,
            funnel_step_breakdown=funnel_step_breakdown, funnel_custom_steps=funnel_custom_steps,
            funnel_trends_drop_off=funnel_trends_drop_off,
            funnel_trends_entrance_period_start=funnel_trends_entrance_period_start,
            correlation_person_converted=correlation_person_converted,
            correlation_person_entity=correlation_person_entity,
            correlation_property_values=correlation_property_values,
            include_recordings=include_recordings)
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < (1 if name == "limit" else 0)):
                raise ValueError(f"{name} must be a whole number >= {1 if name == 'limit' else 0}")
        if limit is not None and limit > C.HOGQL_MAX_ROWS:
            raise ValueError(f"limit must be at most {C.HOGQL_MAX_ROWS} (PostHog's cap)")
        columns = list(select) if select else ["actor"]
        if not any(c in ("actor", "person") for c in columns):
            columns.insert(0, "actor")
        query: dict[str, Any] = {"kind": "ActorsQuery", "source": source, "select": columns}
        extras: dict[str, Any] = {
            "search": search, "orderBy": list(order_by) if order_by else None,
            "properties": [dict(p) for p in properties] if properties else None,
            "limit": limit, "offset": offset}
        query.update({k: v for k, v in extras.items() if v is not None})

        async def run(actors_query: dict[str, Any]) -> ActorsResponse:
            response: ActorsResponse = await self._execute(
                actors_query, ActorsResponse, refresh=refresh, name=None,
                timeout=C.QUERY_TIMEOUT, deadline=C.QUERY_DEADLINE)
            return response

        return ActorsPaginator(ClientRun(run, self._transport), query, page_limit=limit,
                               on_wait=on_wait,
                               max_retry_after=self.max_retry_after)

    def keyset(
        self, *, select: str, from_: str, key: str | Sequence[str] = "id",
        where: str | None = None, group_by: str | None = None,
        values: Mapping[str, Any] | None = None, page_size: int = C.KEYSET_PAGE_SIZE,
        after: Any = None, key_column: str | Sequence[str] | None = None,
        refresh: Refresh = "force_blocking", on_wait: WaitCallback | None = None,
    ) -> KeysetReader:
        """Every row of a HogQL query, ``page_size`` rows a query, by keyset (never OFFSET).

        Each page is ``SELECT select FROM from_ WHERE (where) AND key > <last key> [GROUP BY
        group_by] ORDER BY key LIMIT page_size``; ``key`` must be unique (or a tuple of
        columns that is) and selected (its answer column is ``key_column``, by default the
        key's last name: ``p.id`` -> ``id``). ``after`` resumes after a key; the reader's
        ``last_key`` is the key of the last row read.

        PostHog allows 120 HogQL queries an hour: a read of more pages meets a wait longer
        than one call sleeps through. The reader waits it out before its next page, telling
        ``on_wait(seconds, error)`` first; cancel the task to stop (resume with ``after=``).
        A view's ``max_wait`` or ``deadline`` still bounds each page: such a wait is raised.

        Example::

            reader = ph.query.keyset(select="id, properties.email AS email", from_="persons",
                                     where="properties.plan = {plan}", values={"plan": "pro"})
            async for person_id, email in reader: ...
        """

        return KeysetReader(self.hogql_runner(refresh), select=select, from_=from_, key=key,
                            where=where, group_by=group_by, values=values, page_size=page_size,
                            after=after, key_column=key_column, on_wait=on_wait,
                            max_retry_after=self.max_retry_after)

    def hogql_runner(self, refresh: Refresh = "force_blocking") -> RunHogQL:
        """``run(sql, values)`` for a :class:`KeysetReader` with a page shape of its own."""

        async def run(sql: str, page_values: dict[str, Any]) -> HogQLResponse:
            return await self.hogql(sql, values=page_values or None, refresh=refresh)

        return ClientRun(run, self._transport)
