"""The core against a real aiohttp server on 127.0.0.1: retries, caps, cancellation, secrets."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
import warnings

import pytest
from aiohttp import web

from posthog_async import (
    APIConnectionError, APITimeoutError, AsyncPostHog, AuthenticationError, BadRequestError,
    InternalServerError, NotFoundError, PermissionDeniedError, PostHogError, RateLimitError,
    RetryEvent, UnsafeURLError,
)
from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY, fast_retries


async def test_pagination_streams_every_page_lazily(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(2345)
    first = await ph.persons.list(limit=100)
    assert len(first.results) == 100 and first.next is not None
    seen = []
    async for person in ph.persons.list(limit=100):
        seen.append(person.uuid)
        if len(seen) == 150:
            # Lazy: 150 items cost two page requests (plus the awaited first page above).
            assert server.stats.by_endpoint["GET persons/"] == 3
    assert len(seen) == len(set(seen)) == 2345
    pages = [len(p.results) async for p in ph.persons.list(limit=1000).pages()]
    assert pages == [1000, 1000, 345]


async def test_short_pages_with_next_are_followed() -> None:
    async with FakePostHog(rate_limits=None, short_pages=True) as server:
        server.seed_persons(1000)
        async with server.client(rate_limits=None) as ph:
            pages = [len(p.results) async for p in ph.persons.list(limit=100).pages()]
    # every full page came back one short, yet all ten pages (and the empty eleventh) were read
    assert pages[:10] == [99] * 10 and len(pages) == 11


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
    with pytest.raises(UnsafeURLError, match="attacker.example"):
        async for _ in ph.persons.list():
            pass


async def test_retry_on_429_honours_retry_after(server: FakePostHog) -> None:
    events: list[RetryEvent] = []
    server.fail_next(429, retry_after=1, path_contains="/persons/")
    async with server.client(rate_limits=None, on_retry=events.append) as ph:
        started = time.monotonic()
        page = await ph.persons.list()
        elapsed = time.monotonic() - started
    assert page.results == []
    assert elapsed >= 1.0
    assert len(events) == 1 and events[0].delay >= 1.0
    assert isinstance(events[0].error, RateLimitError)


async def test_429_slows_the_shared_throttle(server: FakePostHog) -> None:
    server.fail_next(429, retry_after=1, path_contains="/users/")
    async with server.client() as ph:  # default throttles on
        first = asyncio.create_task(ph.users.retrieve())
        await asyncio.sleep(0.2)  # the 429 has come back and penalised the crud throttle
        started = time.monotonic()
        await ph.subscriptions.list()  # another task, same category: held back too
        waited = time.monotonic() - started
        await first
    assert waited >= 0.6
    assert server.stats.errors_injected == 1


async def test_long_retry_after_is_surfaced(server: FakePostHog) -> None:
    server.fail_next(429, retry_after=3600)
    async with server.client(rate_limits=None, max_retry_after=60) as ph:
        with pytest.raises(RateLimitError) as info:
            await ph.users.retrieve()
    assert info.value.retry_after == 3600


async def test_429_storm_without_retry_after_backs_off(server: FakePostHog) -> None:
    server.fail_next(429, times=4)
    async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
        await ph.users.retrieve()
    assert server.stats.errors_injected == 4


async def test_no_retry_on_400(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.fail_next(400, path_contains="/users/", times=3)
    with pytest.raises(BadRequestError):
        await ph.users.retrieve()
    assert server.stats.requests == 1


async def test_500_retried_for_get_not_for_post(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.fail_next(500, method="GET")
    await ph.users.retrieve()
    assert server.stats.requests == 2
    server.fail_next(500, method="POST")
    with pytest.raises(InternalServerError):
        await ph.session_recordings.refresh_sharing("r1")
    assert server.stats.requests == 3


async def test_dropped_connection_is_retried(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.fail_next(drop=True, times=2)
    me = await ph.users.retrieve()
    assert me.email == "owner@example.com"
    assert server.stats.dropped == 2


async def test_dropped_post_is_not_resent(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.fail_next(drop=True, method="POST")
    with pytest.raises(APIConnectionError):  # the create may have happened: never duplicate it
        await ph.subscriptions.create(insight=1, target_type="email", target_value="a@b.c",
                                      frequency="daily", start_date="2026-12-01T00:00:00Z")
    assert server.stats.requests == 1


async def test_dropped_connections_exhaust_retries(server: FakePostHog) -> None:
    server.fail_next(drop=True, times=10)
    async with server.client(rate_limits=None, retry_policy=fast_retries(max_retries=2)) as ph:
        with pytest.raises(APIConnectionError):
            await ph.users.retrieve()


async def test_unreachable_host() -> None:
    async with AsyncPostHog(API_KEY, host="http://127.0.0.1:9", project_id=1, rate_limits=None,
                            retry_policy=fast_retries(max_retries=1)) as ph:
        with pytest.raises(APIConnectionError) as info:
            await ph.users.retrieve()
    assert API_KEY not in str(info.value)


async def test_timeout(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.5)
    async with server.client(rate_limits=None, max_retries=0, timeout=0.1) as ph:
        with pytest.raises(APITimeoutError):
            await ph.users.retrieve()
        server.faults = Faults(latency=0.2)
        # per-call override through the transport
        raw = await ph._transport.request("GET", "/api/users/@me/", timeout=2)
        assert raw.status == 200


async def test_concurrency_cap_never_exceeded(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.02)
    async with server.client(rate_limits=None, max_concurrency=4) as ph:
        await asyncio.gather(*(ph.users.retrieve() for _ in range(40)))
    assert server.stats.peak_in_flight == 4


async def test_shared_limits_across_scoped_views(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.02)
    async with server.client(rate_limits=None, max_concurrency=3) as ph:
        views = [ph.project(1), ph.project(2), ph.environment(3)]
        await asyncio.gather(*(v.persons.values(key="plan") for v in views for _ in range(6)))
    assert server.stats.peak_in_flight == 3


@pytest.mark.parametrize("key,scopes,cls", [
    ("phx_wrong", None, AuthenticationError),
    ("phx_readonly", {"user:read"}, PermissionDeniedError),
])
async def test_auth_errors(server: FakePostHog, key: str, scopes: set[str] | None,
                           cls: type[Exception]) -> None:
    if scopes:
        server.add_key(key, scopes=scopes)
    async with server.client(api_key=key, rate_limits=None) as ph:
        with pytest.raises(cls) as info:
            await ph.persons.list()
    if cls is PermissionDeniedError:
        assert info.value.missing_scope == "person:read"  # type: ignore[attr-defined]


async def test_unknown_project_is_404(ph: AsyncPostHog) -> None:
    with pytest.raises(NotFoundError, match="Project not found"):
        await ph.persons.list(project_id=999)


async def test_cancellation_leaves_no_warning(server: FakePostHog) -> None:
    server.faults = Faults(latency=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ph = server.client(rate_limits=None)
        async with ph:
            task = asyncio.create_task(ph.users.retrieve())
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # cancel while closing, too
        ph2 = server.client(rate_limits=None)
        t2 = asyncio.create_task(ph2.users.retrieve())
        await asyncio.sleep(0.05)
        t2.cancel()
        closing = asyncio.create_task(ph2.aclose())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t2
        with pytest.raises(asyncio.CancelledError):
            await closing
        await ph2.aclose()
        del ph, ph2, task, t2
        gc.collect()
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "Unclosed" in m], messages


async def test_closed_client_refuses_requests(server: FakePostHog) -> None:
    ph = server.client(rate_limits=None)
    await ph.aclose()
    with pytest.raises(PostHogError, match="closed"):
        await ph.users.retrieve()


async def test_key_absent_from_logs_and_errors(server: FakePostHog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="posthog_async")
    server.fail_next(503, times=2)
    server.fail_next(404, path_contains="/persons/")
    async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
        await ph.users.retrieve()
        with pytest.raises(NotFoundError) as info:
            await ph.persons.retrieve("0190b7a4-0000-4000-8000-000000000000")
    assert "retrying GET /api/users/@me/" in caplog.text
    for text in (caplog.text, str(info.value), repr(info.value.__dict__), repr(ph)):
        assert server.api_key not in text
    import traceback
    tb = "".join(traceback.format_exception(info.value, info.value, info.value.__traceback__))
    assert server.api_key not in tb


async def test_per_call_timeout_via_with_options(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.3)
    async with server.client(rate_limits=None, max_retries=0, timeout=5) as ph:
        with pytest.raises(APITimeoutError):
            await ph.with_options(timeout=0.05).users.retrieve()
        with pytest.raises(APITimeoutError):
            await ph.with_options(timeout=0.05).project(2).persons.list()
        assert (await ph.users.retrieve()).email == "owner@example.com"
    with pytest.raises(ValueError):
        ph.with_options(timeout=0)
