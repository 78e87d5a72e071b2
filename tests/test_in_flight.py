"""``max_concurrency`` bounds what the server works on, also when attempts are abandoned by a
timeout, a deadline or a cancellation (issue 18.4): an abandoned attempt keeps its slot until
the server has answered it, so retries and new calls never add to a slow server's load.

What remains is measured here too: attempts without a deadline that were in flight, unguarded,
when the first one was abandoned (at most ``max_concurrency`` of them).
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

import pytest

from posthog_async import APITimeoutError, DeadlineExceededError, PostHogError
from posthog_async.testing import FakePostHog, Faults

from .conftest import fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

CAP = 3


async def test_timeouts_with_retries_keep_the_server_under_the_cap(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.3)
    async with server.client(rate_limits=None, max_concurrency=CAP, timeout=0.1,
                             retry_policy=fast_retries(max_retries=2)) as ph:
        first = await asyncio.gather(*(ph.users.retrieve() for _ in range(CAP)),
                                     return_exceptions=True)
        first_wave = server.stats.peak_in_flight  # the unguarded attempts, then their retries
        await asyncio.sleep(0.4)
        server.stats.peak_in_flight = 0
        results = await asyncio.gather(*(ph.users.retrieve() for _ in range(2 * CAP)),
                                       return_exceptions=True)
    assert all(isinstance(r, APITimeoutError) for r in [*first, *results])
    assert first_wave <= 2 * CAP
    assert server.stats.peak_in_flight <= CAP, server.stats.peak_in_flight


async def test_calls_with_a_deadline_never_exceed_the_cap(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.3)
    async with server.client(rate_limits=None, max_concurrency=CAP,
                             retry_policy=fast_retries(max_retries=5)) as ph:
        web = ph.with_options(timeout=0.1, deadline=0.5)
        results = await asyncio.gather(*(web.users.retrieve() for _ in range(3 * CAP)),
                                       return_exceptions=True)
    assert any(isinstance(r, DeadlineExceededError) for r in results)
    assert server.stats.peak_in_flight <= CAP, server.stats.peak_in_flight


async def test_cancelled_calls_keep_their_slot_until_the_server_answers(server: FakePostHog) -> None:
    server.faults = Faults(latency=0.3)
    async with server.client(rate_limits=None, max_concurrency=CAP) as ph:
        with pytest.raises(asyncio.TimeoutError):  # the first cancellation guards the pool
            await asyncio.wait_for(ph.users.retrieve(), 0.05)
        await asyncio.sleep(0.4)
        server.stats.peak_in_flight = 0
        for _ in range(4):  # waves of callers that give up (asyncio.timeout, a client gone)
            await asyncio.gather(*(asyncio.wait_for(ph.users.retrieve(), 0.05)
                                   for _ in range(2 * CAP)), return_exceptions=True)
        assert server.stats.peak_in_flight <= CAP, server.stats.peak_in_flight
        answered = await asyncio.gather(*(ph.users.retrieve() for _ in range(CAP)))
        assert all(me.email for me in answered)
        slots = ph._transport._pool.slots  # type: ignore[union-attr]
        await asyncio.sleep(0.1)
        assert not slots.locked()  # every slot came back


async def test_an_abandoned_attempt_is_closed_after_the_limit(server: FakePostHog,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posthog_async._constants.ABANDONED_ATTEMPT_LIMIT", 0.2)
    server.faults = Faults(latency=5)
    async with server.client(rate_limits=None, max_concurrency=1) as ph:
        with pytest.raises(DeadlineExceededError):
            await ph.with_options(deadline=0.05).users.retrieve()
        server.faults = Faults()
        started = time.monotonic()
        me = await ph.users.retrieve()  # the slot comes back when the stuck attempt is closed
        waited = time.monotonic() - started
    assert me.email and 0.1 < waited < 0.5


async def test_aclose_with_attempts_in_flight_is_at_once_and_clean(server: FakePostHog) -> None:
    server.faults = Faults(latency=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ph = server.client(rate_limits=None, max_concurrency=CAP)
        with pytest.raises(DeadlineExceededError):
            await ph.with_options(deadline=0.05).users.retrieve()  # left, still in flight
        calls = [asyncio.create_task(ph.users.retrieve()) for _ in range(2 * CAP)]
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await ph.aclose()
        closed_in = time.monotonic() - started
        results = await asyncio.gather(*calls, return_exceptions=True)
        del ph
        gc.collect()
    assert closed_in < 0.3
    assert all(isinstance(r, PostHogError) and "closed" in str(r) for r in results), results
    assert not [w for w in caught if "Unclosed" in str(w.message) or "never retrieved" in str(w.message)]


async def test_a_call_cancelled_before_its_send_began_sends_nothing(server: FakePostHog) -> None:
    async with server.client(rate_limits=None) as ph:
        web = ph.with_options(deadline=5)  # guarded: the attempt runs in a task of its own
        task = asyncio.create_task(web.users.retrieve())
        await asyncio.sleep(0)  # into the attempt: its task is made, its send not yet begun
        assert len(ph._transport._pool.exchanges) == 1  # type: ignore[union-attr]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        assert server.stats.requests == 0
        assert (await web.users.retrieve()).email  # and the slot came back
