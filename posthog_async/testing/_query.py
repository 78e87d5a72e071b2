"""The fake's query API: ``POST query/``, ``GET``/``DELETE query/:id/``, as ``posthog/api/query.py``.

What it reproduces, each from PostHog's code (``shared/posthog-query-notes.md``):

- throttles by kind: ``HogQLQuery`` in the ``hogql`` bucket (``HogQLQueryThrottle``), every other
  kind, status poll and cancel in ``persons`` (``clickhouse_burst``) and ``queries``
  (``clickhouse_sustained``);
- at most ``concurrency`` queries per team at once; a query that finds no slot waits up to
  ``slot_wait`` seconds (PostHog: 30) and is then refused with a 429 *without* Retry-After;
- ``refresh``: blocking modes answer 200, asynchronous ones 202 with ``query_status``, polled
  with ``GET query/:id/`` (202 running, 200 done, 400 failed with a message, 500 without) and
  cancelled with ``DELETE query/:id/`` (200 ``{"message": ...}``); statuses expire;
- HogQL through :class:`~._query_engine.QueryEngine` (a real SQL engine), ``ActorsQuery`` with
  its own ``limit``/``offset`` and ``hasMore``, and a hook (:meth:`QueryHandlers.on_query`) for
  tests to answer any other kind.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import FakeAPIError, not_found, validation_error
from ._query_actors import run_actors_query
from ._query_engine import QueryEngine, query_error
from ._request import Reply, Req
from ._store import FakePerson, ProjectData, now_iso

__all__ = ["QueryHandlers", "QueryOptions", "KindHandler", "ActorsResolver", "REFRESH_MODES"]

REFRESH_MODES = ("blocking", "async", "lazy_async", "force_blocking", "force_async",
                 "force_cache", "async_except_on_cache_miss")
_ASYNC_MODES = frozenset({"async", "lazy_async", "force_async", "async_except_on_cache_miss"})
#: The friendlier wording newer servers send instead of the limiter's own message.
NEW_CONCURRENCY_MESSAGE = "Too many queries are running right now — please try again in a moment."
#: ``kind_handler(query, project)`` -> the answer of a query kind the fake does not run itself.
KindHandler = Callable[[dict[str, Any], ProjectData], Any]
#: ``resolver(source, project)`` -> the persons behind an insight point, for ActorsQuery.
ActorsResolver = Callable[[dict[str, Any], ProjectData], Iterable[FakePerson]]


@dataclass
class QueryOptions:
    """The query API's knobs: ``concurrency`` per team (PostHog: 3), ``slot_wait`` seconds a
    query waits for a slot before its 429 (PostHog: 30), ``latency`` seconds every query runs,
    ``status_ttl`` seconds an async status lives (PostHog: 20 minutes), ``allow_offset`` (an
    organisation on PostHog's OFFSET allow-list, or an older server), ``new_concurrency_message``
    (the newest servers' wording of the concurrency 429), ``stickiness_actors_query`` (false: an
    older server that knows no ``StickinessActorsQuery``)."""

    concurrency: int = 3
    slot_wait: float = 30.0
    latency: float = 0.0
    status_ttl: float = 1200.0
    allow_offset: bool = False
    new_concurrency_message: bool = False
    stickiness_actors_query: bool = True


@dataclass
class _Status:
    id: str
    team_id: int
    started: str
    expires: float
    complete: bool = False
    error: bool = False
    error_message: str | None = None
    results: Any = None
    end_time: str | None = None
    task: asyncio.Task[None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "query_async": True, "team_id": self.team_id,
                "error": self.error, "complete": self.complete, "error_message": self.error_message,
                "results": self.results, "start_time": self.started, "end_time": self.end_time,
                "expiration_time": None, "task_id": self.id, "query_progress": None,
                "pickup_time": self.started, "dashboard_id": None, "insight_id": None}


@dataclass
class QueryHandlers:
    """The routes' handlers, with what tests may read: ``log`` (kind, refresh, id of every
    query run), ``cancelled`` (ids a DELETE cancelled), ``peak_running`` per team."""

    check_rate: Callable[[str, str], None]
    options: QueryOptions = field(default_factory=QueryOptions)
    engine: QueryEngine = field(default_factory=QueryEngine)
    kinds: dict[str, KindHandler] = field(default_factory=dict)
    actors_resolver: ActorsResolver | None = None
    log: list[tuple[str, str | None, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    peak_running: dict[int, int] = field(default_factory=dict)
    _running: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    _statuses: dict[str, _Status] = field(default_factory=dict)
    _blocking: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    _slot_freed: asyncio.Event | None = None

    def on_query(self, kind: str, handler: KindHandler) -> None:
        """Answer queries of ``kind`` with ``handler(query, project)`` (a JSON-able answer, or
        raise ``FakeAPIError``): the hook for kinds the fake does not compute itself."""
        self.kinds[kind] = handler

    async def close(self) -> None:
        tasks = [s.task for s in self._statuses.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.engine.close()

    # -- routes ---------------------------------------------------------------------------

    async def create_with_kind(self, req: Req) -> Reply:
        body = req.data()
        if not isinstance(body, dict):
            raise validation_error("Query body must be a JSON object.")
        query = body.get("query")
        if query is not None and not isinstance(query, dict):
            raise validation_error("Query must be a JSON object.")
        body_kind = query.get("kind") if isinstance(query, dict) else None
        if req.params["kind"] != body_kind:
            raise validation_error(f'Query kind mismatch: path kind "{req.params["kind"]}" does '
                                   f'not match body kind "{body_kind}".')
        return await self.create(req)

    async def create(self, req: Req) -> Reply:
        body = req.body()
        query = body.get("query")
        is_hogql = isinstance(query, dict) and query.get("kind") == "HogQLQuery"
        self._throttle(req.key, ("hogql",) if is_hogql else ("persons", "queries"))
        if not isinstance(query, dict) or not isinstance(query.get("kind"), str):
            raise validation_error("This field is required.", attr="query")
        refresh = body.get("refresh")
        if refresh is not None and refresh not in REFRESH_MODES and not isinstance(refresh, bool):
            raise validation_error(f"Input should be {', '.join(repr(m) for m in REFRESH_MODES)}",
                                   attr="refresh")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 128):
            raise validation_error("String should have at most 128 characters", attr="name")
        query_id = body.get("client_query_id") or uuidlib.uuid4().hex
        if not isinstance(query_id, str):
            raise validation_error("Input should be a valid string", attr="client_query_id")
        project = req.project_data
        self.log.append((query["kind"], refresh if isinstance(refresh, str) else None, query_id))
        if refresh in _ASYNC_MODES or body.get("async") is True:
            return self._start_async(query_id, query, project)
        task = asyncio.ensure_future(self._run(query, project))
        self._blocking[query_id] = task
        try:
            return 200, await task
        except asyncio.CancelledError:
            if query_id in self.cancelled:  # a DELETE killed it, as ClickHouse's KILL QUERY does
                raise query_error("Query cancelled") from None
            raise
        finally:
            self._blocking.pop(query_id, None)

    async def retrieve(self, req: Req) -> Reply:
        self._throttle(req.key, ("persons", "queries"))
        status = self._status(req)
        code = 202
        if status.error:
            code = 400 if status.error_message else 500
        elif status.complete:
            code = 200
        return code, {"query_status": status.to_json()}

    async def destroy(self, req: Req) -> Reply:
        self._throttle(req.key, ("persons", "queries"))
        query_id = req.params["id"]
        self.cancelled.append(query_id)
        status = self._statuses.pop(query_id, None)
        if status is not None and status.task is not None:
            status.task.cancel()
        blocking = self._blocking.get(query_id)
        if blocking is not None:
            blocking.cancel()
        return 200, {"message": "Query cancelled"}

    # -- running ----------------------------------------------------------------------------

    def _throttle(self, key: str, buckets: tuple[str, ...]) -> None:
        """Every window of every bucket sees the request (DRF runs every throttle); the refusal
        waits for the longest."""
        refusals: list[FakeAPIError] = []
        for bucket in buckets:
            try:
                self.check_rate(bucket, key)
            except FakeAPIError as err:
                refusals.append(err)
        if refusals:
            raise max(refusals, key=lambda e: int(e.headers.get("Retry-After", "0")))

    def _status(self, req: Req) -> _Status:
        status = self._statuses.get(req.params["id"])
        if status is None or status.team_id != req.project_data.id:
            raise not_found(f"Query with ID {req.params['id']} not found.")
        if status.expires < time.monotonic():
            del self._statuses[status.id]
            raise not_found(f"Query with ID {status.id} not found.")
        return status

    def _start_async(self, query_id: str, query: dict[str, Any], project: ProjectData) -> Reply:
        status = _Status(query_id, project.id, now_iso(),
                         time.monotonic() + self.options.status_ttl)
        self._statuses[query_id] = status

        async def work() -> None:
            try:
                status.results = await self._run(query, project)
                status.complete = True
            except FakeAPIError as err:
                status.error, status.complete = True, True
                status.error_message = str(err.body.get("detail")) if isinstance(err.body, dict) else None
            except Exception:  # a bug in a hook: PostHog's "error without a message", a 500
                status.error, status.complete = True, True
            status.end_time = now_iso()

        status.task = asyncio.ensure_future(work())
        return 202, {"query_status": status.to_json()}

    async def _run(self, query: dict[str, Any], project: ProjectData) -> Any:
        await self._take_slot(project.id)
        try:
            if self.options.latency:
                await asyncio.sleep(self.options.latency)
            return self._answer(query, project)
        finally:
            self._running[project.id] -= 1
            if self._slot_freed is not None:
                self._slot_freed.set()

    async def _take_slot(self, team: int) -> None:
        """``RateLimit.use``: wait (up to ``slot_wait``) for one of the team's slots, else 429."""
        deadline = time.monotonic() + self.options.slot_wait
        while self._running[team] >= self.options.concurrency:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = (NEW_CONCURRENCY_MESSAGE if self.options.new_concurrency_message else
                          f"Exceeded maximum concurrency limit: {self.options.concurrency} for "
                          f"key: api:query:per-team:{team} and task: {uuidlib.uuid4().hex}")
                raise FakeAPIError(429, "throttled_error", "throttled", detail)
            self._slot_freed = self._slot_freed or asyncio.Event()
            self._slot_freed.clear()
            try:
                await asyncio.wait_for(self._slot_freed.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass
        self._running[team] += 1
        self.peak_running[team] = max(self.peak_running.get(team, 0), self._running[team])

    def _answer(self, query: dict[str, Any], project: ProjectData) -> Any:
        kind = query["kind"]
        if kind in self.kinds:
            return self.kinds[kind](query, project)
        if kind == "HogQLQuery":
            return self._hogql(query, project)
        if kind == "ActorsQuery":
            return run_actors_query(query, project, self.actors_resolver,
                                    stickiness_actors_query=self.options.stickiness_actors_query)
        raise validation_error(
            f"The fake PostHog does not compute {kind} queries: answer them in your test with "
            f"server.queries.on_query({kind!r}, handler)")

    def _hogql(self, query: dict[str, Any], project: ProjectData) -> dict[str, Any]:
        sql = query.get("query")
        if not isinstance(sql, str) or not sql.strip():
            raise validation_error("Field required", attr="query")
        values = query.get("values")
        if values is not None and not isinstance(values, Mapping):
            raise validation_error("Input should be a valid dictionary", attr="values")
        self.engine.allow_offset = self.options.allow_offset
        result = self.engine.run(project, sql, values)
        answer: dict[str, Any] = {
            "results": result.results, "columns": result.columns, "types": result.types,
            "hogql": result.hogql, "clickhouse": None, "error": None, "timings": [],
            "modifiers": {}, "explain": None, "metadata": None, "query_status": None,
            "is_cached": False, "last_refresh": now_iso(), "cache_key": uuidlib.uuid4().hex,
        }
        if result.has_more is not None:
            answer.update(hasMore=result.has_more, limit=result.limit, offset=result.offset)
        return answer
