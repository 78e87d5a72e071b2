"""``bounded_map`` and ``fan_out``: the cap, early close, cancellation, and errors that are not
``Exception``s (never swallowed)."""

from __future__ import annotations

import asyncio

import pytest

from posthog_async._concurrency import bounded_map, fan_out


async def test_never_more_than_the_limit_in_flight_and_every_item_once() -> None:
    running = peak = 0

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (n % 3))
        running -= 1
        return n * 2

    results = {item: result async for item, result, _ in bounded_map(range(50), work, limit=4)}
    assert peak == 4 and results == {n: n * 2 for n in range(50)}


async def test_input_is_read_only_as_fast_as_calls_finish() -> None:
    read = 0

    def source():  # type: ignore[no-untyped-def]
        nonlocal read
        for n in range(1_000_000):
            read += 1
            yield n

    async def work(n: int) -> int:
        return n

    gen = bounded_map(source(), work, limit=3)
    async for _ in gen:
        break
    await gen.aclose()
    assert read <= 4


async def test_an_error_is_yielded_and_the_others_go_on() -> None:
    async def work(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    out = [(item, result, type(error).__name__ if error else None)
           async for item, result, error in bounded_map(range(4), work, limit=2)]
    assert sorted(out) == [(0, 0, None), (1, 1, None), (2, None, "ValueError"), (3, 3, None)]


async def test_closing_early_cancels_and_awaits_the_calls_in_flight() -> None:
    cancelled: list[int] = []

    async def slow(n: int) -> int:
        try:
            await asyncio.sleep(10 if n else 0)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    gen = bounded_map(range(5), slow, limit=3)
    async for _ in gen:
        break
    await gen.aclose()
    assert sorted(cancelled) == [1, 2]  # 3 was never started: input is read lazily


async def test_cancelling_the_consumer_cancels_the_calls() -> None:
    cancelled: list[int] = []

    async def slow(n: int) -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    async def consume() -> None:
        async for _ in bounded_map(range(3), slow, limit=3):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == [0, 1, 2]


class Abort(BaseException):
    """Like KeyboardInterrupt or SystemExit: not an Exception, so never collected as a result."""


async def test_a_base_exception_is_raised_not_yielded() -> None:
    async def boom(n: int) -> int:
        raise Abort

    with pytest.raises(Abort):
        async for _ in bounded_map([1], boom, limit=1):
            pass


async def test_fan_out_collects_or_fails_fast() -> None:
    async def work(key: str) -> str:
        if key == "bad":
            raise LookupError(key)
        return key.upper()

    result = await fan_out(["a", "bad", "b", "a"], work)
    assert result.results == {"a": "A", "b": "B"} and isinstance(result.errors["bad"], LookupError)
    with pytest.raises(LookupError):
        await fan_out(["a", "bad"], work, fail_fast=True)
