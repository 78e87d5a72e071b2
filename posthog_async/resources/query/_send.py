"""Running one query: the per-project cap, the POST, polling an asynchronous query, cancelling.

Every query gets a ``client_query_id`` of ours, so it can be cancelled (``DELETE query/:id/``)
whatever stage it is at: still being sent, running on the server (a blocking query keeps
running in ClickHouse when its client goes away), or polled. The DELETE is sent when the
awaiting task is cancelled, when our own timeout gives up, or when an asynchronous query
outlives its deadline; it is shielded and best effort.

PostHog runs at most 3 queries at once per team and answers a 4th with a 429 after holding it
up to 30 s; :class:`QueryGate` keeps at most ``limit`` queries of one project in flight per
client (the POST and the polls), so that 429 does not happen in normal use.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import msgspec

from ... import _constants as C
from ..._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    PostHogError,
    UnexpectedResponseError,
)
from ..._query_models import QueryResponse, decode_query_response, decode_query_status
from ..._ratelimit import Bucket
from ..._transport import Transport

__all__ = ["QueryGate", "QuerySender", "OTHER_QUERY_BUCKETS", "HOGQL_BUCKETS"]

logger = logging.getLogger("posthog_async")
R = TypeVar("R", bound=QueryResponse)

#: HogQL queries: PostHog's ``HogQLQueryThrottle``.
HOGQL_BUCKETS: tuple[Bucket, ...] = ("hogql",)
#: Every other query kind, and every status poll and cancel (their requests carry no HogQL
#: query): ``clickhouse_burst`` (the persons bucket) and ``clickhouse_sustained``.
OTHER_QUERY_BUCKETS: tuple[Bucket, ...] = ("persons", "queries")
_NOT_TRANSIENT = {504, 512}
#: A status poll lost on the way (no query status in the answer) is polled again, this often.
_GATEWAY = {502, 504}
_MAX_LOST = 5


class QueryGate:
    """At most ``limit`` queries in flight per project, for one client (all its views)."""

    def __init__(self, limit: int = C.MAX_QUERIES_IN_FLIGHT) -> None:
        self.limit = limit
        self.in_flight: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._changed: asyncio.Condition | None = None

    @asynccontextmanager
    async def slot(self, project: tuple[str, str]) -> AsyncIterator[None]:
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        async with changed:
            await changed.wait_for(lambda: self.in_flight[project] < self.limit)
            self.in_flight[project] += 1
        try:
            yield
        finally:
            self.in_flight[project] -= 1
            with anyio.CancelScope(shield=True):  # a cancelled query still frees its slot
                async with changed:
                    changed.notify_all()


_gates: weakref.WeakKeyDictionary[Transport, QueryGate] = weakref.WeakKeyDictionary()


def gate_for(transport: Transport) -> QueryGate:
    """The client's gate (shared by every view of one client)."""
    gate = _gates.get(transport)
    if gate is None:
        gate = _gates[transport] = QueryGate()
    return gate


