"""``posthog-async persons delete``: the resumable GDPR deletion job from the command line.

Everything that can be checked is checked before the first request: arguments, input files,
the journal (its folder, its state, its lock) and the report path. Ctrl-C or SIGTERM stops after
the chunks in flight; a second Ctrl-C aborts at once. Either way the journal is intact and the
command to resume is printed, without the API key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from .. import AsyncPostHog
from ..jobs import (
    DeletionJob,
    InputSpec,
    JobInterrupted,
    JobProgress,
    JobReport,
    check_report_path,
)
from ._progress import ProgressLine, format_duration

__all__ = ["add_delete_parser", "run_delete", "validate_delete_args", "EXIT_OK",
           "EXIT_INCOMPLETE", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_SECRET_FLAGS = ("--api-key",)
_INPUT_FLAGS = ("--distinct-ids-file", "--ids-file")


class UsageError(ValueError):
    """A bad argument or input, found before anything was sent (exit status 2)."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _chunk_size(text: str) -> int:
    value = _positive(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"PostHog takes at most 1000 ids a call, got {value}")
    return value


def add_delete_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "delete", help="delete persons listed in files (resumable, journaled, with a proof report)",
        description="Delete every person named in the input files, in chunks of at most 1000, "
        "under PostHog's rate limits. Progress is journaled in SQLite so an interrupted run can be "
        "resumed with --resume; the report names every id's outcome.")
    src = p.add_argument_group("input (a path, or - for standard input)")
    src.add_argument("--distinct-ids-file", metavar="PATH", help="distinct ids")
    src.add_argument("--ids-file", metavar="PATH", help="person UUIDs")
    fmt = src.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="inputs are CSV with a header (needs --column)")
    fmt.add_argument("--jsonl", action="store_true", help="inputs are JSON Lines (needs --field)")
    src.add_argument("--column", help="the CSV column that holds the ids")
    src.add_argument("--field", help="the JSON Lines field that holds the ids")
    what = p.add_argument_group("what to delete")
    what.add_argument("--delete-events", action="store_true", help="also queue their events for deletion")
    what.add_argument("--delete-recordings", action="store_true", help="also delete their recordings")
    what.add_argument("--keep-person", action="store_true",
                      help="keep the persons; delete only events/recordings")
    what.add_argument("--dry-run", action="store_true", help="look the ids up; delete nothing")
    what.add_argument("--resolve", action=argparse.BooleanOptionalAction, default=True,
                      help="look each chunk up first so every id's outcome is exact (default; "
                      "--no-resolve is faster but names outcomes only per chunk)")
    run = p.add_argument_group("running")
    run.add_argument("--journal", metavar="PATH", help="journal file (default: beside the input)")
    run.add_argument("--resume", action="store_true", help="continue the job in an existing journal")
    run.add_argument("--retry-failed", action="store_true", help="with --resume: re-send failed chunks")
    run.add_argument("--concurrency", type=_positive, default=None, help="chunks in flight (default 8)")
    run.add_argument("--chunk-size", type=_chunk_size, default=1000, help="ids per call, at most 1000")
    run.add_argument("--patience", type=_positive, default=600, metavar="SECONDS",
                     help="how long a chunk retries server errors before it is reported failed")
    out = p.add_argument_group("report")
    out.add_argument("--report", metavar="PATH",
                     help="report path: .json for totals, .csv for every id (default: beside the journal)")
    out.add_argument("--per-id", action="store_true", help="include every id's outcome in a JSON report")
    out.add_argument("--deletion-status", action="store_true",
                     help="also count PostHog's event-deletion status rows for this job's persons")


