"""Queries on one client across successive event loops (issue 18.5 for ``ph.query``): the
per-project query gate belongs to a loop, as the connection pool does, so ``asyncio.run`` twice
(a module-level client, a test client per test) runs queries, actors and exports alike."""

from __future__ import annotations

import pytest

from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from .conftest import API_KEY
from .test_event_loops import run_script

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

QUERIES_IN_SUCCESSIVE_LOOPS = """
import asyncio, sys
from posthog_async import AsyncPostHog

ph = AsyncPostHog(host=sys.argv[1], project_id=1, rate_limits=None)
TREND = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}

async def use():
    # four at once against a gate of 3: the 4th waits on the gate's condition in this loop
    answers = await asyncio.gather(*[ph.query.hogql("SELECT count() FROM persons")
                                     for _ in range(4)])
    exported = [p.id async for p in ph.persons.export(page_size=2)]
    actors = [a.id async for a in ph.query.actors(TREND, day="2026-01-10", limit=2)]
    return answers[0].results[0][0], len(exported), len(set(exported)), len(actors)

print("run 1", asyncio.run(use()), flush=True)
print("run 2", asyncio.run(use()), flush=True)
loop = asyncio.new_event_loop()  # by hand, closed without shutdown_asyncgens
print("manual", loop.run_until_complete(use()), flush=True)
loop.close()
print("run 3", asyncio.run(use()), flush=True)
"""


async def test_queries_actors_and_exports_in_successive_loops() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.05)) as server:
        server.seed_persons(5)
        code, out, err = await run_script(QUERIES_IN_SUCCESSIVE_LOOPS, server.url)
    assert code == 0, err
    for step in ("run 1", "run 2", "manual", "run 3"):
        assert f"{step} (5, 5, 5, 5)" in out, (out, err)
    for noise in ("Unclosed", "ResourceWarning", "Traceback", "Exception ignored"):
        assert noise not in err, err
