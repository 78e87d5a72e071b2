"""Queries are calls of their view: ``ph.with_options(deadline=, max_wait=, max_retries=)`` (and
the client's own) apply to ``ph.query`` as to every other call, while a query keeps its own
per-request timeout (longer than PostHog's). A view's deadline bounds the whole query: the wait
for a query slot, the POST, every poll; the query is cancelled on the server when it gives up."""

from __future__ import annotations

import asyncio
import time

import pytest

from posthog_async import (
    APITimeoutError, DeadlineExceededError, InternalServerError, RateLimits, RateLimitWaitError,
)
from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from ._cli import wait_for
from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def test_a_views_deadline_bounds_the_polling_and_cancels_the_query() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=5)) as server:
        async with server.client(rate_limits=None) as ph:
            web = ph.with_options(deadline=0.6)
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError) as info:
                await web.query.hogql("SELECT 1", refresh="force_async")
            took = time.monotonic() - started
            assert 0.5 < took < 1.5  # not the query's own 600 s
            error = info.value
            assert error.deadline == 0.6 and error.maybe_processed
            assert "status" in error.waiting_for and "cancelling the query on the server" in str(error)
            await wait_for(lambda: len(server.queries.cancelled) == 1, 2)  # sent in the background
            assert server.stats.by_endpoint["DELETE query/:id/"] == 1


async def test_a_views_deadline_bounds_a_blocking_query_too() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=5)) as server:
        async with server.client(rate_limits=None) as ph:
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await ph.with_options(deadline=0.5).query.hogql("SELECT 1")
            assert time.monotonic() - started < 1.5  # not the query's 75 s timeout
            await wait_for(lambda: len(server.queries.cancelled) == 1, 2)


async def test_the_clients_deadline_applies_and_the_query_deadline_wins_when_shorter() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=5)) as server:
        async with server.client(rate_limits=None, deadline=0.5) as ph:
            with pytest.raises(DeadlineExceededError):
                await ph.query.hogql("SELECT 1", refresh="force_async")
            started = time.monotonic()
            with pytest.raises(APITimeoutError, match=r"still running after 0\.3s") as info:
                await ph.with_options(deadline=10).query.hogql("SELECT 1", refresh="force_async",
                                                               deadline=0.3)
            assert not isinstance(info.value, DeadlineExceededError)
            assert time.monotonic() - started < 1.0
            await wait_for(lambda: len(server.queries.cancelled) == 2, 2)


async def test_a_views_deadline_bounds_the_wait_for_a_query_slot() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           query_options=QueryOptions(latency=1.5)) as server:
        async with server.client(rate_limits=None) as ph:
            ph.query.max_in_flight = 1
            first = asyncio.ensure_future(ph.query.hogql("SELECT 1"))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError) as info:
                await ph.with_options(deadline=0.3).query.hogql("SELECT 2")
            assert time.monotonic() - started < 0.8
            assert info.value.waiting_for == "a query slot" and not info.value.maybe_processed
            assert (await first).results == [[1]]
            assert server.stats.by_endpoint["POST query/"] == 1  # the second was never sent
            assert server.queries.cancelled == []


async def test_a_views_max_wait_sheds_a_query_at_once() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        async with server.client(rate_limits=RateLimits(hogql=[(1, 60)])) as ph:
            await ph.query.hogql("SELECT 1")
            started = time.monotonic()
            with pytest.raises(RateLimitWaitError) as info:
                await asyncio.wait_for(ph.with_options(max_wait=0.1).query.hogql("SELECT 1"), 5)
            assert time.monotonic() - started < 0.5
            assert info.value.bound == "max_wait" and info.value.bucket == "hogql"
            assert server.stats.by_endpoint["POST query/"] == 1


async def test_a_views_max_retries_applies_to_queries() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
            server.fail_next(503, path_contains="/query/")
            with pytest.raises(InternalServerError):
                await ph.with_options(max_retries=0).query.hogql("SELECT 1")
            server.fail_next(503, path_contains="/query/")
            assert (await ph.query.hogql("SELECT 1")).results == [[1]]  # the client's 5 retries
            assert server.stats.requests == 3  # 503; 503, then the answer


async def test_the_views_timeout_does_not_cut_a_query_short() -> None:
    """A query's own per-request timeout (75 s) outlasts PostHog's, so the server decides
    when a query is too slow; a view's short timeout is for its other calls."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.3)) as server:
        async with server.client(rate_limits=None) as ph:
            answer = await ph.with_options(timeout=0.1).query.hogql("SELECT 1")
            assert answer.results == [[1]]


async def test_giving_up_on_a_query_never_waits_for_its_cancel() -> None:
    """A query the client gave up on (its timeout, its deadline) is cancelled on the server in
    the background: the caller's deadline holds even when the DELETE must wait for a
    concurrency slot, here held by the abandoned attempt of the query itself."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=3)) as server:
        async with server.client(rate_limits=None, max_concurrency=1) as ph:
            for _ in range(2):  # the first abandoned attempt makes the next ones guarded
                started = time.monotonic()
                with pytest.raises(APITimeoutError):
                    await ph.query.hogql("SELECT 1", timeout=0.3)
                assert time.monotonic() - started < 0.8
            await wait_for(lambda: len(server.queries.cancelled) >= 1, 2)
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await ph.with_options(deadline=0.5).query.hogql("SELECT 1")
            assert time.monotonic() - started < 0.8
