"""The concurrency slots of a loop: first come, first served; a slot is never lost to a
cancellation, also one that comes after the slot was handed over."""

from __future__ import annotations

import asyncio

import pytest

from posthog_async._pool import Slots


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
