"""``posthog-async persons list`` and ``persons lookup``: streaming reads to stdout.

A call that fails is reported on stderr with its reason (the exception's type and message, the
key redacted) and exit status 1; a lookup given no ids at all is a usage error (exit status 2).

A lookup reads its input in a worker thread, a thousand ids at a time, so the event loop stays
free while standard input or a named pipe is silent (or waits for its writer): one Ctrl-C or
SIGTERM stops it at once, with a message and exit status 130, as ``persons delete`` does (a
lookup changes nothing and journals nothing, so there is nothing to finish first).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import msgspec

from .. import _constants as C
from .. import AsyncPostHog, Person
from ..jobs import InputReader, InputSpec, JobInterrupted, Rejected
from ._args import CliParser, UsageError, bounded_int, positive_int, redact
from ._signals import on_stop_signals

__all__ = ["add_read_parsers", "run_list", "run_lookup"]

EXIT_INTERRUPTED = 130  # as persons delete


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


_BATCH = 1000  # ids read per trip to the worker thread


def _take(entries: Iterator[tuple[int, object]]) -> list[str]:
    batch = []
    for _, value in entries:
        batch.append(value.value if isinstance(value, Rejected) else str(value))
        if len(batch) == _BATCH:
            break
    return batch


async def _values(spec: InputSpec, stop: threading.Event) -> AsyncIterator[str]:
    """The ids of ``spec``, read off the event loop; a stop ends a silent read within 0.1 s."""
    entries = iter(InputReader(spec, should_stop=stop.is_set))
    try:
        while batch := await anyio.to_thread.run_sync(_take, entries):
            for value in batch:
                yield value
    finally:
        try:  # a generator: close the file (or the pipe's reader thread) now
            entries.close()  # type: ignore[attr-defined]
        except ValueError:  # being read in the worker thread (a cancellation does not wait for
            stop.set()      # it): that read ends within 0.1 s, and closes the file itself


async def _stoppable(work: Any, stop: threading.Event) -> tuple[asyncio.Future[Any], str | None]:
    """Run ``work``; the first Ctrl-C or SIGTERM stops it at once. Returns its task and the
    signal's name (``None``: it ran to its end)."""
    task = asyncio.ensure_future(work)
    received: list[str] = []

    def handle(sig: int) -> None:
        if not received:
            received.append("Ctrl-C" if sig == signal.SIGINT else "SIGTERM")
            print(f"{received[0]}: stopping the lookup...", file=sys.stderr, flush=True)
        stop.set()  # a read waiting for input notices within 0.1 s
        task.cancel()

    with on_stop_signals(handle):
        await asyncio.wait([task])
    return task, received[0] if received else None


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
    stop = threading.Event()
    if args.ids_file or args.distinct_ids_file:
        spec = (InputSpec("ids", args.ids_file) if args.ids_file
                else InputSpec("distinct_ids", args.distinct_ids_file))
        source = _values(spec, stop)
    lookup = (client.persons.batch_by_uuids_all if by_uuid
              else client.persons.batch_by_distinct_ids_all)
    task, stopped_by = await _stoppable(lookup(source), stop)
    if stopped_by is not None and (task.cancelled() or isinstance(task.exception(),
                                                                  JobInterrupted)):
        print(f"interrupted by {stopped_by}: the lookup stopped; nothing was written to "
              "standard output", file=sys.stderr)
        return EXIT_INTERRUPTED
    report = task.result()
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
