"""Request overhead by instruction count: what load on a shared machine does not move.

Timed CPU per request (``bench_overhead.py``) swings by ±20% from round to round on a shared
2-core VM, so the same comparison is made here by counting the client process's instructions
under valgrind's callgrind: ``persons.retrieve`` by posthog-async (limiter on, its window never
full; limiter off) against raw aiohttp + ``json.loads``, at concurrency C, the fake PostHog in
a process of its own. Each variant runs twice, with ``small`` and ``large`` requests, and the
difference divided by ``large - small`` is the cost of one request, start-up removed. Needs
``valgrind`` on the PATH; about 2 minutes for C = 1 and 8. Not in ``run_all.py`` (its rows say why
when valgrind is missing).

    python benchmarks/bench_instructions.py             # C = 1 and 8
    python benchmarks/bench_instructions.py --smoke     # each variant once, no valgrind
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine_line, smoke_parser
from bench_overhead import LIMITER_ON, ours, raw_aiohttp
from _server import fake_server, first_person_uuid

TARGETS = {"off": 1.05, "on": 1.10}
LABELS = {"raw": "raw aiohttp + json.loads", "off": "posthog-async, limiter off",
          "on": "posthog-async, limiter on"}


async def _client(variant: str, url: str, uuid: str, n: int, c: int) -> None:
    """The measured process: ``bench_overhead``'s own variants, ``n`` requests from ``c``
    workers (its warm-up is the same in both runs of a variant, so the difference drops it)."""
    if variant == "raw":
        await raw_aiohttp(url, uuid, n, c)
    else:
        await ours(url, uuid, n, c, LIMITER_ON if variant == "on" else None)


def _instructions(variant: str, url: str, uuid: str, n: int, c: int, out: Path) -> int:
    client = [sys.executable, __file__, "--client", variant, url, uuid, str(n), str(c)]
    run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *client],
                         capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total: {run.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args(argv)
    small, large = 200, 1800
    if shutil.which("valgrind") is None:
        return [("overhead by instructions", "not run: valgrind is not installed")]
    rows: list[tuple[str, str]] = []
    print(machine_line())
    with fake_server(20) as url, tempfile.TemporaryDirectory() as tmp:
        uuid = first_person_uuid(url)
        if args.smoke:  # each variant once, without valgrind: the script runs, nothing counted
            for variant in LABELS:
                subprocess.run([sys.executable, __file__, "--client", variant, url, uuid, "8", "2"],
                               check=True)
            print("smoke run: every variant ran; no instructions counted")
            return [("overhead by instructions", "smoke run: nothing counted")]
        for c in args.concurrency:
            per = {}
            for variant in ("raw", "off", "on"):
                counts = [_instructions(variant, url, uuid, n, c, Path(tmp) / f"{variant}.{c}.{n}")
                          for n in (small, large)]
                per[variant] = (counts[1] - counts[0]) / (large - small)
            cond = f"C={c}, callgrind, client process only, {large - small} requests differenced"
            for variant in ("on", "off", "raw"):
                value = f"{per[variant] / 1000:.1f}k instructions/request"
                if variant != "raw":
                    ratio = per[variant] / per["raw"]
                    met = "met" if ratio <= TARGETS[variant] else "MISSED"
                    value += f", {ratio:.3f}x raw aiohttp; target ≤ {TARGETS[variant]:.2f}x: {met}"
                else:
                    value += " (baseline)"
                rows.append((f"overhead by instructions: persons.retrieve, {LABELS[variant]} [{cond}]",
                             value))
                print(f"  {LABELS[variant]:<28} {value}   [{cond}]")
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        variant, url, uuid, n, c = sys.argv[2:7]
        asyncio.run(_client(variant, url, uuid, int(n), int(c)))
    else:
        main()
