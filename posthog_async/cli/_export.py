"""``posthog-async persons export``: every person once, as JSON Lines or CSV, resumable.

Persons are read with ``ph.persons.export()`` (HogQL, keyset-paged by person id), a page at a
time, so memory stays flat whatever the project's size. Each page is written, flushed and
synced before the next is asked for. The output file is its own journal: ``--resume`` drops a
last line cut by a crash, reads the id of the last whole line, and asks for the persons after it.
Every record is one line (properties and distinct ids are written as JSON, which escapes
newlines), so "the last whole line" is always a whole person.

First Ctrl-C (or SIGTERM): stop after the page being written and print the command that
resumes; a second Ctrl-C stops at once (the file is still resumable). PostHog allows 120 HogQL
queries an hour, so a big project's export waits out an hour-long wait now and then: it says
when it resumes, and a Ctrl-C or SIGTERM during that wait stops it at once (nothing of the next
page was read). Exit status: 0 every person written, 1 a call failed (the file holds every
person before it: resume), 2 bad usage, 130 interrupted.

The export reads PostHog's ClickHouse copy of persons, which lags its database: it is not
proof that anyone was deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

import anyio
import msgspec

from .. import _constants as C
from .. import AsyncPostHog, RateLimitError, RateLimits, RateLimitWaitError
from .._admission import STOP, WaitStop
from .._exceptions import WaitAbandonedError
from .._config import resolve_project_id
from .._query_models import ExportedPerson
from ._args import CliParser, UsageError, bounded_int, redact
from ._hint import host_words, option, shell_join
from ._signals import on_stop_signals
from ._progress import format_duration

__all__ = ["add_export_parser", "run_export", "last_exported_id", "CSV_FIELDS"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 130
CSV_FIELDS = ("id", "distinct_ids", "properties", "created_at", "is_identified")


def add_export_parser(sub: argparse._SubParsersAction[CliParser]) -> None:
    p = sub.add_parser("export", allow_abbrev=False,
                       help="every person once, with distinct ids and properties (HogQL)")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--output", metavar="PATH", help="write here instead of standard output "
                   "(needed for --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the export in --output after its last whole line")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    p.add_argument("--api-queries-plan", action="store_true",
                   help="your organisation has PostHog's API queries plan: pace HogQL at "
                   "240 a minute and 2400 an hour instead of 120 an hour")
    p.add_argument("--page-size", default=C.KEYSET_PAGE_SIZE, metavar="N",
                   type=bounded_int(C.HOGQL_MAX_ROWS, "PostHog returns at most 50,000 rows"),
                   help=f"persons per HogQL query (default {C.KEYSET_PAGE_SIZE:,}; at most 50,000)")


def _line_start(f: IO[bytes], end: int) -> int:
    """Where the line ending just before ``end`` begins (the byte after the previous newline)."""
    while end > 0:
        step = min(65536, end)
        f.seek(end - step)
        at = f.read(step).rfind(b"\n")
        if at >= 0:
            return end - step + at + 1
        end -= step
    return 0


def last_exported_id(path: Path, fmt: str) -> str | None:
    """Cut a trailing partial line off ``path`` and return the id of its last whole record
    (``None``: nothing exported yet). Raises ``UsageError`` if the file is not such an export."""
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        end = _line_start(f, size)  # everything after the last newline is a line a crash cut
        if end != size:
            f.truncate(end)
        if end == 0:
            return None
        start = _line_start(f, end - 1)
        f.seek(start)
        line = f.read(end - start).decode("utf-8").rstrip("\n")
    try:
        if fmt == "jsonl":
            key = msgspec.json.decode(line)["id"]
        else:
            row = next(csv.reader([line]))
            if row == list(CSV_FIELDS):
                return None  # only the header was written
            if len(row) != len(CSV_FIELDS):
                raise IndexError(len(row))
            key = row[0]
    except (msgspec.DecodeError, KeyError, TypeError, StopIteration, IndexError, csv.Error):
        raise UsageError(f"{path} does not end with a {fmt} person record: is it an export "
                         "made with this --format?") from None
    if not isinstance(key, str) or not key:
        raise UsageError(f"the last record of {path} has no person id")
    return key


class _Writer:
    """One record per line; CSV cells that hold JSON (distinct ids, properties)."""

    def __init__(self, out: IO[str], fmt: str, header: bool) -> None:
        self.out, self.fmt = out, fmt
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        if fmt == "csv" and header:
            self._csv.writerow(CSV_FIELDS)
            self.out.write(self._buffer.getvalue())
            self._buffer.seek(0)
            self._buffer.truncate()

    def page(self, persons: list[ExportedPerson]) -> None:
        if self.fmt == "jsonl":
            encode = msgspec.json.encode
            self.out.write("".join(encode(p).decode() + "\n" for p in persons))
            return
        encode = msgspec.json.encode
        for p in persons:
            self._csv.writerow((p.id, encode(p.distinct_ids).decode(), encode(p.properties).decode(),
                                p.created_at or "",
                                "" if p.is_identified is None else str(p.is_identified).lower()))
        self.out.write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()


def _resume_command(args: argparse.Namespace) -> str:
    """The command that continues this export, as a deletion job's hint is built (see
    ``_hint``): the host and the project named also when they came from the environment, the
    pacing plan kept, every word quoted to survive copy-paste; never the key."""
    project = resolve_project_id(args.project_id)
    words = [*host_words(args), *(option("--project-id", project) if project else []),
             "persons", "export", "--format", args.format, *option("--output", args.output),
             "--resume"]
    if args.page_size != C.KEYSET_PAGE_SIZE:
        words += ["--page-size", str(args.page_size)]
    if args.api_queries_plan:
        words.append("--api-queries-plan")
    return "posthog-async " + shell_join(words)


def _open(args: argparse.Namespace) -> tuple[IO[str], str | None, bool]:
    """The output stream, the id to resume after, and whether a CSV header is still due."""
    if args.output is None:
        if args.resume:
            raise UsageError("--resume needs --output PATH (standard output cannot be resumed)")
        return sys.stdout, None, True
    path = Path(args.output)
    exists = path.exists() and path.stat().st_size > 0
    if args.resume:
        if not path.exists():
            raise UsageError(f"--resume: {path} does not exist (nothing to resume)")
        after = last_exported_id(path, args.format)
        header = path.stat().st_size == 0
        return path.open("a", encoding="utf-8", newline=""), after, header
    if exists and not args.overwrite:
        raise UsageError(f"{path} is not empty: pass --resume to continue that export, or "
                         "--overwrite to start again")
    return path.open("w", encoding="utf-8", newline=""), None, True


class _Stop:
    """The run's stop request, and the waits it cuts short: the export's own wait between pages
    (a spent window) and, being a :class:`WaitStop`, a page's query waiting in the transport
    for the client's HogQL pacing (one query every 30 s by default) or a retry."""

    def __init__(self) -> None:
        self.requested = WaitStop()
        self.waiting = anyio.CancelScope()  # cancelled: stop now, in a rate-limit wait
        self.resume_at: float | None = None  # loop time the current wait ends

    def in_wait(self) -> bool:
        return self.resume_at is not None and asyncio.get_running_loop().time() < self.resume_at