def _inputs(args: argparse.Namespace) -> list[InputSpec]:
    fmt = "csv" if args.csv else "jsonl" if args.jsonl else "lines"
    if args.column and fmt != "csv":
        raise UsageError("--column goes with --csv")
    if args.field and fmt != "jsonl":
        raise UsageError("--field goes with --jsonl")
    name = args.column if fmt == "csv" else args.field if fmt == "jsonl" else None
    if fmt != "lines" and not name:
        raise UsageError(f"--{fmt} needs --{'column' if fmt == 'csv' else 'field'} NAME")
    specs = [InputSpec(kind, path, fmt, name) for kind, path in  # type: ignore[arg-type]
             (("distinct_ids", args.distinct_ids_file), ("ids", args.ids_file)) if path]
    if not specs and not (args.resume and args.journal):
        raise UsageError("give --distinct-ids-file PATH and/or --ids-file PATH (- reads standard "
                         "input), or --resume --journal PATH to continue a job from its journal")
    if sum(spec.is_stdin for spec in specs) > 1:
        raise UsageError("only one input can be standard input")
    for spec in specs:
        path = Path(spec.path)
        if spec.is_stdin:
            continue
        if path.is_dir():
            raise UsageError(f"{spec.path} is a directory, not an input file")
        if not os.access(path, os.R_OK):
            raise UsageError(f"input file not found or not readable: {spec.path}")
    return specs


