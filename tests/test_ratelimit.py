"""Both rate windows, no start-up burst, and 429 penalties: driven by a fake clock."""

from __future__ import annotations

import anyio
import pytest

from posthog_async import RateLimits, RateWindow, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        await anyio.lowlevel.checkpoint()


def make(windows: list[RateWindow], margin: float = 0.0) -> tuple[Throttle, FakeClock]:
    clock = FakeClock()
    return Throttle(windows, safety_margin=margin, clock=clock, sleep=clock.sleep), clock


def counts_in_any_window(times: list[float], period: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - period:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_no_burst_at_start_up() -> None:
    throttle, clock = make([RateWindow(480, 60)])
    times = []
    for _ in range(10):
        await throttle.acquire()
        times.append(clock.now)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g == pytest.approx(0.125) for g in gaps)


async def test_both_windows_enforced_for_an_hour() -> None:
    throttle, clock = make([RateWindow(480, 60), RateWindow(4800, 3600)])
    times = []
    for _ in range(6000):
        await throttle.acquire()
        times.append(clock.now)
    assert counts_in_any_window(times, 60) <= 480
    assert counts_in_any_window(times, 3600) <= 4800
    # The first 4800 go out at the per-minute pace (10 minutes), then the hourly window bites.
    assert times[4799] - times[0] == pytest.approx(4799 * 0.125)
    assert times[4800] - times[0] >= 3600


async def test_analytics_defaults() -> None:
    limits = RateLimits()
    assert [(w.limit, w.period) for w in limits.for_category("analytics")] == [(240, 60), (1200, 3600)]
    assert [(w.limit, w.period) for w in limits.for_category("crud")] == [(480, 60), (4800, 3600)]


async def test_penalize_holds_everyone_back() -> None:
    throttle, clock = make([RateWindow(100, 1)])
    await throttle.acquire()
    start = clock.now
    throttle.penalize(12)
    await throttle.acquire()
    assert clock.now - start == pytest.approx(12)


async def test_concurrent_waiters_share_the_pace() -> None:
    throttle, clock = make([RateWindow(10, 1)])
    times: list[float] = []

    async def one() -> None:
        await throttle.acquire()
        times.append(clock.now)

    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(one)
    assert counts_in_any_window(sorted(times), 1) <= 10


async def test_cancelled_waiter_records_nothing() -> None:
    throttle = Throttle([RateWindow(1, 60)])
    await throttle.acquire()
    with anyio.move_on_after(0.05):
        await throttle.acquire()
    assert len(throttle._history) == 1


def test_bad_window() -> None:
    with pytest.raises(ValueError):
        RateWindow(0, 60)
