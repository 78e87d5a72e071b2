"""4. Decoding: one persons page into our typed models (msgspec) vs ``json.loads`` into dicts.

Pages of 100 and 1000 persons as the fake server serialises them; CPU time per page
(``time.process_time()``), interleaved rounds, median and range of the ratio.
"""

from __future__ import annotations

import json
import time
from typing import Any
from collections.abc import Callable

import msgspec

from posthog_async import Page, Person
from posthog_async._pagination import decoder_for
from posthog_async.testing._store import ProjectData

from _common import machine_line, median, ratio_stats, smoke_parser, versions


def page_body(size: int) -> bytes:
    project = ProjectData(1)
    project.seed_persons(size)
    return msgspec.json.encode({"next": f"http://127.0.0.1/api/projects/1/persons/?offset={size}",
                                "previous": None,
                                "results": [p.to_json() for p in project.ordered()]})


def cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    rounds = 1 if args.smoke else args.rounds
    print(machine_line())
    decoder = decoder_for(Page[Person])
    rows: list[tuple[str, str]] = []
    for size in (100, 1000):
        body = page_body(size)
        assert len(decoder.decode(body).results) == size
        n = max(1, (3 if args.smoke else 30_000) // size)
        ours: list[float] = []
        stdlib: list[float] = []
        for _ in range(rounds):
            ours.append(cpu_per_call(lambda: decoder.decode(body), n))  # noqa: B023 (called here)
            stdlib.append(cpu_per_call(lambda: json.loads(body), n))  # noqa: B023 (called here)
        stats = ratio_stats(stdlib, ours)  # how many times faster
        cond = (f"{size}-person page, {len(body):,} bytes, {rounds} rounds x {n}; "
                f"{versions('msgspec')}, json from the standard library")
        result = (f"{median(ours) * 1e6:,.0f} µs into Page[Person] vs json.loads to dicts "
                  f"{median(stdlib) * 1e6:,.0f} µs: {stats} faster, and typed")
        print(f"decode [{cond}]: {result}")
        rows.append((f"decode a persons page [{cond}]", result))
    return rows


if __name__ == "__main__":
    main()
