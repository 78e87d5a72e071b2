"""Running one query: the per-project cap, the POST, polling an asynchronous query, cancelling.

Every query gets a ``client_query_id`` of ours, so it can be cancelled (``DELETE query/:id/``)
whatever stage it is at: still being sent, running on the server (a blocking query keeps
running in ClickHouse when its client goes away), or polled. The DELETE is sent when the
awaiting task is cancelled (awaited up to 5 s, shielded: the loop may be ending with the task),
and when our own timeout or deadline gives up (in the background: the caller's deadline holds,
also when the DELETE must wait for a concurrency slot). It is best effort, never queues behind
the calls of its buckets (other queries' status polls), and one that was not answered is
logged as a WARNING.

PostHog runs at most 3 queries at once per team and answers a 4th with a 429 after holding it
up to 30 s; :class:`QueryGate` keeps at most ``limit`` queries of one project in flight per
client (the POST and the polls), so that 429 does not happen in normal use.

A query is one call of the view it is made on, in two parts: its own per-request ``timeout``
(75 s by default, longer than PostHog's 10 s for HogQL and 60 s for other kinds, so the server
decides when a query is too slow; the view's and client's ``timeout`` do not apply), and the
view's ``deadline``, ``max_wait`` and ``max_retries`` (``ph.with_options(...)``), which apply as
to every other call. A view's ``deadline`` bounds the *whole* query: the wait for a query slot,
the POST, every poll of an asynchronous query and the backoff between them; each request gets
what is left of it. The query's own ``deadline`` (600 s by default) bounds it too: whichever
is shorter ends the query, and a cancel is sent to the server either way. The view's deadline
wins when shorter because it is the caller's promise (a web handler's 2 s must not become a
10-minute poll), the query's when shorter because it is the only bound a caller without one has.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import anyio
import msgspec

from ... import _constants as C
from ..._config import NO_LIMIT, NO_OPTIONS, RequestOptions
from ..._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    DeadlineExceededError,
    InternalServerError,
    PostHogError,
    UnexpectedResponseError,
)
from ..._query_models import QueryResponse, decode_query_response, decode_query_status
from ..._ratelimit import Bucket
from ..._queues import urgent
from ..._retry import RetryEvent
from ..._transport import Response, Transport
from ._gate import gate_for

__all__ = ["QuerySender", "OTHER_QUERY_BUCKETS", "HOGQL_BUCKETS", "gate_for"]

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


class _Bounds:
    """One query's place in time: when the view's deadline ends it, and what it is doing."""

    def __init__(self, path: str, options: RequestOptions, deadline: float | None) -> None:
        self.path, self.options, self.deadline = path, options, deadline
        self.started = anyio.current_time()
        self.end = math.inf if deadline is None else self.started + deadline
        self.stage = "a query slot"
        self.requests = 0
        self.sent = False  # the POST may have reached the server: cancel it when giving up

    def request_options(self) -> RequestOptions:
        """The view's options for the next request, its deadline what is left of the view's."""
        if self.deadline is None:
            return self.options
        now = anyio.current_time()
        if now >= self.end:
            raise self.exceeded(now)
        self.requests += 1
        return dataclasses.replace(self.options, deadline=self.end - now)

    def exceeded(self, now: float | None = None) -> DeadlineExceededError:
        now = anyio.current_time() if now is None else now
        assert self.deadline is not None
        return DeadlineExceededError(
            f"POST {self.path}: the view's deadline of {self.deadline:g}s exceeded after "
            f"{now - self.started:.2f}s (waiting for {self.stage})"
            + ("; cancelling the query on the server in the background" if self.sent else ""),
            method="POST", path=self.path, deadline=self.deadline, waited=now - self.started,
            attempts=self.requests, waiting_for=self.stage, maybe_processed=self.sent)


class QuerySender:
    """Sends queries of one project (``base`` = ``/api/projects/<id>``) through ``transport``,
    as calls of the view whose ``options`` (deadline, max_wait, max_retries) it is given."""

    def __init__(self, transport: Transport, base: str, project: tuple[str, str],
                 options: RequestOptions = NO_OPTIONS) -> None:
        self._transport = transport
        self._path = f"{base}/query/"
        self._project = project
        self._options = options

    async def execute(
        self, query: Mapping[str, Any], cls: type[R], *, refresh: str | None, name: str | None,
        timeout: float, deadline: float, buckets: tuple[Bucket, ...],
    ) -> R:
        """POST the query and return its answer as ``cls``, polling if the server runs it in
        the background; cancelled on the server if we are cancelled or give up. ``timeout`` is
        per request, ``deadline`` the query's own; the view's deadline bounds it as well (see
        the module's docstring for which wins)."""
        query_id = uuid.uuid4().hex
        body: dict[str, Any] = {"query": dict(query), "client_query_id": query_id}
        if refresh is not None:
            body["refresh"] = refresh
        if name is not None:
            body["name"] = name
        bounds = _Bounds(self._path, self._options, self._transport.view_deadline(self._options))
        own_end = bounds.started + deadline
        give_up = False
        try:
            with anyio.fail_after(min(deadline, bounds.end - bounds.started)):
                async with gate_for(self._transport).slot(
                        self._project, max_wait=self._max_wait(), path=self._path):
                    return await self._run(query_id, body, cls, timeout, buckets, bounds)
        except anyio.get_cancelled_exc_class():
            if bounds.sent:
                await self._cancel_later(query_id, C.QUERY_CANCEL_TIMEOUT)
            raise
        except TimeoutError:
            give_up = True
            if anyio.current_time() < own_end - 0.001:  # the view's deadline came first
                raise bounds.exceeded() from None
            raise APITimeoutError(
                f"POST {self._path}: query {query_id} still running after {deadline:g}s "
                "(cancelling it on the server in the background)", method="POST",
                path=self._path) from None
        except APITimeoutError:
            give_up = True
            raise
        except APIStatusError as error:
            raise _explained(error) from None
        finally:
            if give_up and bounds.sent:
                await self._cancel_later(query_id)

    def _max_wait(self) -> float | None:
        """The view's ``max_wait``, else the client's (``None``: none)."""
        max_wait = self._options.max_wait
        if max_wait is None:
            max_wait = self._transport.config.max_wait
        return None if max_wait is None or max_wait == NO_LIMIT else max_wait

    async def _cancel_later(self, query_id: str, wait: float = 0.0) -> None:
        """Cancel on the server in a task of its own, waiting for it at most ``wait`` seconds
        (shielded). When we give up (a timeout, a deadline) the caller does not wait: its
        timeout or deadline is a promise, and the DELETE may have to wait for a concurrency
        slot (the abandoned attempt of this very query keeps one until the server answers
        it); one turn of the loop lets the DELETE take a free slot before the caller's next
        call does. When the awaiting task is cancelled it waits up to
        ``QUERY_CANCEL_TIMEOUT``: the loop may be ending with the task, and the DELETE should
        be on its way first; one that needs longer (paced behind a call of its buckets) goes
        on in the background."""
        task = asyncio.get_running_loop().create_task(self._cancel(query_id))
        gate_for(self._transport).keep(task)
        if wait <= 0:
            await asyncio.sleep(0)
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(wait):
            await asyncio.shield(task)

    async def _run(self, query_id: str, body: dict[str, Any], cls: type[R], timeout: float,
                   buckets: tuple[Bucket, ...], bounds: _Bounds) -> R:
        resp = await self._post(body, buckets, timeout, bounds)
        if resp.status == 202:
            status, _ = self._status(resp.content, "POST")
            return await self._poll(status.id or query_id, cls, timeout, bounds)
        return self._answer(resp.content, cls, "POST", self._path)

    async def _post(self, body: dict[str, Any], buckets: tuple[Bucket, ...], timeout: float,
                    bounds: _Bounds) -> Response:
        """POST the query. A query is a read and keeps its ``client_query_id``, so sending it
        again is safe (PostHog's ``enqueue_process_query_task`` returns the status of an id it
        has results for, else runs it anew): a dropped connection, a 500 or a 502 is sent again
        with the client's backoff and retry budget, as a GET would be. Not a 504 or 512 (PostHog
        gave up on this very query: it fails again, see :func:`_explained`), nor a timeout of
        ours (the query is slow, not lost)."""
        transport = self._transport
        attempt = 0
        while True:
            attempt += 1
            bounds.stage = "the answer to the query"
            options = bounds.request_options()
            bounds.sent = True
            try:
                return await transport.request("POST", self._path, bucket=buckets, json=body,
                                               idempotent=False, timeout=timeout,
                                               options=options)
            except (APIConnectionError, InternalServerError) as error:
                if not _lost(error):
                    raise
                policy = transport.retry_policy
                delay = policy.decide(error, attempt=attempt, idempotent=True,
                                      max_retries=self._options.max_retries)
                if delay is None:
                    raise
                budget = policy.max_retries if self._options.max_retries is None \
                    else self._options.max_retries
                event = RetryEvent("POST", self._path, attempt, budget + 1, delay, error)
                logger.info("retrying POST %s in %.2fs (attempt %d of %d failed: %s)",
                            self._path, delay, attempt, budget + 1, type(error).__name__)
                if transport.on_retry is not None:
                    transport.on_retry(event)
                bounds.stage = f"the retry after {type(error).__name__} (in {delay:.2f}s)"
                await anyio.sleep(delay)

    async def _poll(self, query_id: str, cls: type[R], timeout: float, bounds: _Bounds) -> R:
        """GET the status with backoff until it is complete. A poll that fails in transit (a
        dropped connection, a gateway's 502/504) is simply polled again, up to 5 times in a
        row; a status that says the query failed (400 with its message, 500 without) is
        raised at once, never re-polled: it stays failed."""
        path = f"{self._path}{query_id}/"
        delay = C.QUERY_POLL_INITIAL
        lost = 0
        while True:
            bounds.stage = f"the next poll of the query's status (in {delay:.2f}s)"
            await anyio.sleep(delay)
            delay = min(delay * C.QUERY_POLL_FACTOR, C.QUERY_POLL_MAX)
            bounds.stage = "the query's status"
            try:
                resp = await self._transport.request("GET", path, bucket=OTHER_QUERY_BUCKETS,
                                                     timeout=timeout, idempotent=False,
                                                     options=bounds.request_options())
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

    async def _cancel(self, query_id: str) -> bool:
        """``DELETE query/:id/``: shielded, best effort, bounded in time; true if answered.

        PostHog counts the DELETE as it counts a status poll (``QueryViewSet.get_throttles``:
        no ``query`` in its body, so ``clickhouse_burst`` + ``clickhouse_sustained``, or the
        "API queries" plan's throttles), so it is paced in the same buckets; but it goes ahead
        of every call queued there (:func:`urgent`): behind the other queries' polls, paced
        one per 3 s, it would wait out its bound and the query would run on, holding one of
        the project's 3 slots. Its bound is its own timeout plus the pacing it still needs
        with one call going first (the call at the head of a bucket's queue keeps its turn).
        A cancel that was not answered is logged as a WARNING."""
        path = f"{self._path}{query_id}/"
        limiter = self._transport.rate_limiter
        failure = "no answer within its bound"
        with anyio.CancelScope(shield=True):
            pacing = 0.0
            if limiter is not None:
                with anyio.move_on_after(C.QUERY_CANCEL_TIMEOUT), contextlib.suppress(Exception):
                    pacing = await limiter.wait_time(OTHER_QUERY_BUCKETS, ahead=1)
            with anyio.move_on_after(C.QUERY_CANCEL_TIMEOUT + pacing), urgent():
                try:
                    await self._transport.request("DELETE", path, bucket=OTHER_QUERY_BUCKETS,
                                                  timeout=C.QUERY_CANCEL_TIMEOUT)
                except PostHogError as error:
                    failure = str(error)
                else:
                    logger.debug("cancelled query %s on the server", query_id)
                    return True
        logger.warning("could not cancel query %s on the server (it may run on until PostHog's "
                       "own time limit, holding one of the project's query slots): %s",
                       query_id, failure)
        return False


def _unexpected(method: str, path: str, content: bytes, exc: Exception) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        f"{method} {path}: the answer is not a query answer ({exc})", method=method, path=path,
        status_code=200, body=content[:2000].decode("utf-8", "replace"))


def _lost(error: APIError) -> bool:
    """A failure the transport does not retry for a POST, after which the query may simply be
    sent again: a dropped connection that may have reached the server, a 500 or a 502 (the
    transport retries 503s and connections that never reached the server itself)."""
    if isinstance(error, APIConnectionError):
        return error.maybe_processed and not isinstance(error, APITimeoutError)
    return isinstance(error, InternalServerError) and error.status_code in (500, 502)


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
