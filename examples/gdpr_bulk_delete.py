"""A GDPR erasure request, end to end: check, delete in chunks, account for every id, prove it.

1. a lookup of which distinct ids exist (batch lookups, 200 per call);
2. bulk delete with events, streamed from a generator in chunks of at most 1000, each chunk
   looked up first (``resolve=True``) so every id's outcome is exact;
3. a report: deleted / not found / failed, per id;
4. the queued event deletions from ``deletion_status``.
For a multi-hour job that must survive crashes, use ``posthog_async.jobs.DeletionJob`` (or
``posthog-async persons delete``), shown at the end.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from _target import posthog

from posthog_async.jobs import DeletionJob


def erase_requests(n: int):  # a generator: a 10-million-line file would never be loaded whole
    for i in range(1, n + 1):
        yield f"user-{i}"
    yield "user-does-not-exist"
    yield "   "


async def main() -> None:
    async with posthog(seed_persons=5000) as ph:
        lookup = await ph.persons.batch_by_distinct_ids_all(erase_requests(3000))
        print(f"lookup: {len(lookup.found)} exist, {len(lookup.not_found)} unknown "
              f"({lookup.input.blank} blank lines ignored)")

        report = await ph.persons.bulk_delete_all(
            distinct_ids=erase_requests(3000), delete_events=True, resolve=True,
            on_progress=lambda done, total: print(f"  {done} ids settled"),
        )
        print(f"{report.persons_deleted} persons deleted in {report.chunks} chunks; per id: "
              f"{dict(report.outcomes)}; not found: {report.not_found}; exact: {report.exact}")
        for failure in report.failed_chunks:
            print(f"  FAILED {len(failure.ids)} ids: {failure.reason}")
        pending = [s async for s in ph.persons.deletion_status(status="pending")]
        print(f"{len(pending)} event deletions queued on the server")

        # The resumable form: a journal on disk, a report to file.
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = Path(tmp) / "erase.txt"
            ids_file.write_text("\n".join(f"user-{i}" for i in range(3001, 4001)) + "\n")
            job_report = await DeletionJob(ph, distinct_ids=ids_file, delete_events=True).run()
            print("job totals:", job_report.totals)
            job_report.write(Path(tmp) / "report.csv")


if __name__ == "__main__":
    asyncio.run(main())
