"""9. In-flight honesty: the most requests the server works on at once, against the client's cap,
when attempts are abandoned (not speed: what ``max_concurrency`` really bounds).

A slow fake PostHog (in-process, 150-350 ms per request) and 32 callers, each calling
``users.retrieve`` again and again for a few seconds through one client with a cap of 8:

- **timeouts**: ``timeout=0.2`` per attempt, 3 retries (an attempt's caller leaves at 0.2 s);
- **cancellations**: every call wrapped in ``asyncio.wait_for(..., 0.2)`` (as ``asyncio.timeout``
  or a web client that goes away would do);
- **deadlines**: ``with_options(timeout=0.2, deadline=0.5)``.

The server counts the requests it is working on (``stats.peak_in_flight``); "first wave" is the
peak before the first attempt was left, "after" the peak from then on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from posthog_async.testing import FakePostHog, Faults

from _common import machine_line, smoke_parser

CAP = 8
CALLERS = 32


async def measure(kind: str, seconds: float) -> tuple[int, int, int]:
    async with FakePostHog(rate_limits=None, faults=Faults(latency=0.15, jitter=0.2)) as server:
        async with server.client(rate_limits=None, max_concurrency=CAP, timeout=0.2,
                                 max_retries=3) as ph:
            call: Callable[[], Awaitable[object]]
            if kind == "timeouts":
                call = ph.users.retrieve
            elif kind == "cancellations":
                def call() -> Awaitable[object]:
                    return asyncio.wait_for(ph.users.retrieve(), 0.2)
            else:
                call = ph.with_options(timeout=0.2, deadline=0.5).users.retrieve
            first_wave = await wave(server, call, 0.25)
            server.stats.peak_in_flight = server.stats.in_flight
            await wave(server, call, seconds)
            return first_wave, server.stats.peak_in_flight, server.stats.requests


async def wave(server: FakePostHog, call: Callable[[], Awaitable[object]], seconds: float) -> int:
    end = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < end:
            try:
                await call()
            except Exception:  # timeouts, deadlines, cancellations: what we are here for
                pass

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return server.stats.peak_in_flight


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    seconds = 0.5 if args.smoke else args.seconds
    print(machine_line())
    rows = []
    for kind in ("timeouts", "cancellations", "deadlines"):
        try:
            first, after, requests = asyncio.run(measure(kind, seconds))
        except TypeError as exc:  # an older client without deadlines
            print(f"  {kind}: not measured ({exc})")
            continue
        result = (f"peak {max(first, after)} requests at once at the server (cap {CAP}): "
                  f"{first} in the first wave, {after} after it; {requests} requests")
        print(f"  {kind:13} {result}")
        rows.append((f"in flight: {kind} [{CALLERS} callers, cap {CAP}, server 150-350 ms, "
                     f"timeout 0.2 s, 3 retries{', deadline 0.5 s' if kind == 'deadlines' else ''}"
                     f"; {seconds:g} s]", result))
    return rows


if __name__ == "__main__":
    main()
