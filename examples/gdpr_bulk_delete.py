"""A GDPR erasure request, end to end: check, delete in chunks, account for every id, prove it.

    python examples/gdpr_bulk_delete.py              # offline: erases generated test persons
    python examples/gdpr_bulk_delete.py erase.txt    # your PostHog: the distinct ids in erase.txt

1. a lookup of which distinct ids exist (batch lookups, 200 per call);
2. bulk delete with events of the first half, streamed in chunks of at most 1000, each chunk
   looked up first (``resolve=True``) so every id's outcome is exact;
3. a report: deleted / not found / failed, per id;
4. the queued event deletions from ``deletion_status``;
5. the second half through ``posthog_async.jobs.DeletionJob``, the resumable form a multi-hour
   job uses (what ``posthog-async persons delete`` runs), with its report written to a file.

Against your PostHog (``POSTHOG_PERSONAL_API_KEY`` and ``POSTHOG_PROJECT_ID`` set) this
**deletes** the persons whose distinct ids are in the file you name, with their events, and
nothing else: without a file it refuses.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _target import posthog, real_posthog

from posthog_async.jobs import DeletionJob


def generated_requests(n: int) -> Iterator[str]:  # a generator: 10 million ids are never held whole
    for i in range(1, n + 1):
        yield f"user-{i}"
    yield "user-does-not-exist"
    yield "   "  # blank: counted and skipped, never sent


async def main(argv: list[str]) -> int:
    if argv:
        ids = [line.strip() for line in Path(argv[0]).read_text(encoding="utf-8").splitlines()]
    elif real_posthog():
        print("against your PostHog this example deletes the persons whose distinct ids are in "
              "a file you name: python examples/gdpr_bulk_delete.py erase.txt", file=sys.stderr)
        return 2
    else:
        ids = list(generated_requests(4000))
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2:]

    async with posthog(seed_persons=5000) as ph:
        lookup = await ph.persons.batch_by_distinct_ids_all(ids)
        print(f"lookup: {len(lookup.found)} exist, {len(lookup.not_found)} unknown "
              f"({lookup.input.blank} blank lines ignored)")

        report = await ph.persons.bulk_delete_all(
            distinct_ids=iter(first), delete_events=True, resolve=True,
            on_progress=lambda done, total: print(f"  {done} ids settled"),
        )
        print(f"{report.persons_deleted} persons deleted in {report.chunks} chunks; per id: "
              f"{dict(report.outcomes)}; not found: {len(report.not_found)}; exact: {report.exact}")
        for failure in report.failed_chunks:
            print(f"  FAILED {len(failure.ids)} ids: {failure.reason}")
        pending = [s async for s in ph.persons.deletion_status(status="pending")]
        print(f"{len(pending)} event deletions queued on the server")

        # The resumable form: a journal on disk (resume after a crash), a report to file.
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = Path(tmp) / "erase.txt"
            ids_file.write_text("\n".join(second) + "\n", encoding="utf-8")
            job_report = await DeletionJob(ph, distinct_ids=ids_file, delete_events=True).run()
            print("job totals:", job_report.totals)
            written = job_report.write(Path(tmp) / "report.csv")  # one row per id: the proof
            print(f"{written.name}: {len(written.read_text(encoding='utf-8').splitlines())} lines")
    return 0 if report.ok and job_report.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
