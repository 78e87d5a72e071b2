"""``python -m posthog_async.testing --port 8010 --persons 100000``: run the fake server standalone."""

from __future__ import annotations

import argparse
import asyncio
import time

from ._limits import PRODUCTION_LIMITS
from ._server import FakePostHog


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m posthog_async.testing",
                                     description="Run an offline fake PostHog API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--persons", type=int, default=1000, help="persons to seed (default 1000)")
    parser.add_argument("--api-key", default="phx_fake_personal_api_key")
    parser.add_argument("--no-rate-limits", action="store_true", help="disable throttling")
    args = parser.parse_args(argv)

    async def run() -> None:
        server = FakePostHog(api_key=args.api_key, port=args.port,
                             rate_limits=None if args.no_rate_limits else PRODUCTION_LIMITS)
        started = time.perf_counter()
        server.seed_persons(args.persons)
        seeded = time.perf_counter() - started
        async with server:
            print(f"fake PostHog on {server.url} (project {server.default_project}, "
                  f"{args.persons} persons seeded in {seeded:.1f}s)")
            print(f"  export POSTHOG_HOST={server.url} POSTHOG_PROJECT_ID={server.default_project} "
                  f"POSTHOG_PERSONAL_API_KEY={args.api_key}")
            print("Ctrl-C to stop.", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