def _journal_loaded(path: Path) -> bool | None:
    """``None``: no journal; ``False``: one that never finished loading; ``True``: loaded."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'loaded'").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise UsageError(f"{path} exists but is not a journal ({exc})") from None
    return row is not None and row[0] == "true"


def validate_delete_args(args: argparse.Namespace) -> tuple[list[InputSpec], Path, Path]:
    """Every check that needs no request: inputs, journal, report path. Raises :class:`UsageError`."""
    specs = _inputs(args)
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed only goes with --resume")
    if args.keep_person and not (args.delete_events or args.delete_recordings) and not args.dry_run:
        raise UsageError("--keep-person without --delete-events or --delete-recordings deletes nothing")
    if args.journal:
        journal = Path(args.journal)
    elif all(spec.is_stdin for spec in specs):
        raise UsageError("reading standard input needs --journal PATH to record progress in")
    else:
        first = next(spec for spec in specs if not spec.is_stdin)
        journal = Path(first.path + (".dry-run.sqlite" if args.dry_run else ".journal.sqlite"))
    folder = journal.parent if str(journal.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write the journal in {folder}: the folder is missing or not writable")
    state = _journal_loaded(journal)
    if state and not args.resume:
        raise UsageError(f"journal {journal} holds an earlier run: add --resume to continue it, "
                         "or pass --journal NEW to start over")
    if args.resume and state is None:
        raise UsageError(f"--resume, but there is no journal at {journal}")
    if any(spec.is_stdin for spec in specs) and state:
        raise UsageError(f"journal {journal} is loaded: resume it without the standard-input "
                         "option (--resume --journal PATH)")
    report = Path(args.report) if args.report else journal.with_name(journal.name + ".report.json")
    try:
        check_report_path(report)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return specs, journal, report


def resume_command(argv: list[str], journal: Path) -> str:
    """The command to continue this job: the same arguments, never the key, plus --resume.

    An input read from standard input is left out: such a job resumes from its journal alone.
    """
    out: list[str] = []
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in _SECRET_FLAGS or (arg in _INPUT_FLAGS and argv[index + 1:index + 2] == ["-"]):
            skip = True
            continue
        if any(arg.startswith(flag + "=") for flag in _SECRET_FLAGS) or arg == "--resume":
            continue
        out.append(arg)
    if "--journal" not in out and not any(a.startswith("--journal=") for a in out):
        out += ["--journal", str(journal)]
    return "posthog-async " + shlex.join([*out, "--resume"])


async def run_delete(args: argparse.Namespace, client: AsyncPostHog, argv: list[str]) -> int:
    specs, journal_path, report_path = validate_delete_args(args)
    progress_line = ProgressLine("dry run" if args.dry_run else "deleting")

    def on_progress(p: JobProgress) -> None:
        waiting = None if p.waiting_until is None else max(0.0, p.waiting_until - time.time())
        progress_line.update(p.ids_finished, p.ids_total, failed=p.failed_chunks,
                             note=None if waiting is None else f"waiting {format_duration(waiting)}")

    def on_notice(message: str) -> None:
        progress_line.interrupt(message)

    job = DeletionJob(
        client, inputs=specs, journal=journal_path, delete_events=args.delete_events,
        delete_recordings=args.delete_recordings, keep_person=args.keep_person,
        dry_run=args.dry_run, resolve=args.resolve, chunk_size=args.chunk_size,
        concurrency=args.concurrency, retry_failed=args.retry_failed, patience=args.patience,
        check_deletion_status=args.deletion_status, on_progress=on_progress, on_notice=on_notice,
    )
    task = asyncio.ensure_future(job.run())
    signals = _Signals(job, task, progress_line)
    try:
        await asyncio.wait([task])
    finally:
        signals.remove()
        progress_line.close()
    if task.cancelled():
        report = await job.report()
    else:
        error = task.exception()
        if isinstance(error, JobInterrupted):
            print(f"{error}; run the same command again (no --resume needed)", file=sys.stderr)
            return EXIT_INTERRUPTED
        if error is not None:
            raise error
        report = task.result()
    report.write(report_path, per_id=args.per_id)
    print_summary(report, report_path)
    if report.totals["pending"] and (report.interrupted or report.stopped or task.cancelled()):
        print(f"{report.totals['pending']:,} ids are not settled yet. Resume with:\n  "
              f"{resume_command(argv, journal_path)}\n(keep the API key in "
              "POSTHOG_PERSONAL_API_KEY; it is never written to the journal or the report)",
              file=sys.stderr)
        return EXIT_INCOMPLETE if report.stopped else EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_INCOMPLETE


class _Signals:
    """First Ctrl-C or SIGTERM: stop after the chunks in flight. Second Ctrl-C: abort now."""

    def __init__(self, job: DeletionJob, task: asyncio.Future[Any], progress: ProgressLine) -> None:
        self.job, self.task, self.progress = job, task, progress
        self.loop = asyncio.get_running_loop()
        self.installed: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.loop.add_signal_handler(sig, self.handle, sig)
                self.installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
                pass

    def handle(self, sig: int) -> None:
        if not self.job.stopping:
            name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
            self.progress.interrupt(f"{name}: stopping after the chunks in flight "
                                    "(Ctrl-C again to abort now)...")
            self.job.request_stop()
        elif sig == signal.SIGINT:
            self.progress.interrupt("aborting: chunks in flight will be checked on resume")
            self.task.cancel()

    def remove(self) -> None:
        for sig in self.installed:
            self.loop.remove_signal_handler(sig)


def print_summary(report: JobReport, report_path: Path) -> None:
    t = report.totals
    lines = [
        f"requested {t['requested']:,}  (blank {t['blank']:,}, duplicates {t['duplicates']:,}, "
        f"invalid {t['invalid']:,}) -> unique {t['unique']:,}",
        "ids: " + ", ".join(f"{name.replace('_', ' ')} {t[name]:,}" for name in
                            ("deleted", "queued", "kept", "found", "not_found", "unresolved",
                             "failed", "pending") if t[name] or name in ("deleted", "not_found")),
        f"persons found {t['persons_found']:,}, deleted {t['persons_deleted']:,}, queued "
        f"{t['persons_queued_for_deletion']:,}; {t['delete_calls']:,} delete calls, "
        f"{t['lost_answers']:,} lost answers",
    ]
    if t["events_queued_for_persons"]:
        lines.append(f"events queued for deletion for {t['events_queued_for_persons']:,} persons")
    exact = report.exactness
    lines.append("exact per id: " + ("yes" if exact["per_id_outcomes_exact"] else "no")
                 + "; person totals exact: " + ("yes" if exact["person_totals_exact"] else "no"))
    if report.stopped:
        lines.append(f"stopped: {report.stopped}")
    for chunk in report.failed_chunks[:5]:
        lines.append(f"  chunk {chunk['chunk']} ({chunk['size']} ids) failed: {chunk['error']}")
    for reject in report.rejected[:5]:
        where = f"line {reject['line']}: " if reject["line"] is not None else ""
        lines.append(f"  invalid {reject['value']!r:.60}: {where}{reject['reason']}")
    lines.append(f"report: {report_path}   journal: {report.journal}")
    print("\n".join(lines), file=sys.stderr)
