"""An erasure request across projects, then proof that PostHog did it.

    python examples/erase_across_projects.py             # offline: three projects, one left out
    python examples/erase_across_projects.py erase.txt   # your PostHog: the distinct ids in erase.txt

In PostHog a person belongs to one project: the same distinct id is a different person, with
its own events, in each project a company runs. So an erasure request is sent to every project:

1. ``ph.reachable_projects()``: which projects the key reaches, and which it cannot (PostHog's
   own words for each);
2. ``DeletionJob(..., projects=...)``: every id in every project, each project in its own
   calls, with events; a journal on disk, so the same job resumes after a crash;
3. ``job.verify()``: every person the job deleted is no longer found, and PostHog's
   ``deletion_status`` says their events are deleted. PostHog deletes events in a weekly batch
   (Sundays 05:00 UTC), so on your PostHog the verdict is ``pending`` until it has run (the
   command line's ``posthog-async persons verify`` exits 3 then); offline, a stand-in batch
   runs after two seconds and the example waits for it.

Against your PostHog (``POSTHOG_PERSONAL_API_KEY`` set) this **deletes**, with their events,
the persons whose distinct ids are in the file you name, in the projects of
``POSTHOG_PROJECT_IDS`` (comma-separated; default ``POSTHOG_PROJECT_ID``), and nothing else:
without a file it refuses.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from _target import OFFLINE_PROJECTS, posthog, real_posthog

from posthog_async.jobs import DeletionJob

SANDBOX = OFFLINE_PROJECTS[-1]  # offline, a project left out on purpose (--exclude-project)


async def main(argv: list[str]) -> int:
    if real_posthog():
        if not argv:
            print("against your PostHog this example deletes the persons whose distinct ids are "
                  "in a file you name: python examples/erase_across_projects.py erase.txt",
                  file=sys.stderr)
            return 2
        listed = os.environ.get("POSTHOG_PROJECT_IDS") or os.environ.get("POSTHOG_PROJECT_ID", "")
        projects: list[int] | str = [int(p) for p in listed.split(",") if p.strip()]
        exclude: list[int] = []
    else:
        projects, exclude = "all", [SANDBOX]  # every project the key reaches, but the sandbox

    # Offline: PostHog's weekly event-deletion batch stands in as a two-second delay.
    async with posthog(seed_persons=600, offline={"event_deletion_delay": 2.0}) as ph:
        reach = await ph.reachable_projects(None if projects == "all" else projects)
        print("the key reaches:", ", ".join(f"{p.id} ({p.name})" for p in reach.projects))
        for gap in reach.not_covered:
            print(f"  not covered: {gap.id}: {gap.status_code} {gap.message}")

        with tempfile.TemporaryDirectory() as tmp:
            ids_file = Path(argv[0]) if argv else Path(tmp) / "erase.txt"
            if not argv:  # user-1 ... user-250 are persons in projects 1 and 2, each its own
                ids_file.write_text("".join(f"user-{i}\n" for i in range(1, 251)) + "nobody\n",
                                    encoding="utf-8")
            job = DeletionJob(ph, distinct_ids=ids_file, projects=projects,
                              exclude_projects=exclude, delete_events=True,
                              journal=Path(tmp) / "job.sqlite")  # resume: the same journal
            report = await job.run()
            for project in report.projects:
                print(f"project {project['id']}: {project['state']}, "
                      f"{project.get('totals', {}).get('deleted', 0)} deleted")
            print("totals:", {k: report.totals[k] for k in ("deleted", "not_found", "failed")})

            report = await job.verify(wait=not real_posthog(), interval=0.5)
            verdict = report.verification
            print("verification:", verdict["state"], verdict["problems"] or "")
            written = report.write(Path(tmp) / "report.csv")  # one row per (project, id): the proof
            print(f"{written.name}: {len(written.read_text(encoding='utf-8').splitlines())} lines")
    if not report.ok:
        return 1
    return 0 if verdict["state"] == "verified" else 3  # 3: pending at PostHog, check again later


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
