"""``timeout`` bounds one attempt, ``deadline`` the whole call, ``max_wait`` the wait for a
bucket (load shedding), ``max_retries`` the retries: per client and per view (issue 18.2, 18.3).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from posthog_async import (
    APITimeoutError,
    AsyncPostHog,
    ConfigurationError,
    DeadlineExceededError,
    InternalServerError,
    RateLimitError,
    RateLimits,
    RateLimitWaitError,
)
from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def test_timeout_bounds_an_attempt_deadline_the_call(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.5)
    async with server.client(rate_limits=None, retry_policy=fast_retries(max_retries=3)) as ph:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as each:
            await ph.with_options(timeout=0.1).users.retrieve()
        every_attempt = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as whole:
            await ph.with_options(timeout=0.1, deadline=0.25).users.retrieve()
        bounded = time.monotonic() - started
    assert not isinstance(each.value, DeadlineExceededError) and every_attempt >= 0.4  # 4 x 0.1 s
    assert "timeout, one attempt" in str(each.value)
    assert 0.24 < bounded < 0.4
    error = whole.value
    assert error.deadline == 0.25 and 0.24 < error.waited < 0.4 and error.attempts == 3
    assert "deadline of 0.25s exceeded" in str(error) and "3 attempts" in str(error)
    assert isinstance(error.last_error, APITimeoutError) and error.maybe_processed


async def test_the_deadline_bounds_the_wait_for_a_slot(server: FakePostHog) -> None:
    server.faults = Faults(latency=1.0)
    async with server.client(rate_limits=None, max_concurrency=1) as ph:
        slow = asyncio.create_task(ph.users.retrieve())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            await ph.with_options(deadline=0.3).users.retrieve()
        waited = time.monotonic() - started
        await slow
    assert 0.28 < waited < 0.5 and info.value.attempts == 1
    assert "waiting for a concurrency slot" in str(info.value)
    assert not info.value.maybe_processed and info.value.last_error is None


async def test_a_wait_for_a_bucket_beyond_the_deadline_is_refused_at_once(server: FakePostHog) -> None:
    limits = RateLimits(persons=[(1, 5.0)])
    async with server.client(rate_limits=limits) as ph:
        await ph.persons.list(limit=1).first_page()
        started = time.monotonic()
        with pytest.raises(RateLimitWaitError) as info:
            await ph.with_options(deadline=1).persons.list(limit=1).first_page()
        took = time.monotonic() - started
    assert took < 0.1 and info.value.bound == "deadline" and 4.5 < info.value.retry_after <= 5.1
    assert "left of its deadline of 1s" in str(info.value)
    assert server.stats.requests == 1


async def test_a_retry_after_beyond_the_deadline_is_raised_at_once(server: FakePostHog) -> None:
    server.fail_next(429, retry_after=5)
    async with server.client(rate_limits=None) as ph:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await ph.with_options(deadline=2).users.retrieve()
        took = time.monotonic() - started
    assert took < 0.3 and info.value.retry_after == 5


async def test_a_backoff_beyond_the_deadline_ends_the_call_at_once(server: FakePostHog) -> None:
    server.fail_next(503, times=5)
    async with server.client(rate_limits=None) as ph:  # backoff 0.25-0.5 s, then 0.5-1 s ...
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            await ph.with_options(deadline=0.2).users.retrieve()
        took = time.monotonic() - started
    assert took < 0.15 and isinstance(info.value.last_error, InternalServerError)
    assert "503" in str(info.value) and not info.value.maybe_processed


async def test_max_retries_per_view_and_per_client(server: FakePostHog) -> None:
    server.fail_next(503, times=10)
    async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
        with pytest.raises(InternalServerError):
            await ph.with_options(max_retries=1).users.retrieve()
        assert server.stats.requests == 2
        with pytest.raises(InternalServerError):
            await ph.with_options(max_retries=0).project(2).persons.list(limit=1).first_page()
        assert server.stats.requests == 3
    async with server.client(rate_limits=None, max_retries=2) as ph:
        ph._transport.retry_policy.initial = 0.001
        with pytest.raises(InternalServerError):
            await ph.users.retrieve()
    assert server.stats.requests == 6


async def test_client_wide_deadline_and_max_wait_and_lifting_them_per_view(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.3)
    limits = RateLimits(users=[(1, 5.0)])
    async with server.client(rate_limits=limits, deadline=0.1, max_wait=1) as ph:
        with pytest.raises(DeadlineExceededError):
            await ph.users.retrieve()
        with pytest.raises(RateLimitWaitError) as shed:
            await ph.with_options(deadline=None).users.retrieve()
        assert shed.value.bound == "max_wait"
        server.faults = Faults()
        views = ph.with_options(deadline=None, max_wait=None)
        assert views.scope.options.deadline == float("inf")
        started = time.monotonic()
        me = await views.users.retrieve()  # waits its turn: no limit left
        assert me.email and time.monotonic() - started > 4


async def test_max_wait_sheds_load_at_once_without_queueing(server: FakePostHog) -> None:
    """Ten calls at once into a bucket paced at 2/s with max_wait 0.6 s: those that would wait
    longer are refused at once, with how long they would have waited; nothing queues."""
    limits = RateLimits(persons=[(2, 1.0)], safety_margin=0)
    async with server.client(rate_limits=limits) as ph:
        shedding = ph.with_options(max_wait=0.6)
        started = time.monotonic()
        refused_at: list[float] = []

        async def one() -> object:
            try:
                return await shedding.persons.list(limit=1).first_page()
            except RateLimitWaitError as exc:
                refused_at.append(time.monotonic() - started)
                return exc

        results = await asyncio.gather(*(one() for _ in range(10)))
    refused = [r for r in results if isinstance(r, RateLimitWaitError)]
    assert len(refused) == 8 and max(refused_at) < 0.1
    assert sorted(r.retry_after for r in refused)[0] > 0.6
    assert all(r.bound == "max_wait" and r.bucket == "persons" for r in refused)
    assert server.stats.requests == 2


def test_options_are_checked() -> None:
    ph = AsyncPostHog(API_KEY, host="http://127.0.0.1:9", project_id=1)
    for bad in ({"timeout": 0}, {"deadline": -1}, {"max_retries": -1}, {"max_wait": -0.5}):
        with pytest.raises(ConfigurationError):
            ph.with_options(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        AsyncPostHog(API_KEY, host="http://127.0.0.1:9", deadline=0)
    view = ph.with_options(deadline=3).with_options(max_wait=0)
    assert (view.scope.options.deadline, view.scope.options.max_wait) == (3, 0)
    assert view.scope.timeout is None and ph.with_options(timeout=2).scope.timeout == 2
