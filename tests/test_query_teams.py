"""One query gate per PostHog team, whichever URL family a view uses: ``ph.project(1)`` and
``ph.environment(1)`` are the same team (PostHog's cap is keyed ``api:query:per-team:<id>``), so
together they keep at most 3 queries in flight and never meet the concurrency 429, which PostHog
sends only after holding the request up to 30 s. Against the offline PostHog."""

from __future__ import annotations

import asyncio

import pytest

from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def test_a_project_and_its_environment_share_the_teams_three_query_slots() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.5, slot_wait=0.1)) as server:
        async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
            views = [ph.project(1), ph.environment(1)]
            answers = await asyncio.gather(*(views[i % 2].query.hogql(f"SELECT {i}")
                                             for i in range(6)))
        assert [a.results for a in answers] == [[[i]] for i in range(6)]
        assert server.stats.throttled == 0 and server.queries.peak_running == {1: 3}
