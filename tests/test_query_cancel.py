"""A query's cancel (``DELETE query/:id/``) against the offline PostHog: sent promptly while
other queries are polled, logged when it could not be sent, and never claimed unless answered.

PostHog counts the DELETE as it counts a status poll (``clickhouse_burst`` +
``clickhouse_sustained``), so both are paced in the client's ``persons`` and ``queries``
buckets; the polls of other queries fill the ``queries`` queue, and the cancel must go ahead
of them instead of waiting out its bound behind them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from posthog_async import APITimeoutError, DeadlineExceededError, RateLimits
from posthog_async import _constants as C
from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions
from tests._cli import wait_for
from tests.conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

#: One status poll or cancel a second in the ``queries`` bucket (PostHog's is one per 3 s).
PACED = RateLimits(hogql=(), queries=[(3600, 3600.0)], safety_margin=0)
QUERY = "POST /api/projects/1/query/"


def query_ids(server: FakePostHog) -> list[str]:
    return [body["client_query_id"] for body in server.stats.bodies.get(QUERY, [])]


async def polling(ph: Any, count: int) -> list[asyncio.Task[Any]]:
    """``count`` asynchronous queries, polled until cancelled (the server runs each 30 s)."""
    ph.query.max_in_flight = count
    return [asyncio.ensure_future(ph.query.hogql(f"SELECT {i}", refresh="force_async"))
            for i in range(count)]


async def stop(ph: Any, tasks: list[asyncio.Task[Any]]) -> None:
    """End the other queries at once: closing the client ends their waits (no cancels sent)."""
    await ph.aclose()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_cancelled_query_is_cancelled_on_the_server_ahead_of_the_other_polls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Five other queries' polls are queued in the ``queries`` bucket (one a second): behind
    them the DELETE would wait ~5 s, past its bound, and never be sent."""
    monkeypatch.setattr(C, "QUERY_CANCEL_TIMEOUT", 1.5)
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(latency=30, concurrency=6)) as server:
        async with server.client(rate_limits=PACED) as ph:
            tasks = await polling(ph, 6)
            await asyncio.sleep(2.5)
            started = time.monotonic()
            tasks[0].cancel()
            with pytest.raises(asyncio.CancelledError):
                await tasks[0]
            assert time.monotonic() - started < 1.5 + 0.3  # waits for it QUERY_CANCEL_TIMEOUT at most
            # ... and the DELETE goes ahead of the polls: at most the head's pacing and its own
            await wait_for(lambda: len(server.queries.cancelled) == 1, 3.5 - (time.monotonic() - started))
            await stop(ph, tasks)


async def test_giving_up_on_a_query_cancels_it_ahead_of_the_other_polls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The query's own deadline gives up while five others are polled: the cancel, sent in
    the background, still reaches the server within its bound, and the error does not say
    the query was cancelled (the DELETE had not been answered when it was raised)."""
    monkeypatch.setattr(C, "QUERY_CANCEL_TIMEOUT", 1.5)
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(latency=30, concurrency=6)) as server:
        async with server.client(rate_limits=PACED) as ph:
            tasks = await polling(ph, 5)
            ph.query.max_in_flight = 6
            await asyncio.sleep(1.5)
            with pytest.raises(APITimeoutError) as raised:
                await ph.query.hogql("SELECT 99", refresh="force_async", deadline=2.5)
            assert "cancelled on the server" not in str(raised.value)
            assert "cancelling it on the server in the background" in str(raised.value)
            mine = query_ids(server)[-1]
            await wait_for(lambda: mine in server.queries.cancelled, 3.5)
            await stop(ph, tasks)


async def test_a_cancel_that_cannot_be_sent_is_logged_as_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """The server is gone when the task is cancelled: a WARNING names the query, and the
    view's deadline error does not claim the cancel either."""
    caplog.set_level(logging.DEBUG, logger="posthog_async")
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(latency=30)) as server:
        async with server.client(rate_limits=None) as ph:
            task = asyncio.ensure_future(ph.query.hogql("SELECT 1", refresh="force_async"))
            await wait_for(lambda: query_ids(server), 2)
            server.fail_next(403, times=10, method="DELETE")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert server.queries.cancelled == []
            warned = [r for r in caplog.records if r.levelno == logging.WARNING
                      and query_ids(server)[0] in r.getMessage()]
            assert warned and "could not cancel" in warned[0].getMessage()
            with pytest.raises(DeadlineExceededError) as raised:
                await ph.with_options(deadline=0.5).query.hogql("SELECT 2", refresh="force_async")
            assert "was cancelled on the server" not in str(raised.value)