async def run_export(args: argparse.Namespace, client: AsyncPostHog) -> int:
    out, after, header = _open(args)
    stop = _Stop()
    task = asyncio.current_task()

    def on_signal(sig: int) -> None:
        if stop.requested.is_set() and task is not None:  # a second Ctrl-C or SIGTERM
            task.cancel()
        stop.requested.set()  # and a page's query still waiting to be sent is not sent
        if stop.in_wait():  # nothing of the next page was read: stop now
            stop.waiting.cancel()
            return
        name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
        print(f"\n{name}: stopping after this page ({name} again to stop now)...", file=sys.stderr)

    token = STOP.set(stop.requested)  # the export's calls (and their tasks) inherit it
    try:
        with on_stop_signals(on_signal):
            return await _export(args, client, out, after, header, stop)
    except asyncio.CancelledError:
        print(f"interrupted; resume with: {_resume_command(args)}" if args.output
              else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        STOP.reset(token)
        if out is not sys.stdout:
            out.close()


async def _export(args: argparse.Namespace, client: AsyncPostHog, out: IO[str], after: str | None,
                  header: bool, stop: _Stop) -> int:
    writer = _Writer(out, args.format, header)
    loop = asyncio.get_running_loop()

    def on_wait(seconds: float, error: RateLimitError) -> None:
        stop.resume_at = loop.time() + seconds
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + seconds))
        why = (f"PostHog's limit on HogQL queries ({_pacing(client, short=True)}) is spent"
               if isinstance(error, RateLimitWaitError)
               else "PostHog refuses more HogQL queries for now (429)")
        print(f"\n{why}: waiting {format_duration(seconds)}, resuming at {until} (Ctrl-C stops "
              "now; the export resumes later with --resume)", file=sys.stderr, flush=True)
        if stop.requested.is_set():
            stop.waiting.cancel()

    export = client.persons.export(page_size=args.page_size, after=after, on_wait=on_wait)
    started, done = time.monotonic(), 0
    where = f" after {after}" if after else ""
    print(f"exporting persons{where}, {args.page_size:,} a HogQL query; {_pacing(client)}",
          file=sys.stderr)
    resume = f"; resume with: {_resume_command(args)}" if args.output else ""
    abandoned = False  # stopped while the next page's query waited to be sent
    try:
        with stop.waiting:
            async for page in export.pages():
                stop.resume_at = None
                writer.page(page)
                out.flush()
                if out is not sys.stdout:
                    os.fsync(out.fileno())
                done += len(page)
                _progress(done, None, started)
                if stop.requested.is_set():
                    print(f"\nstopped after {done:,} persons{resume}", file=sys.stderr)
                    return EXIT_INTERRUPTED
    except BrokenPipeError:  # standard output's reader left (| head): the CLI ends quietly
        raise
    except WaitAbandonedError:
        abandoned = True
    except Exception as error:
        out.flush()
        print(redact(f"\nerror: export failed after {done:,} persons: {type(error).__name__}: "
                     f"{error}{resume}"), file=sys.stderr)
        return EXIT_INCOMPLETE
    if abandoned or stop.waiting.cancelled_caught:
        print(f"\nstopped after {done:,} persons, while waiting for the rate limit{resume}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"\n{done:,} persons exported" + (f" to {args.output}" if args.output else ""),
          file=sys.stderr)
    return EXIT_OK


def _pacing(client: AsyncPostHog, *, short: bool = False) -> str:
    """What paces the export: PostHog's HogQL budget, as this client counts it."""
    limits = getattr(client.rate_limiter, "limits", None)
    windows = limits.windows("hogql") if isinstance(limits, RateLimits) else ()
    if not windows:
        return "not paced here" if short else "HogQL queries unpaced"
    shown = " and ".join(f"{w.limit:,} per {format_duration(w.period)}" for w in windows)
    return shown if short else f"HogQL queries paced to PostHog's limit ({shown}), spread evenly"


def _progress(done: int, _total: int | None, started: float) -> None:
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"exported {done:,} persons | {rate:,.0f} persons/s | {format_duration(elapsed)}"
    end = "\r" if sys.stderr.isatty() else "\n"
    print(text.ljust(90), end=end, file=sys.stderr, flush=True)
