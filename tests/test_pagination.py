"""Paginators against the offline PostHog: every page, short pages, one page ahead, flat memory,
and ``next`` links followed only on the configured host."""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest
from aiohttp import web

from posthog_async import AsyncPostHog, UnexpectedResponseError, UnsafeURLError
from posthog_async.testing import FakePostHog, Faults


async def test_pagination_streams_every_page_lazily(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(2345)
    first = await ph.persons.list(limit=100)
    assert len(first.results) == 100 and first.next is not None
    seen = []
    async for person in ph.persons.list(limit=100):
        seen.append(person.uuid)
        if len(seen) == 150:
            # Lazy, one page ahead: the second page is being read, the third may be on its
            # way (plus the awaited first page above); the other 21 pages are not asked for.
            assert server.stats.by_endpoint["GET persons/"] <= 4
    assert len(seen) == len(set(seen)) == 2345
    pages = [len(p.results) async for p in ph.persons.list(limit=1000).pages()]
    assert pages == [1000, 1000, 345]


async def test_iteration_asks_for_big_pages_the_first_page_does_not(server: FakePostHog,
                                                                     ph: AsyncPostHog) -> None:
    server.seed_persons(2500)
    first = await ph.persons.list()
    assert len(first.results) == 100  # PostHog's default page
    pages = [len(p.results) async for p in ph.persons.list().pages()]
    assert pages == [1000, 1000, 500]  # 3 calls of the 240/minute budget instead of 25


async def test_short_pages_with_next_are_followed() -> None:
    async with FakePostHog(rate_limits=None, short_pages=True) as server:
        server.seed_persons(1000)
        async with server.client(rate_limits=None) as ph:
            pages = [len(p.results) async for p in ph.persons.list(limit=100).pages()]
    # every full page came back one short, yet all ten pages (and the empty eleventh) were read
    assert pages[:10] == [99] * 10 and len(pages) == 11


async def test_the_next_page_is_requested_before_the_caller_works_on_this_one(
        server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(300)
    arrivals: list[float] = []

    def record(request: web.Request) -> None:
        if request.path.endswith("/persons/"):
            arrivals.append(time.monotonic())

    server.add_hook(record)  # type: ignore[arg-type]
    work_started: list[float] = []
    async for _ in ph.persons.list(limit=100).pages():
        work_started.append(time.monotonic())
        await asyncio.sleep(0.05)  # the caller's work on this page
    assert len(arrivals) == 4  # three full pages, then the empty one after them
    # page 2's request arrived while the caller was still working on page 1
    assert work_started[0] < arrivals[1] < work_started[0] + 0.05


async def test_stopping_early_cancels_the_page_in_flight(server: FakePostHog) -> None:
    server.seed_persons(500)
    server.faults = Faults(latency=0.3)
    async with server.client(rate_limits=None) as ph:
        pages = ph.persons.list(limit=100).pages()
        async for _ in pages:
            break  # page 2 is on its way

        def prefetching() -> list[asyncio.Task[object]]:
            return [t for t in asyncio.all_tasks() if "AsyncPaginator._fetch" in repr(t.get_coro())]

        assert len(prefetching()) == 1
        await pages.aclose()
        assert prefetching() == []  # cancelled and awaited, nothing left behind


async def test_pagination_memory_is_flat(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(40_000)

    async def peak_streaming(n: int) -> int:
        tracemalloc.start()
        try:
            count = 0
            async for _ in ph.persons.list(limit=500):
                count += 1
                if count == n:
                    break
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = await peak_streaming(5_000), await peak_streaming(40_000)
    assert large < small * 1.5, (small, large)  # 8x the persons, about the same peak


async def test_cross_host_next_is_refused(ph: AsyncPostHog, server: FakePostHog) -> None:
    def evil_next(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/persons/"):
            return web.json_response({"results": [], "next": "http://attacker.example/api/steal/"})
        return None

    server.add_hook(evil_next)
    with pytest.raises(UnsafeURLError, match=r"attacker\.example"):
        async for _ in ph.persons.list():
            pass


@pytest.mark.parametrize("bad", [b'{"results": "nope", "next": null}', b'{"results": [1, 2]}',
                                 b"[]", b"<html>maintenance</html>"])
async def test_a_page_of_the_wrong_shape_is_our_error(server: FakePostHog, ph: AsyncPostHog,
                                                       bad: bytes) -> None:
    server.seed_persons(150)
    pages = 0

    def second_page_wrong(request: web.Request) -> web.StreamResponse | None:
        nonlocal pages
        if not request.path.endswith("/persons/"):
            return None
        pages += 1
        return None if pages == 1 else web.Response(body=bad, content_type="application/json")

    server.add_hook(second_page_wrong)
    seen = []
    with pytest.raises(UnexpectedResponseError) as info:
        async for person in ph.persons.list(limit=100):  # page 2: a next link, with a query
            seen.append(person)
    err = info.value
    assert len(seen) == 100 and pages == 2
    assert err.method == "GET" and err.path == "/api/projects/1/persons/"
    assert err.status_code == 200 and err.body == bad.decode()
    assert "offset" not in str(err) and "limit" not in str(err)
    with pytest.raises(UnexpectedResponseError):  # the first page, awaited, too
        await ph.persons.list()