class QuerySender:
    """Sends queries of one project (``base`` = ``/api/projects/<id>``) through ``transport``."""

    def __init__(self, transport: Transport, base: str, project: tuple[str, str]) -> None:
        self._transport = transport
        self._path = f"{base}/query/"
        self._project = project

    async def execute(
        self, query: Mapping[str, Any], cls: type[R], *, refresh: str | None, name: str | None,
        timeout: float, deadline: float, buckets: tuple[Bucket, ...],
    ) -> R:
        """POST the query and return its answer as ``cls``, polling if the server runs it in
        the background; cancelled on the server if we are cancelled or give up."""
        query_id = uuid.uuid4().hex
        body: dict[str, Any] = {"query": dict(query), "client_query_id": query_id}
        if refresh is not None:
            body["refresh"] = refresh
        if name is not None:
            body["name"] = name
        async with gate_for(self._transport).slot(self._project):
            cancelled = False
            try:
                with anyio.fail_after(deadline):
                    return await self._run(query_id, body, cls, timeout, buckets)
            except anyio.get_cancelled_exc_class():
                cancelled = True
                raise
            except TimeoutError:
                cancelled = True
                raise APITimeoutError(
                    f"POST {self._path}: query {query_id} still running after {deadline:g}s "
                    "(cancelled on the server)", method="POST", path=self._path) from None
            except APITimeoutError:
                cancelled = True
                raise
            except APIStatusError as error:
                raise _explained(error) from None
            finally:
                if cancelled:
                    await self._cancel(query_id)

    async def _run(self, query_id: str, body: dict[str, Any], cls: type[R], timeout: float,
                   buckets: tuple[Bucket, ...]) -> R:
        resp = await self._transport.request("POST", self._path, bucket=buckets, json=body,
                                             idempotent=False, timeout=timeout)
        if resp.status == 202:
            status, _ = self._status(resp.content, "POST")
            return await self._poll(status.id or query_id, cls, timeout)
        return self._answer(resp.content, cls, "POST", self._path)

    async def _poll(self, query_id: str, cls: type[R], timeout: float) -> R:
        """GET the status with backoff until it is complete. A poll that fails in transit (a
        dropped connection, a gateway's 502/504) is simply polled again, up to 5 times in a
        row; a status that says the query failed (400 with its message, 500 without) is
        raised at once, never re-polled: it stays failed."""
        path = f"{self._path}{query_id}/"
        delay = C.QUERY_POLL_INITIAL
        lost = 0
        while True:
            await anyio.sleep(delay)
            delay = min(delay * C.QUERY_POLL_FACTOR, C.QUERY_POLL_MAX)
            try:
                resp = await self._transport.request("GET", path, bucket=OTHER_QUERY_BUCKETS,
                                                     timeout=timeout, idempotent=False)
            except APIStatusError as error:
                if _has_status(error) or error.status_code not in _GATEWAY or lost >= _MAX_LOST:
                    raise _status_failure(error) from None
                lost += 1
                continue
            except APIConnectionError:
                if lost >= _MAX_LOST:
                    raise
                lost += 1
                continue
            lost = 0
            status, results = self._status(resp.content, "GET", path)
            if status.complete and not status.error:
                if results is None:
                    return cls()
                return self._answer(results, cls, "GET", path)

    def _status(self, content: bytes, method: str, path: str | None = None) -> tuple[Any, Any]:
        try:
            return decode_query_status(content)
        except (KeyError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _unexpected(method, path or self._path, content, exc) from None

    def _answer(self, content: bytes | msgspec.Raw, cls: type[R], method: str, path: str) -> R:
        try:
            answer = decode_query_response(content, cls)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _unexpected(method, path, bytes(content), exc) from None
        if answer.results is None and isinstance(answer.query_status, dict):
            inner = answer.query_status  # "async_except_on_cache_miss" may answer 200 this way
            if inner.get("complete") and "results" in inner:
                return decode_query_response(msgspec.json.encode(inner["results"]), cls)
        return answer

    async def _cancel(self, query_id: str) -> None:
        """``DELETE query/:id/``: shielded, best effort, bounded in time."""
        path = f"{self._path}{query_id}/"
        with anyio.CancelScope(shield=True), anyio.move_on_after(C.QUERY_CANCEL_TIMEOUT):
            try:
                await self._transport.request("DELETE", path, bucket=OTHER_QUERY_BUCKETS,
                                              timeout=C.QUERY_CANCEL_TIMEOUT)
            except PostHogError as error:
                logger.info("could not cancel query %s: %s", query_id, error)


def _unexpected(method: str, path: str, content: bytes, exc: Exception) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        f"{method} {path}: the answer is not a query answer ({exc})", method=method, path=path,
        status_code=200, body=content[:2000].decode("utf-8", "replace"))


def _has_status(error: APIStatusError) -> bool:
    return isinstance(error.body, dict) and isinstance(error.body.get("query_status"), dict)


def _status_failure(error: APIStatusError) -> APIStatusError:
    """A failed asynchronous query (status 400 with PostHog's message, 500 without): the
    message is the status's ``error_message``, not the whole status object."""
    body = error.body if isinstance(error.body, dict) else {}
    status = body.get("query_status")
    if isinstance(status, dict):
        reason = status.get("error_message") or "the query failed without a message"
        error.detail = str(reason)
        error.message = f"{error.method} {error.path} -> {error.status_code}: {reason}"
        error.args = (error.message,)
    return _explained(error)


def _explained(error: APIStatusError) -> APIStatusError:
    """504/512 say the query itself is too slow or too big: sending it again will not help."""
    if error.status_code in _NOT_TRANSIENT:
        error.message += ("; PostHog gave up on this query (too slow or too much memory), so "
                          "the same query fails again: narrow it (a tighter WHERE, a smaller "
                          "LIMIT) or page it with ph.query.keyset(...)")
        error.args = (error.message,)
    return error
