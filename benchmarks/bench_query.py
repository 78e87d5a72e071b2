"""9. The query API: decoding a 50,000-row HogQL answer, and exporting a million persons.

Decoding: one HogQL answer of 50,000 rows (the most PostHog returns), rows shaped like the
persons export's (UUID, time, flag, properties as JSON text, distinct ids), as the fake server
serialises them; client CPU per answer for ``decode_query_response`` into ``HogQLResponse``
(typed, unknown fields kept) vs ``json.loads``, interleaved rounds, median and range.

Export: ``ph.persons.export()`` of every person of a fake server (its own process) holding one
million, in a fresh child process so its peak RSS (VmHWM) is its own; wall-clock persons/s,
client CPU per person, and memory. The client runs unpaced (``rate_limits=None``): at PostHog's
default 120 HogQL queries an hour the same export takes 100 queries, about 50 minutes, whatever
the client does (25 s of pacing on the API queries plan). The server's first query, which loads
its persons into DuckDB, is made before timing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import msgspec

from posthog_async import AsyncPostHog
from posthog_async._query_models import HogQLResponse, decode_query_response
from posthog_async.testing._store import ProjectData

from _common import machine_line, median, ratio_stats, smoke_parser, versions
from _server import API_KEY, fake_server
from bench_bulk_memory import _status_kb

ROWS = 50_000
PERSONS = 1_000_000


def answer_body(rows: int) -> bytes:
    project = ProjectData(1)
    project.seed_persons(rows)
    results = [[p.uuid, p.created_at(), True, msgspec.json.encode(p.properties).decode(),
                p.shown_distinct_ids()] for p in project.ordered()]
    return msgspec.json.encode({
        "results": results, "columns": ["id", "created_at", "is_identified", "properties",
                                        "distinct_ids"],
        "types": [["id", "UUID"], ["created_at", "DateTime64(6, 'UTC')"], ["is_identified", "Bool"],
                  ["properties", "String"], ["distinct_ids", "Array(String)"]],
        "hogql": "SELECT ...", "clickhouse": None, "error": None, "timings": [], "modifiers": {},
        "is_cached": False, "last_refresh": "2026-01-01T00:00:00Z", "query_status": None})


def cpu_per_call(fn: Any, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def decode_rows(rounds: int, rows: int) -> tuple[str, str]:
    body = answer_body(rows)
    assert len(decode_query_response(body, HogQLResponse).results) == rows
    ours: list[float] = []
    stdlib: list[float] = []
    n = 3
    for _ in range(rounds):
        ours.append(cpu_per_call(lambda: decode_query_response(body, HogQLResponse), n))
        stdlib.append(cpu_per_call(lambda: json.loads(body), n))
    stats = ratio_stats(stdlib, ours)
    cond = (f"{rows:,} rows x 5 columns, {len(body) / 1e6:.1f} MB, {rounds} rounds x {n}; "
            f"{versions('msgspec')}, json from the standard library")
    result = (f"{median(ours) * 1e3:,.0f} ms into HogQLResponse vs json.loads {median(stdlib) * 1e3:,.0f} "
              f"ms: {stats} faster, typed, unknown fields kept")
    print(f"decode [{cond}]: {result}")
    return f"query: decode a {rows:,}-row HogQL answer [{cond}]", result


async def child(url: str, page_size: int) -> None:
    async with AsyncPostHog(API_KEY, host=url, project_id=1, rate_limits=None) as ph:
        warm = await ph.query.hogql("SELECT count() FROM persons")  # the server loads DuckDB
        total = int(warm.results[0][0])
        base = _status_kb("VmRSS")
        seen = 0
        last = ""
        unique = True
        wall, cpu = time.perf_counter(), time.process_time()
        async for person in ph.persons.export(page_size=page_size):
            seen += 1
            unique = unique and person.id != last
            last = person.id
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"total": total, "seen": seen, "ordered_unique": unique, "wall": wall,
                      "cpu": cpu, "rss_before_kb": base, "rss_peak_kb": _status_kb("VmHWM")}))


def export_rows(persons: int, page_size: int) -> tuple[str, str]:
    with fake_server(persons) as url:
        out = subprocess.run([sys.executable, __file__, "--child", url, str(page_size)],
                             capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["seen"] == r["total"] == persons and r["ordered_unique"], r
    cond = (f"{persons:,} persons in the fake server (own process, DuckDB warm), page_size "
            f"{page_size:,} ({-(-persons // page_size)} HogQL queries), unpaced, fresh child process; "
            f"{versions('msgspec', 'aiohttp', 'duckdb', 'sqlglot')}")
    result = (f"{r['seen'] / r['wall']:,.0f} persons/s wall ({r['wall']:.1f} s, server included), "
              f"{r['cpu'] / r['seen'] * 1e6:.1f} µs client CPU/person, peak RSS "
              f"{r['rss_peak_kb'] / 1024:.0f} MB ({(r['rss_peak_kb'] - r['rss_before_kb']) / 1024:+.0f} MB "
              "during the export); every person once")
    print(f"export [{cond}]: {result}")
    return f"query: persons export [{cond}]", result


def main(argv: list[str] | None = None) -> list[tuple[str, str]]:
    parser = smoke_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--persons", type=int, default=PERSONS)
    parser.add_argument("--page-size", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(machine_line())
    if args.smoke:
        return [decode_rows(1, 2_000), export_rows(3_000, 1_000)]
    return [decode_rows(args.rounds, ROWS), export_rows(args.persons, args.page_size)]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], int(sys.argv[3])))
    else:
        main()
