"""The fake's ``/query/`` under the fake server's request handling (issue 18.6): a blocking
query whose client went away runs on and keeps its team slot until it ends or a DELETE kills
it, as PostHog's does; the answer nobody reads is counted, nothing is logged as a crash."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from .conftest import API_KEY

QUERY = {"query": {"kind": "HogQLQuery", "query": "SELECT 1"}, "client_query_id": "gone-1"}


@pytest.mark.parametrize("cancel", [False, True])
async def test_a_blocking_query_whose_client_left_runs_on_until_done_or_cancelled(
        caplog: pytest.LogCaptureFixture, cancel: bool) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.5, concurrency=1, slot_wait=0)
                           ) as server:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            with pytest.raises(asyncio.TimeoutError):
                await http.post(f"{server.url}/api/projects/1/query/", json=QUERY,
                                timeout=aiohttp.ClientTimeout(total=0.1))
            async with http.post(f"{server.url}/api/projects/1/query/", json=QUERY) as resp:
                assert resp.status == 429  # its slot is still taken: the work goes on
            if cancel:
                async with http.delete(f"{server.url}/api/projects/1/query/gone-1/") as resp:
                    assert resp.status == 200
            else:
                await asyncio.sleep(0.6)
            for _ in range(50):
                if server.stats.in_flight == 0 and server.stats.disconnects:
                    break
                await asyncio.sleep(0.02)
            assert server.stats.disconnects == 1 and server.stats.in_flight == 0
            assert server.queries.cancelled == (["gone-1"] if cancel else [])
            async with http.post(f"{server.url}/api/projects/1/query/", json=QUERY) as resp:
                assert resp.status == 200  # the slot is free again
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
