"""PostHog's buckets, both windows, no start-up burst, 429 penalties, the lock-free fast path:
driven by a fake clock."""

from __future__ import annotations

import itertools

import anyio
import pytest

from posthog_async import LocalRateLimiter, RateLimits, RateWindow, Throttle
from posthog_async._ratelimit import BUCKETS


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
    gaps = [b - a for a, b in itertools.pairwise(times)]
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


def pairs(limits: RateLimits, bucket: str) -> list[tuple[int, float]]:
    return [(w.limit, w.period) for w in limits.windows(bucket)]  # type: ignore[arg-type]


def test_defaults_are_posthogs_buckets() -> None:
    """posthog-api-notes.md, Rate limits: one 240/min bucket for every persons call but deletes
    (no hourly window), person deletes 480/min + 4800/h, the rest 480/min + 4800/h, users none."""
    limits = RateLimits()
    assert BUCKETS == ("persons", "person_deletes", "general", "users", "hogql", "queries")
    assert pairs(limits, "persons") == [(240, 60)]
    assert pairs(limits, "person_deletes") == [(480, 60), (4800, 3600)]
    assert pairs(limits, "general") == [(480, 60), (4800, 3600)]
    assert pairs(limits, "users") == []
    assert pairs(limits, "hogql") == [(120, 3600)]  # posthog-query-notes.md: HogQLQueryThrottle
    assert pairs(limits, "queries") == [(1200, 3600)]  # clickhouse_sustained


def test_every_window_configurable_and_removable() -> None:
    limits = RateLimits(person_deletes=[(60, 10)], persons=(), general=[RateWindow(5, 1.5)])
    assert pairs(limits, "person_deletes") == [(60, 10.0)]
    assert pairs(limits, "persons") == [] and pairs(limits, "general") == [(5, 1.5)]
    with pytest.raises(ValueError):
        RateLimits(persons=[(0, 1)])


async def test_local_limiter_paces_each_bucket_on_its_own() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(RateLimits(persons=[(2, 1)], person_deletes=[(10, 1)],
                                          safety_margin=0), clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await limiter.acquire("persons")
    assert clock.now - 1000 == pytest.approx(1.0)  # spacing 0.5 s: the 3rd waits a second
    before = clock.now
    await limiter.acquire("person_deletes")
    for _ in range(50):
        await limiter.acquire("users")  # unpaced
    assert clock.now == before
    await limiter.penalize("users", 30)
    await limiter.acquire("users")
    assert clock.now - before == pytest.approx(30)


def test_fast_path_takes_no_trip_through_the_event_loop() -> None:
    throttle, clock = make([RateWindow(1000, 1)])
    for _ in range(5):
        coro = throttle.acquire()
        with pytest.raises(StopIteration):
            coro.send(None)  # finished without suspending: no lock, no scheduling
        clock.now += 0.001  # the next one is due


async def test_try_acquire_takes_free_slots_only() -> None:
    throttle, clock = make([RateWindow(2, 1)])
    assert throttle.try_acquire() and not throttle.try_acquire()  # spacing: the next is not due
    clock.now += 0.6
    assert throttle.try_acquire()
    throttle._waiting = 1  # someone queued keeps their turn, even when a slot is free
    clock.now += 5
    assert not throttle.try_acquire()
    throttle._waiting = 0
    assert throttle.try_acquire()
    limiter = LocalRateLimiter(RateLimits(persons=[(1, 60)], person_deletes=()))
    assert limiter.try_acquire("persons") and not limiter.try_acquire("persons")
    assert all(limiter.try_acquire("person_deletes") for _ in range(100))  # unpaced


async def test_waiters_keep_their_turn() -> None:
    """A request arriving while others wait never jumps the queue by the fast path."""
    throttle, _ = make([RateWindow(1, 1)])
    order: list[int] = []

    async def one(n: int) -> None:
        await throttle.acquire()
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(one, n)
            await anyio.lowlevel.checkpoint()
    assert order == [0, 1, 2, 3, 4]


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


# -- what the transport asks of a limiter: wait times, records now or not at all -------------


async def test_wait_time_with_others_ahead_walks_the_windows() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(RateLimits(persons=[(2, 1.0), (3, 10.0)], safety_margin=0),
                               clock=clock, sleep=clock.sleep)
    assert await limiter.wait_time(("persons",)) == 0
    assert await limiter.wait_time(("persons",), ahead=1) == pytest.approx(0.5)
    # three ahead: at 0, 0.5, 1.0 -> the 4th waits for the first to leave the 10 s window
    assert await limiter.wait_time(("persons",), ahead=3) == pytest.approx(10.0)
    assert await limiter.reserve(("persons",)) == 0
    assert await limiter.reserve(("persons",)) == pytest.approx(0.5)  # refused: nothing recorded
    assert len(limiter.throttle("persons")._history) == 1


async def test_a_send_in_two_buckets_is_recorded_in_both_or_neither() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(RateLimits(persons=[(100, 1.0)], general=[(1, 5.0)],
                                          safety_margin=0), clock=clock, sleep=clock.sleep)
    assert limiter.try_acquire(("general",))
    assert not limiter.try_acquire(("persons", "general"))
    assert await limiter.reserve(("persons", "general")) == pytest.approx(5.0)
    assert len(limiter.throttle("persons")._history) == 0
    await limiter.acquire(("persons", "general"))  # waits the 5 s, then records in both
    assert clock.now - 1000 == pytest.approx(5.0)
    assert list(limiter.throttle("persons")._history) == [clock.now]
    assert list(limiter.throttle("general")._history) == [clock.now]  # keeps one: its limit


def test_turns_are_taken_narrowest_bucket_first() -> None:
    limits = RateLimits(persons=[(240, 60)], general=[(480, 60), (4800, 3600)],
                        person_deletes=[(10, 60)], users=())
    assert limits.turn_order(("users", "persons", "person_deletes")) == (
        "person_deletes", "persons", "users")
    assert limits.longest_period("general") == pytest.approx(3600.02)
    assert limits.longest_period("users") == float("inf")
