"""The concurrency slots of a loop: first come, first served; a slot is never lost to a
cancellation, also one that comes after the slot was handed over."""

from __future__ import annotations

import asyncio
import time

import pytest

from posthog_async._queues import Slots


async def test_slots_are_served_in_order_and_never_overtaken() -> None:
    slots = Slots(1, asyncio.get_running_loop())
    assert slots.try_take() and not slots.try_take() and slots.locked()
    order: list[int] = []

    async def one(n: int) -> None:
        await slots.take()
        order.append(n)
        await asyncio.sleep(0)
        slots.release()

    waiters = [asyncio.create_task(one(n)) for n in range(4)]
    await asyncio.sleep(0)
    slots.release()
    assert not slots.try_take()  # a slot given back goes to the first waiter, not to us
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2, 3] and slots.free == 1 and not slots.locked()


async def test_a_waiter_cancelled_before_or_after_its_turn_loses_no_slot() -> None:
    slots = Slots(1, asyncio.get_running_loop())
    assert slots.try_take()
    early = asyncio.create_task(slots.take())
    late = asyncio.create_task(slots.take())
    last = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    early.cancel()  # cancelled while waiting: leaves the queue
    slots.release()  # handed to `late` ...
    late.cancel()  # ... which is cancelled before it runs: the slot goes on to `last`
    for task in (early, late):
        with pytest.raises(asyncio.CancelledError):
            await task
    await last
    slots.release()
    assert slots.free == 1 and not slots.locked()


async def test_a_waiter_that_gave_up_and_is_cancelled_in_the_same_turn_gives_back_nothing() -> None:
    """Its deadline passed (the timer answered "no slot") and a cancellation came in the same
    loop iteration, as when a handler's own timeout matches the call's deadline on a busy
    loop: it was never handed a slot, so it must not give one back (that inflated the cap)."""
    loop = asyncio.get_running_loop()
    slots = Slots(1, loop)
    assert slots.try_take()  # the only slot is in use
    until = loop.time() + 0.02
    waiter = asyncio.create_task(slots.take(until))
    await asyncio.sleep(0)
    loop.call_at(until, waiter.cancel)  # both timers are due in the same iteration
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.free == 0 and slots.locked() and not slots.try_take()
    slots.release()
    assert slots.free == 1 and not slots.locked()


async def test_the_server_never_sees_more_than_the_cap_after_such_a_give_up() -> None:
    """End to end on the offline server: cap 2, both slots held by slow calls, a third call
    with a deadline whose caller is cancelled in the same loop turn (a busy loop makes both
    timers due together). Afterwards the server still sees at most 2 requests at once."""
    from posthog_async.testing import FakePostHog, Faults

    async with FakePostHog(rate_limits=None, faults=Faults(latency=0.4)) as server:
        server.seed_persons(2)
        async with server.client(max_concurrency=2) as ph:
            loop = asyncio.get_running_loop()
            hold = [asyncio.create_task(ph.users.retrieve()) for _ in range(2)]
            await asyncio.sleep(0.05)
            third = asyncio.create_task(ph.with_options(deadline=0.2).users.retrieve())
            loop.call_later(0.21, third.cancel)  # just after its deadline
            loop.call_later(0.18, time.sleep, 0.05)  # a busy loop: both timers come due together
            with pytest.raises((asyncio.CancelledError, Exception)):
                await third
            await asyncio.gather(*hold)
            server.stats.peak_in_flight = 0
            await asyncio.gather(*(ph.users.retrieve() for _ in range(6)))
            assert server.stats.peak_in_flight == 2
