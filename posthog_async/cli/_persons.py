"""``posthog-async persons list`` and ``persons lookup``: streaming reads to stdout.

A call that fails is reported on stderr with its reason (the exception's type and message, the
key redacted) and exit status 1; a lookup given no ids at all is a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from typing import Any

import msgspec

from .. import _constants as C
from .. import AsyncPostHog, Person
from ..jobs import InputReader, InputSpec, Rejected
from ._args import CliParser, UsageError, bounded_int, positive_int, redact

__all__ = ["add_read_parsers", "run_list", "run_lookup"]


def add_read_parsers(sub: argparse._SubParsersAction[CliParser]) -> None:
    p = sub.add_parser("list", help="stream persons as JSON lines or CSV", allow_abbrev=False)
    p.add_argument("--search")
    p.add_argument("--email")
    p.add_argument("--distinct-id")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--max", type=positive_int, default=None, help="stop after this many persons")
    p.add_argument("--page-size", default=1000, help="persons per call, at most 1000",
                   type=bounded_int(C.MAX_PERSONS_PAGE_LIMIT,
                                    f"PostHog gives at most {C.MAX_PERSONS_PAGE_LIMIT} a page"))
    q = sub.add_parser("lookup", help="look persons up by distinct id or UUID (JSON lines)",
                       allow_abbrev=False)
    q.add_argument("values", nargs="*", help="distinct ids (or UUIDs with --uuids)")
    q.add_argument("--distinct-ids-file", metavar="PATH", help="one distinct id a line (- for stdin)")
    q.add_argument("--ids-file", metavar="PATH", help="one person UUID a line (- for stdin)")
    q.add_argument("--uuids", action="store_true", help="the positional values are person UUIDs")


def _row(person: Person) -> dict[str, Any]:
    return {"uuid": person.uuid, "name": person.name, "distinct_ids": ",".join(person.distinct_ids),
            "created_at": person.created_at.isoformat() if person.created_at else "",
            "properties": msgspec.json.encode(person.properties or {}).decode()}


def _failed(what: str, error: BaseException) -> str:
    return redact(f"error: {what} failed: {type(error).__name__}: {error}")


async def run_list(args: argparse.Namespace, client: AsyncPostHog) -> int:
    out = sys.stdout
    writer = None
    count = 0
    persons = aiter(client.persons.list(search=args.search, email=args.email,
                                        distinct_id=args.distinct_id, limit=args.page_size))
    while args.max is None or count < args.max:
        try:
            person = await anext(persons)
        except StopAsyncIteration:
            break
        except Exception as error:  # the call failed: say why, and how far the listing got
            out.flush()
            print(f"{_failed('listing persons', error)} (after {count:,} persons)", file=sys.stderr)
            return 1
        if args.format == "csv":
            row = _row(person)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
        else:
            out.write(msgspec.json.encode(person).decode() + "\n")
        count += 1
    out.flush()
    print(f"{count:,} persons", file=sys.stderr)
    return 0


def _values(spec: InputSpec) -> Iterator[str]:
    for _, value in InputReader(spec):
        yield value.value if isinstance(value, Rejected) else str(value)


async def run_lookup(args: argparse.Namespace, client: AsyncPostHog) -> int:
    files = [flag for flag, path in (("--distinct-ids-file", args.distinct_ids_file),
                                     ("--ids-file", args.ids_file)) if path]
    if len(files) > 1:
        raise UsageError("give --distinct-ids-file or --ids-file, not both")
    if files and args.values:
        raise UsageError(f"give ids on the command line or with {files[0]}, not both")
    if args.distinct_ids_file and args.uuids:
        raise UsageError("--uuids is for ids on the command line; use --ids-file PATH for a file "
                         "of person UUIDs")
    if not files and not args.values:
        raise UsageError("no ids to look up: give them on the command line, or with "
                         "--distinct-ids-file PATH / --ids-file PATH (- reads standard input)")
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
    stats = report.input
    if stats.requested == stats.blank:  # nothing was sent: there was nothing to send
        where = "standard input" if _reads_stdin(args) else files[0] if files else "the input"
        raise UsageError(f"no ids to look up: {where} holds no id "
                         f"({stats.blank:,} blank lines)")
    for key, person in report.found.items():
        sys.stdout.write(msgspec.json.encode({"requested": key, "person": person}).decode() + "\n")
    sys.stdout.flush()
    print(f"found {len(report.found):,}, not found {len(report.not_found):,}, "
          f"failed {sum(len(f.ids) for f in report.failed):,} "
          f"(blank {stats.blank}, duplicates {stats.duplicates}, invalid {stats.invalid})",
          file=sys.stderr)
    reasons: dict[str, int] = {}
    for failure in report.failed:
        reason = _failed("lookup", failure.error)
        reasons[reason] = reasons.get(reason, 0) + len(failure.ids)
    for reason, count in list(reasons.items())[:5]:
        print(f"{reason} ({count:,} ids)", file=sys.stderr)
    for rejected in report.rejected[:5]:
        print(f"  invalid {rejected.value!r:.60}: {rejected.reason}", file=sys.stderr)
    return 1 if report.failed or stats.invalid else 0


def _reads_stdin(args: argparse.Namespace) -> bool:
    return "-" in (args.distinct_ids_file, args.ids_file)
