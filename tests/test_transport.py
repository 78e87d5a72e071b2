"""The core against a real aiohttp server on 127.0.0.1: retries, caps, cancellation, secrets."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import warnings
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from posthog_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncPostHog,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    PostHogError,
    RateLimitError,
    RetryEvent,
)
from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY, fast_retries


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


async def test_429_slows_the_whole_bucket(server: FakePostHog) -> None:
    server.fail_next(429, retry_after=1, path_contains="/subscriptions/")
    async with server.client() as ph:  # default limiter on
        first = asyncio.create_task(ph.subscriptions.list().first_page())
        await asyncio.sleep(0.2)  # the 429 has come back and penalised the "general" bucket
        started = time.monotonic()
        await ph.property_definitions.list().first_page()  # same bucket: held back too
        waited = time.monotonic() - started
        started = time.monotonic()
        await ph.users.retrieve()  # another bucket: not held back
        other = time.monotonic() - started
        await first
    assert waited >= 0.6 and other < 0.3
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
        me = await ph.with_options(timeout=2).users.retrieve()
        assert me.uuid


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
        await ph.project(999).persons.list()


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


async def test_a_held_bucket_does_not_stall_the_others(server: FakePostHog) -> None:
    """Deletes held back by a 429 wait it out without a concurrency slot, also those that were
    already waiting for their rate-limit slot when it came: reads get every slot meanwhile."""
    server.seed_persons(6)
    server.fail_next(429, retry_after=3, path_contains="bulk_delete")
    async with server.client(max_concurrency=3) as ph:  # default limiter: deletes 0.125 s apart
        deletes = [asyncio.create_task(ph.persons.bulk_delete(distinct_ids=[f"user-{i}"]))
                   for i in range(6)]
        try:
            await asyncio.sleep(0.5)  # the 429 came back at once, with two deletes waiting to go
            server.faults = Faults(latency=0.3)
            started = time.monotonic()
            reads = await asyncio.gather(*(ph.users.retrieve() for _ in range(3)))
            took = time.monotonic() - started
            assert took < 0.6, f"3 reads took {took:.1f}s: the held deletes kept the slots"
            assert not any(task.done() for task in deletes)  # the hold still holds the deletes
            server.faults = Faults()
            results = await asyncio.gather(*deletes)
        finally:
            for task in deletes:
                task.cancel()
    assert all(me.email == "owner@example.com" for me in reads)
    assert len(results) == 6 and server.stats.errors_injected == 1


def _slow_csv(request: web.Request, gaps: list[float]) -> web.StreamResponse | None:
    """A CSV export answered in pieces, ``gaps[i]`` seconds before piece ``i``."""
    if not request.path.endswith("/persons/"):
        return None

    async def pieces() -> AsyncIterator[bytes]:
        yield b"id,email\n"
        for i, gap in enumerate(gaps):
            await asyncio.sleep(gap)
            yield f"{i},user-{i}@example.com\n".encode()

    return web.Response(body=pieces(), content_type="text/csv")


async def test_a_stream_may_take_longer_than_the_timeout_in_all(server: FakePostHog) -> None:
    server.add_hook(lambda request: _slow_csv(request, [0.1] * 8))  # 0.8 s in all
    async with server.client(rate_limits=None, max_retries=0, timeout=0.4) as ph:
        body = b"".join([chunk async for chunk in ph.persons.stream_csv()])
    assert body.decode().splitlines()[-1] == "7,user-7@example.com"


@pytest.mark.parametrize("fault,cls", [("stall", APITimeoutError), ("drop", APIConnectionError)])
async def test_a_stream_that_stalls_or_breaks_raises_our_error(
        server: FakePostHog, fault: str, cls: type[APIConnectionError]) -> None:
    def hook(request: web.Request) -> web.StreamResponse | None:
        if fault == "stall":
            return _slow_csv(request, [0.05, 2.0])  # nothing for 2 s after the second piece
        if not request.path.endswith("/persons/"):
            return None

        async def pieces() -> AsyncIterator[bytes]:
            yield b"id,email\n"
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()  # the connection breaks mid-export
            yield b"0,user-0@example.com\n"

        return web.Response(body=pieces(), content_type="text/csv")

    server.add_hook(hook)
    async with server.client(rate_limits=None, max_retries=0, timeout=0.3) as ph:
        chunks: list[bytes] = []
        with pytest.raises(cls) as info:
            async for chunk in ph.persons.stream_csv(email="a@b.c"):
                chunks.append(chunk)
        assert (await ph.users.retrieve()).email  # the slot and connection were given back
    assert type(info.value) is cls and info.value.method == "GET"
    assert info.value.path == "/api/projects/1/persons/"
    assert b"".join(chunks).startswith(b"id,email\n")
    for text in (str(info.value), repr(info.value.__dict__)):
        assert "csv" not in text and "a@b.c" not in text and server.api_key not in text
