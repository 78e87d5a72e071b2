"""Run every benchmark and print the README table (markdown).

    python benchmarks/run_all.py          # about 3-4 minutes on 2 cores
"""

from __future__ import annotations

import platform
import sys
import time

import bench_bulk_memory
import bench_decode
import bench_overhead
import bench_pagination
import bench_ratelimit


def main() -> None:
    started = time.time()
    rows: list[tuple[str, str]] = []
    for module in (bench_overhead, bench_decode, bench_pagination, bench_ratelimit,
                   bench_bulk_memory):
        print(f"== {module.__name__}", flush=True)
        sys.argv = [module.__file__ or module.__name__]
        rows += module.main()
    print(f"\nmachine: {platform.machine()}, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, {time.time() - started:.0f}s in all\n")
    print("| benchmark | result |\n|---|---|")
    for name, result in rows:
        print(f"| {name} | {result} |")


if __name__ == "__main__":
    main()
