"""The query buckets through the shared limiter, against a real Valkey: a query of another kind
than HogQL (and each of its status polls) is recorded in ``persons`` and ``queries`` by one
script run, a HogQL query in ``hogql`` alone, and PostHog's hourly 429 holds ``queries`` for
every sharer while ``persons`` stays open."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("redis")

from posthog_async import RateLimitError, RateLimits, RedisRateLimiter
from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from ._valkey import any_redis
from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

TREND = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
LIMITS = RateLimits(persons=[(1000, 60)], queries=[(1000, 60), (9000, 3600)],
                    hogql=[(1000, 60)], safety_margin=0)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with any_redis() as url:
        yield url


@pytest_asyncio.fixture
async def inspector(redis_url: str) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def logs(inspector: Any, ns: str) -> dict[str, int]:
    base = f"posthog_async:{{{ns}}}"
    return {b: await inspector.llen(f"{base}:{b}:log") for b in ("persons", "queries", "hogql")}


async def test_a_two_bucket_query_is_recorded_in_both_buckets(redis_url: str,
                                                              inspector: Any) -> None:
    ns = f"query-{uuid.uuid4().hex[:12]}"
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.4)) as server:
        server.seed_persons(3)
        limiter = RedisRateLimiter(redis_url, namespace=ns, limits=LIMITS)
        async with server.client(rate_limiter=limiter) as ph:
            page = await ph.query.actors(TREND, day="2026-01-10")
            assert len(page.results) == 3
            assert await logs(inspector, ns) == {"persons": 1, "queries": 1, "hogql": 0}
            await ph.query.hogql("SELECT 1")
            assert await logs(inspector, ns) == {"persons": 1, "queries": 1, "hogql": 1}
            await ph.query.actors(TREND, day="2026-01-10", refresh="force_async")
            polls = server.stats.by_endpoint["GET query/:id/"]
            assert polls >= 1  # the POST and every poll, in both buckets
            assert await logs(inspector, ns) == {"persons": 2 + polls, "queries": 2 + polls,
                                                 "hogql": 1}
            assert limiter.fallbacks == 0


async def test_an_hourly_query_429_holds_queries_for_every_sharer_not_persons(
        redis_url: str, inspector: Any) -> None:
    ns = f"query-{uuid.uuid4().hex[:12]}"
    async with FakePostHog(api_key=API_KEY, rate_limits={"queries": [(1, 3600)]}) as server:
        server.seed_persons(2)
        one = RedisRateLimiter(redis_url, namespace=ns, limits=LIMITS)
        other = RedisRateLimiter(redis_url, namespace=ns, limits=LIMITS)
        async with server.client(rate_limiter=one, retry_policy=fast_retries(max_retry_after=1)) as ph, \
                server.client(rate_limiter=other) as ph2:
            await ph.query.actors(TREND, day="2026-01-10")
            with pytest.raises(RateLimitError):
                await ph.query.actors(TREND, day="2026-01-10")
            base = f"posthog_async:{{{ns}}}"
            assert await inspector.pttl(f"{base}:queries:blocked") > 3_000_000
            assert await inspector.exists(f"{base}:persons:blocked") == 0
            assert await other.wait_time(("queries",)) > 3000  # the other process sees the hold
            assert await other.wait_time(("persons",)) < 1
            assert (await ph2.persons.list(limit=1)).results
