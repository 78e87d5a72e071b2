"""Closing the client ends a reader's wait between pages (a spent HogQL window is waited out,
not raised, by the export, the keyset reader and the actors iteration): the read raises the
"client is closed" error at once, so a lifespan that awaits its background reads after
``aclose()`` does not hang for the rest of the hour. Against the offline PostHog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from posthog_async import AsyncPostHog, PostHogError, RateLimits
from posthog_async.testing import FakePostHog

from .conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

TREND = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
#: Two pages an hour: the third waits ~an hour.
SPENT = RateLimits(hogql=[(2, 3600.0)], queries=[(2, 3600.0)], safety_margin=0)


def export(ph: AsyncPostHog, on_wait: Any) -> AsyncIterator[Any]:
    return ph.persons.export(page_size=2, on_wait=on_wait)


def keyset(ph: AsyncPostHog, on_wait: Any) -> AsyncIterator[Any]:
    return ph.query.keyset(select="id", from_="persons", page_size=2, on_wait=on_wait).__aiter__()


def actors(ph: AsyncPostHog, on_wait: Any) -> AsyncIterator[Any]:
    return ph.query.actors(TREND, day="2024-01-01", limit=2, on_wait=on_wait).__aiter__()


@pytest.mark.parametrize("read", [export, keyset, actors])
async def test_closing_the_client_ends_a_readers_long_wait(
        read: Callable[[AsyncPostHog, Any], AsyncIterator[Any]]) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(10)
        ph = server.client(rate_limits=SPENT)
        waits: list[float] = []

        async def consume() -> int:
            return len([item async for item in read(ph, lambda s, e: waits.append(s))])

        task = asyncio.ensure_future(consume())
        for _ in range(200):
            if waits or task.done():
                break
            await asyncio.sleep(0.01)
        assert waits and waits[0] > 600, (waits, task)  # the read is waiting out the window
        started = time.monotonic()
        await ph.aclose()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done, "the read still waits after aclose()"
        assert time.monotonic() - started < 1
        with pytest.raises(PostHogError, match="client is closed"):
            task.result()
