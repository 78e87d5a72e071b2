"""``posthog-async demo``: a real erasure across an organisation's projects against the built-in
offline server, end to end: discovery, deletion, and verification until PostHog (the fake, with
its weekly batch made a few seconds long) has done everything, ending with a verified report."""

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
    p = sub.add_parser("demo", help="run a GDPR erasure across projects against an offline fake "
                       "PostHog, and verify it", allow_abbrev=False)
    p.add_argument("--persons", type=positive_int, default=10_000,
                   help="persons to seed in each project (default 10,000)")
    p.add_argument("--erase", type=positive_int, default=3_000,
                   help="distinct ids to erase, at most --persons (default 3,000)")
    p.add_argument("--projects", type=positive_int, default=3,
                   help="projects the key reaches (default 3), plus a sandbox left out on purpose")
    p.add_argument("--batch-seconds", type=positive_int, default=10,
                   help="how long the fake's event-deletion batch takes (PostHog's runs weekly)")


async def run_demo(args: argparse.Namespace) -> int:
    from ..testing import PRODUCTION_LIMITS, FakePostHog
    from . import build_parser
    from ._delete import run_delete
    from ._verify import run_verify

    erase = min(args.erase, args.persons)
    projects = list(range(1, args.projects + 1))
    sandbox = args.projects + 1
    print(f"starting an offline PostHog on 127.0.0.1: {args.projects} projects with "
          f"{args.persons:,} persons each (60% of the distinct ids in every project, as different "
          f"persons), a sandbox project {sandbox}, production rate limits per key, queued person "
          f"deletions, and a {args.batch_seconds}s stand-in for PostHog's weekly event-deletion "
          "batch...", file=sys.stderr)
    server = FakePostHog(rate_limits=PRODUCTION_LIMITS, project_ids=projects,
                         queue_person_deletions=True, queued_deletion_delay=0.5,
                         event_deletion_delay=float(args.batch_seconds))
    started = time.perf_counter()
    server.seed_persons_across(args.persons, overlap=0.6)
    server.add_project(sandbox, name="Sandbox")
    server.seed_persons(args.persons, project_id=sandbox)
    async with server, server.client() as client:
        tmp = Path(tempfile.mkdtemp(prefix="posthog-async-demo-"))  # kept: the report is the proof
        ids_file = tmp / "erase-requests.txt"
        rng = random.Random(1)
        shared = round(args.persons * 0.6)
        chosen = rng.sample(range(1, args.persons + 1), erase)
        lines = [f"user-{i}" if i <= shared else f"p{1 + i % args.projects}-user-{i}"
                 for i in chosen]  # a shared id: a person in every project; else in one
        lines += ["user-does-not-exist", "", *lines[:1]]
        ids_file.write_text("\n".join(lines) + "\n")
        print(f"erase request: {ids_file.name} with {len(lines):,} lines (including a blank, a "
              "duplicate and an unknown id), to be erased from every project\n", file=sys.stderr)
        report = tmp / "report.csv"
        common = ["--distinct-ids-file", str(ids_file), "--all-projects", "--exclude-project",
                  str(sandbox), "--report", str(report)]
        parser = build_parser()
        code = await run_delete(parser.parse_args(["persons", "delete", *common,
                                                   "--delete-events"]), client)
        print("\nverifying: lookups until every deleted person is gone, then PostHog's "
              "deletion_status rows until each is completed...", file=sys.stderr)
        verified = await run_verify(parser.parse_args(
            ["persons", "verify", *common, "--wait", "--interval", "2"]), client)
        left = {pid: len(server.project(pid).persons) for pid in projects}
        print(f"\nserver now holds {', '.join(f'{n:,}' for n in left.values())} persons in "
              f"projects {', '.join(map(str, projects))} (was {args.persons:,} each; the sandbox "
              f"still has {len(server.project(sandbox).persons):,}); {server.stats.requests:,} "
              f"requests, {server.stats.throttled} throttled (429), peak "
              f"{server.stats.peak_in_flight} in flight; {time.perf_counter() - started:.1f}s in "
              f"all\nthe proof, one row per (project, id): {report}", file=sys.stderr)
    return code or verified
