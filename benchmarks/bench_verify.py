"""7. An erasure across projects, then its verification: client CPU per (project, id) for each.

The fake PostHog runs in its own process with three projects whose distinct ids all overlap
(each id is a person in every project) and event-deletion rows that are verified as soon as they
are written. Each round erases its own slice of ids from the three projects (``DeletionJob``,
``projects=[1, 2, 3]``, ``delete_events``, lookups first) and then verifies it (lookups by UUID,
``deletion_status`` read by scan or filter): both sides in one run, interleaved, with the
client unpaced, so the numbers are the client's own work, not PostHog's rate limits.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from posthog_async import AsyncPostHog
from posthog_async.jobs import DeletionJob

from _common import machine_line, median, ratio_stats, smoke_parser
from _server import API_KEY, fake_server

PROJECTS = [1, 2, 3]


async def one_round(url: str, folder: Path, first: int, size: int) -> tuple[float, float, str]:
    source = folder / f"erase-{first}.txt"
    source.write_text("\n".join(f"user-{i}" for i in range(first, first + size)) + "\n")
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None,
                            max_concurrency=8) as ph:
        job = DeletionJob(ph, distinct_ids=source, projects=PROJECTS, delete_events=True)
        cpu = time.process_time()
        report = await job.run()
        job_cpu = time.process_time() - cpu
        assert report.ok and report.totals["deleted"] == size * len(PROJECTS), report.totals
        cpu = time.process_time()
        report = await job.verify()
        verify_cpu = time.process_time() - cpu
    state = (report.verification or {}).get("state", "?")
    return job_cpu, verify_cpu, state


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--ids", type=int, default=20_000, help="ids erased per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    size, rounds = (200, 2) if args.smoke else (args.ids, args.rounds)
    print(machine_line())
    jobs: list[float] = []
    checks: list[float] = []
    knobs = ("--projects", ",".join(map(str, PROJECTS)), "--overlap", "1",
             "--event-deletion-delay", "0")
    with fake_server(size * rounds, extra=knobs) as url, \
            tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for r in range(rounds):
            job_cpu, verify_cpu, state = asyncio.run(one_round(url, Path(tmp), 1 + r * size, size))
            assert state == "verified", state
            jobs.append(job_cpu)
            checks.append(verify_cpu)
    pairs = size * len(PROJECTS)
    per = 1000 / pairs * 1000  # ms per 1000 (project, id) pairs
    conditions = (f"[{size:,} ids x {len(PROJECTS)} projects a round, {rounds} rounds "
                  "interleaved, client CPU, unpaced, fake in its own process]")
    rows = [
        (f"erasure across projects, deletion job {conditions}",
         f"{median(jobs) * per:.1f} ms per 1000 (project, id) (range "
         f"{min(jobs) * per:.1f}-{max(jobs) * per:.1f})"),
        (f"erasure across projects, verification {conditions}",
         f"{median(checks) * per:.1f} ms per 1000 (project, id) (range "
         f"{min(checks) * per:.1f}-{max(checks) * per:.1f}); verify/job "
         f"{ratio_stats(checks, jobs)}"),
    ]
    for name, value in rows:
        print(f"{name}: {value}")
    return rows


if __name__ == "__main__":
    main()
