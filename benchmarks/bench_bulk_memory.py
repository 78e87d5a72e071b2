"""6. Bulk streaming memory: one million ids from a generator through bulk_delete_all.

Each variant runs in a fresh child process so its peak RSS (VmHWM) is its own. One fake server
(own process) serves them all; ``keep_person=True`` so later runs find the same persons (the
client's work and memory are those of a real deletion: every id settled, none kept by name).
The not-found variants send ids nobody has (``ghost-N``): the report counts them and names the
first 1000, so memory must not grow with them either, with or without lookups first.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from posthog_async import AsyncPostHog

from _common import machine_line, smoke_parser
from _server import API_KEY, fake_server

IDS = 1_000_000
#: (dedupe, ids nobody has, lookups first)
VARIANTS = ((False, False, False), (True, False, False), (False, True, False), (False, True, True))


def _status_kb(field: str) -> int:
    """VmRSS/VmHWM from /proc (ru_maxrss would include the parent's peak across exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def child(url: str, dedupe: bool, ghosts: bool, resolve: bool, ids: int) -> None:
    base = _status_kb("VmRSS")
    prefix = "ghost-" if ghosts else "user-"
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None,
                            max_concurrency=8) as ph:
        start = time.perf_counter()
        report = await ph.persons.bulk_delete_all(
            distinct_ids=(f"{prefix}{i}" for i in range(1, ids + 1)), dedupe=dedupe,
            keep_person=True, resolve=resolve)
        elapsed = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    print(json.dumps({"settled": report.outcomes["kept"] + report.outcomes["not_found"],
                      "named": len(report.not_found), "ok": report.ok, "seconds": elapsed,
                      "rss_before_kb": base, "rss_peak_kb": peak}))


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--ids", type=int, default=IDS)
    args = parser.parse_args(argv)
    ids = 5000 if args.smoke else args.ids
    print(machine_line())
    rows = []
    with fake_server(ids) as url:
        for dedupe, ghosts, resolve in VARIANTS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", url, str(int(dedupe)), str(int(ghosts)),
                 str(int(resolve)), str(ids)], capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            grew = (r["rss_peak_kb"] - r["rss_before_kb"]) / 1024
            what = (f"dedupe={dedupe}" + (", ids not found" if ghosts else "")
                    + (", resolve=True" if resolve else ""))
            named = f", {r['named']:,} named" if ghosts else ""
            print(f"{what}: {r['settled']:,} settled{named} in {r['seconds']:.1f}s, ok={r['ok']}, "
                  f"peak RSS {r['rss_peak_kb'] / 1024:.0f} MB (+{grew:.0f} MB during the job)")
            rows.append((f"bulk memory: {ids:,} ids from a generator, {what} [1000-id chunks, "
                         f"C=8, unpaced, fresh process]",
                         f"peak RSS {r['rss_peak_kb'] / 1024:.0f} MB (+{grew:.0f} MB during the "
                         f"job), {r['seconds']:.1f} s"))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(child(sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1", sys.argv[5] == "1",
                          int(sys.argv[6])))
    else:
        main()
