"""``posthog-async demo``: a real deletion job against the built-in offline server, end to end."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from ._args import CliParser, positive_int

__all__ = ["add_demo_parser", "run_demo"]


def add_demo_parser(sub: argparse._SubParsersAction[CliParser]) -> None:
    p = sub.add_parser("demo", help="run a GDPR deletion job against an offline fake PostHog",
                       allow_abbrev=False)
    p.add_argument("--persons", type=positive_int, default=50_000,
                   help="persons to seed (default 50,000)")
    p.add_argument("--erase", type=positive_int, default=20_000,
                   help="distinct ids to erase, at most --persons (default 20,000)")


async def run_demo(args: argparse.Namespace) -> int:
    from ..testing import PRODUCTION_LIMITS, FakePostHog
    from . import build_parser
    from ._delete import run_delete

    erase = min(args.erase, args.persons)
    print(f"starting an offline PostHog on 127.0.0.1 with {args.persons:,} persons "
          "(production rate limits per key)...", file=sys.stderr)
    server = FakePostHog(rate_limits=PRODUCTION_LIMITS)
    started = time.perf_counter()
    server.seed_persons(args.persons)
    async with server, server.client() as client:
        tmp = Path(tempfile.mkdtemp(prefix="posthog-async-demo-"))  # kept: the report is the proof
        ids_file = tmp / "erase-requests.txt"
        rng = random.Random(1)
        chosen = rng.sample(range(1, args.persons + 1), erase)
        duplicate = [f"user-{chosen[0]}"] if chosen else []
        lines = [f"user-{i}" for i in chosen] + ["user-does-not-exist", ""] + duplicate
        ids_file.write_text("\n".join(lines) + "\n")
        print(f"erase request: {ids_file.name} with {len(lines):,} lines "
              "(including a blank, a duplicate and an unknown id)", file=sys.stderr)
        argv = ["persons", "delete", "--distinct-ids-file", str(ids_file), "--delete-events",
                "--report", str(tmp / "report.csv")]
        code = await run_delete(build_parser().parse_args(argv), client)
        remaining = len(server.project().persons)
        print(f"server now holds {remaining:,} persons (was {args.persons:,}); "
              f"{server.stats.requests:,} requests, {server.stats.throttled} throttled (429), "
              f"peak {server.stats.peak_in_flight} in flight; "
              f"{time.perf_counter() - started:.1f}s in all", file=sys.stderr)
    return code
