"""``urgent()`` calls (a query's cancel) never queue behind other calls of their loop: they go
beside the head of a bucket's queue and ahead of every waiter for a concurrency slot. The
end-to-end effect on the offline server is pinned in ``test_query_cancel.py``."""

from __future__ import annotations

import asyncio

from posthog_async._queues import Slots, TurnLock, urgent


async def test_an_urgent_call_passes_a_held_turn_and_gives_back_only_its_pass() -> None:
    lock, order = TurnLock(), []
    await lock.acquire()  # the head of the queue, waiting for its bucket's room

    async def call(name: str, is_urgent: bool) -> None:
        if is_urgent:
            with urgent():
                await lock.acquire()
        else:
            await lock.acquire()
        order.append(name)
        await asyncio.sleep(0)
        lock.release()

    queued = asyncio.ensure_future(call("queued", False))
    await asyncio.sleep(0.01)
    await call("urgent", True)  # goes on at once, beside the head
    assert order == ["urgent"] and lock.locked() and not queued.done()
    lock.release()  # the head is done: the queued call is next
    await queued
    assert order == ["urgent", "queued"] and not lock.locked()


async def test_while_an_urgent_call_passes_the_lock_goes_to_no_one_else() -> None:
    """The head and the urgent call meet in the limiter; the next waiter must not join them,
    or an unlucky urgent call could lose every race for the bucket's room."""
    lock, order = TurnLock(), []
    await lock.acquire()  # the head
    urgent_in, urgent_out = asyncio.Event(), asyncio.Event()

    async def the_urgent_call() -> None:
        with urgent():
            await lock.acquire()
        urgent_in.set()
        await urgent_out.wait()
        lock.release()

    async def queued() -> None:
        await lock.acquire()
        order.append("queued")
        lock.release()

    passing = asyncio.ensure_future(the_urgent_call())
    await urgent_in.wait()
    waiting = asyncio.ensure_future(queued())
    await asyncio.sleep(0.01)
    lock.release()  # the head sent
    await asyncio.sleep(0.01)
    assert order == [] and lock.locked()  # the urgent call still goes first
    urgent_out.set()
    await asyncio.gather(passing, waiting)
    assert order == ["queued"] and not lock.locked()


async def test_an_urgent_call_is_first_in_line_for_a_slot() -> None:
    slots, order = Slots(1, asyncio.get_running_loop()), []
    assert slots.try_take()

    async def call(name: str, is_urgent: bool) -> None:
        if is_urgent:
            with urgent():
                assert await slots.take()
        else:
            assert await slots.take()
        order.append(name)
        slots.release()

    calls = [asyncio.ensure_future(call(f"queued {i}", False)) for i in range(3)]
    await asyncio.sleep(0.01)
    calls.append(asyncio.ensure_future(call("urgent", True)))
    await asyncio.sleep(0.01)
    slots.release()
    await asyncio.gather(*calls)
    assert order == ["urgent", "queued 0", "queued 1", "queued 2"]
