"""5. Rate-limit utilisation: ``bulk_delete_all`` against a server whose ``person_deletes`` bucket
allows 60 calls / 10 s, with the client's limiter set to the same window.

Utilisation is the rate calls arrived at (first to last) / the rate the limit allows; also the
busiest 10-s window, 429s and chunks lost. 120,000 ids (120 calls) take about 20 seconds.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from posthog_async import RateLimits
from posthog_async.testing import FakePostHog

from _common import machine_line, smoke_parser


async def run(ids: int, limit: int, period: float) -> tuple[float, float, int, bool]:
    async with FakePostHog(rate_limits={"person_deletes": [(limit, period)]}) as server:
        server.seed_persons(ids)
        sent: list[float] = []

        def record(request: web.Request) -> None:
            if request.path.endswith("/bulk_delete/"):
                sent.append(time.monotonic())
            return None

        server.add_hook(record)
        limits = RateLimits(person_deletes=[(limit, period)])
        async with server.client(rate_limits=limits) as ph:
            start = time.monotonic()
            report = await ph.persons.bulk_delete_all(
                distinct_ids=(f"user-{i}" for i in range(1, ids + 1)))
            elapsed = time.monotonic() - start
        lost = len(report.failed_chunks)
        ok = report.ok and server.ids_deleted == ids
        # utilisation: the rate the calls arrived at (first to last) / the rate the limit allows.
        utilisation = (len(sent) - 1) / (sent[-1] - sent[0]) / (limit / period)
        busiest = max(sum(1 for t in sent if s <= t < s + period) for s in sent)
        print(f"{ids:,} ids, {len(sent)} calls in {elapsed:.1f}s: utilisation {utilisation:.3f} "
              f"of {limit}/{period:.0f}s, busiest window {busiest}/{limit}, "
              f"429s {server.stats.throttled}, chunks lost {lost}, all deleted {ok}")
        return utilisation, elapsed, server.stats.throttled, ok and lost == 0


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--ids", type=int, default=120_000)
    args = parser.parse_args(argv)
    limit, period = (10, 1.0) if args.smoke else (60, 10.0)
    ids = 15_000 if args.smoke else args.ids
    print(machine_line())
    utilisation, elapsed, throttled, ok = asyncio.run(run(ids, limit, period))
    return [(f"rate-limit utilisation: bulk_delete_all [{ids:,} ids in 1000-id calls, server and "
             f"client person_deletes both {limit}/{period:.0f} s, fake server in-process]",
             f"{utilisation:.3f} of the limit over {elapsed:.0f} s, {throttled} x 429, "
             f"chunks lost: {0 if ok else 'SOME'}")]


if __name__ == "__main__":
    main()
