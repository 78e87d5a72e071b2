"""``posthog-async persons list`` and ``persons lookup``: streaming reads to stdout."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from typing import Any

import msgspec

from .. import AsyncPostHog, Person
from ..jobs import InputReader, InputSpec, Rejected

__all__ = ["add_read_parsers", "run_list", "run_lookup"]


def add_read_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help="stream persons as JSON lines or CSV")
    p.add_argument("--search")
    p.add_argument("--email")
    p.add_argument("--distinct-id")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--max", type=int, default=None, help="stop after this many persons")
    p.add_argument("--page-size", type=int, default=1000, help="persons per call, at most 1000")
    q = sub.add_parser("lookup", help="look persons up by distinct id or UUID (JSON lines)")
    q.add_argument("values", nargs="*", help="distinct ids (or UUIDs with --uuids)")
    q.add_argument("--distinct-ids-file", metavar="PATH", help="one distinct id a line (- for stdin)")
    q.add_argument("--ids-file", metavar="PATH", help="one person UUID a line (- for stdin)")
    q.add_argument("--uuids", action="store_true", help="the positional values are person UUIDs")


def _row(person: Person) -> dict[str, Any]:
    return {"uuid": person.uuid, "name": person.name, "distinct_ids": ",".join(person.distinct_ids),
            "created_at": person.created_at.isoformat() if person.created_at else "",
            "properties": msgspec.json.encode(person.properties or {}).decode()}


async def run_list(args: argparse.Namespace, client: AsyncPostHog) -> int:
    out = sys.stdout
    writer = None
    count = 0
    async for person in client.persons.list(search=args.search, email=args.email,
                                            distinct_id=args.distinct_id, limit=args.page_size):
        if args.format == "csv":
            row = _row(person)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        else:
            out.write(msgspec.json.encode(person).decode() + "\n")
        count += 1
        if args.max is not None and count >= args.max:
            break
    out.flush()
    print(f"{count:,} persons", file=sys.stderr)
    return 0


def _values(spec: InputSpec) -> Iterator[str]:
    for _, value in InputReader(spec):
        yield value.value if isinstance(value, Rejected) else str(value)


async def run_lookup(args: argparse.Namespace, client: AsyncPostHog) -> int:
    if args.ids_file and args.distinct_ids_file:
        print("error: give --distinct-ids-file or --ids-file, not both", file=sys.stderr)
        return 2
    by_uuid = args.uuids or args.ids_file is not None
    source: Any = args.values
    if args.ids_file or args.distinct_ids_file:
        spec = (InputSpec("ids", args.ids_file) if args.ids_file
                else InputSpec("distinct_ids", args.distinct_ids_file))
        source = _values(spec)
    if by_uuid:
        report = await client.persons.batch_by_uuids_all(source)
    else:
        report = await client.persons.batch_by_distinct_ids_all(source)
    for key, person in report.found.items():
        sys.stdout.write(msgspec.json.encode({"requested": key, "person": person}).decode() + "\n")
    stats = report.input
    print(f"found {len(report.found):,}, not found {len(report.not_found):,}, "
          f"failed {sum(len(f.ids) for f in report.failed):,} "
          f"(blank {stats.blank}, duplicates {stats.duplicates}, invalid {stats.invalid})",
          file=sys.stderr)
    for rejected in report.rejected[:5]:
        print(f"  invalid {rejected.value!r:.60}: {rejected.reason}", file=sys.stderr)
    return 1 if report.failed or stats.invalid else 0
