"""5. Bulk streaming memory: one million distinct ids from a generator through bulk_delete_all.

Each variant runs in a fresh child process so its peak RSS (VmHWM) is its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from _server import API_KEY, fake_server

from posthog_async import AsyncPostHog

IDS = 1_000_000


def _status_kb(field: str) -> int:
    """VmRSS/VmHWM from /proc (ru_maxrss would include the parent's peak across exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def child(url: str, dedupe: bool) -> None:
    base = _status_kb("VmRSS")
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None,
                            max_concurrency=8) as ph:
        start = time.perf_counter()
        report = await ph.persons.bulk_delete_all(
            distinct_ids=(f"user-{i}" for i in range(1, IDS + 1)), dedupe=dedupe)
        elapsed = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    print(json.dumps({"dedupe": dedupe, "deleted": report.persons_deleted, "ok": report.ok,
                      "seconds": elapsed, "rss_before_kb": base, "rss_peak_kb": peak}))


def main() -> list[tuple[str, str]]:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], sys.argv[3] == "1"))
        return []
    rows = []
    for dedupe in (False, True):
        with fake_server(IDS) as url:
            out = subprocess.run([sys.executable, __file__, "--child", url, "1" if dedupe else "0"],
                                 capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        grew = (r["rss_peak_kb"] - r["rss_before_kb"]) / 1024
        print(f"dedupe={dedupe}: {r['deleted']:,} deleted in {r['seconds']:.1f}s, ok={r['ok']}, "
              f"peak RSS {r['rss_peak_kb'] / 1024:.0f} MB (+{grew:.0f} MB during the job)")
        rows.append((f"1M ids from a generator, dedupe={dedupe}",
                     f"peak RSS {r['rss_peak_kb'] / 1024:.0f} MB (+{grew:.0f} MB), {r['seconds']:.0f}s"))
    return rows


if __name__ == "__main__":
    main()
