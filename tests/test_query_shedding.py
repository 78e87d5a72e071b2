"""``max_wait`` sheds a query that would wait for one of the project's query slots (PostHog runs
3 queries of a team at once, and so does the client): it raises :class:`RateLimitWaitError`
after at most ``max_wait``, not sent, as a call waiting for its rate-limit bucket does, so a
web handler can answer 503 with ``Retry-After``. Against the offline PostHog."""

from __future__ import annotations

import asyncio
import time

import pytest

from posthog_async import RateLimitWaitError
from posthog_async._config import NO_LIMIT
from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from .conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def test_a_query_waiting_for_a_slot_longer_than_max_wait_is_shed() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=1.5)) as server:
        async with server.client(rate_limits=None, max_wait=0.2) as ph:
            busy = [asyncio.ensure_future(ph.with_options(max_wait=NO_LIMIT).query.hogql(
                f"SELECT {i}")) for i in range(3)]
            await asyncio.sleep(0.2)  # the project's three slots are taken
            started = time.monotonic()
            with pytest.raises(RateLimitWaitError) as shed:
                await ph.query.hogql("SELECT 42")  # the client's max_wait
            assert time.monotonic() - started < 0.5
            assert shed.value.bound == "max_wait" and shed.value.retry_after
            assert "query slots" in str(shed.value)
            with pytest.raises(RateLimitWaitError):
                await ph.with_options(max_wait=0).query.hogql("SELECT 43")  # at once
            assert len(server.queries.log) == 3  # neither was sent
            assert [r.results for r in await asyncio.gather(*busy)] == [[[0]], [[1]], [[2]]]
            answer = await ph.query.hogql("SELECT 44")  # slots free again: no wait, no shedding
            assert answer.results == [[44]]
