"""``posthog-async persons delete``: the resumable GDPR deletion job from the command line.

Everything that can be checked is checked before the first request: arguments, input files,
the journal (its folder, its state, its lock) and the report path. Ctrl-C or SIGTERM stops after
the chunks in flight; a second Ctrl-C aborts at once. Either way the journal is intact, the
command to resume is printed (rebuilt from the parsed arguments: no key, no Redis URL) and the
exit status is 130. A report that cannot be written at the end is an error (exit status 1) with
the summary on stdout: the journal still holds every outcome.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

from .. import AsyncPostHog
from ..jobs import (
    DeletionJob,
    InputSpec,
    JobInterrupted,
    JobProgress,
    JobReport,
)
from ..jobs._lock import JobLock
from ._args import BooleanOption, CliParser, UsageError, bounded_int, positive_int, redact
from ._hint import hint_notes, job_command, verify_command
from ._job_args import (
    add_input_arguments,
    add_project_arguments,
    check_journal_target,
    check_report_target,
    input_specs,
    job_projects,
)
from ._progress import ProgressLine, format_duration
from ._signals import run_with_signals
from ._summary import print_summary

__all__ = ["add_delete_parser", "run_delete", "validate_delete_args", "journal_loaded",
           "UsageError", "EXIT_OK", "EXIT_INCOMPLETE", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_delete_parser(sub: argparse._SubParsersAction[CliParser]) -> None:
    p = sub.add_parser(
        "delete", help="delete persons listed in files (resumable, journaled, with a proof report)",
        description="Delete every person named in the input files, in chunks of at most 1000, "
        "under PostHog's rate limits. Progress is journaled in SQLite so an interrupted run can be "
        "resumed with --resume; the report names every id's outcome.", allow_abbrev=False)
    add_input_arguments(p)
    add_project_arguments(p)
    what = p.add_argument_group("what to delete")
    what.add_argument("--delete-events", action="store_true", help="also queue their events for deletion")
    what.add_argument("--delete-recordings", action="store_true", help="also delete their recordings")
    what.add_argument("--keep-person", action="store_true",
                      help="keep the persons; delete only events/recordings")
    what.add_argument("--dry-run", action="store_true", help="look the ids up; delete nothing")
    what.add_argument("--resolve", action=BooleanOption, default=True,
                      help="look each chunk up first so every id's outcome is exact (default; "
                      "--no-resolve is faster but names outcomes only per chunk)")
    run = p.add_argument_group("running")
    run.add_argument("--journal", metavar="PATH", help="journal file (default: beside the input)")
    run.add_argument("--resume", action="store_true", help="continue the job in an existing journal")
    run.add_argument("--retry-failed", action="store_true", help="with --resume: re-send failed chunks")
    run.add_argument("--concurrency", type=positive_int, default=None, help="chunks in flight (default 8)")
    run.add_argument("--chunk-size", default=1000, help="ids per call, at most 1000",
                     type=bounded_int(1000, "PostHog takes at most 1000 ids a call"))
    run.add_argument("--patience", type=positive_int, default=600, metavar="SECONDS",
                     help="how long a chunk retries server errors before it is reported failed")
    out = p.add_argument_group("report")
    out.add_argument("--report", metavar="PATH",
                     help="report path: .json for totals, .csv for every id (default: beside the journal)")
    out.add_argument("--per-id", action="store_true", help="include every id's outcome in a JSON report")
    out.add_argument("--deletion-status", action="store_true",
                     help="also count PostHog's event-deletion status rows for this job's persons")


def journal_loaded(path: Path) -> bool | None:
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
    specs = input_specs(args, journal_alone=bool(args.resume and args.journal))
    job_projects(args)  # --all-projects, --exclude-project: checked before anything is created
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed only goes with --resume")
    if args.dry_run and not args.resolve:
        raise UsageError("--dry-run looks every id up; --no-resolve does not go with it")
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
    check_journal_target(journal)
    if journal.exists():  # another run's journal is not read: say whose it is (JournalBusy)
        JobLock(journal).release()
    state = journal_loaded(journal)
    if state and not args.resume:
        raise UsageError(f"journal {journal} holds an earlier run: add --resume to continue it, "
                         "or pass --journal NEW to start over")
    if args.resume and state is None:
        raise UsageError(f"--resume, but there is no journal at {journal}")
    if any(spec.is_stdin for spec in specs) and state:
        raise UsageError(f"journal {journal} is loaded: resume it without the standard-input "
                         "option (--resume --journal PATH)")
    report = Path(args.report) if args.report else journal.with_name(journal.name + ".report.json")
    check_report_target(report, specs, journal)
    return specs, journal, report


async def run_delete(args: argparse.Namespace, client: AsyncPostHog) -> int:
    specs, journal_path, report_path = validate_delete_args(args)
    progress_line = ProgressLine("dry run" if args.dry_run else "deleting")

    def on_progress(p: JobProgress) -> None:
        waiting = None if p.waiting_until is None else max(0.0, p.waiting_until - time.time())
        progress_line.update(p.ids_finished, p.ids_total, failed=p.failed_chunks,
                             note=None if waiting is None else f"waiting {format_duration(waiting)}")

    def on_notice(message: str) -> None:
        progress_line.interrupt(message)

    projects, excluded = job_projects(args, resume=args.resume)
    job = DeletionJob(
        client, inputs=specs, journal=journal_path, projects=projects, exclude_projects=excluded,
        delete_events=args.delete_events,
        delete_recordings=args.delete_recordings, keep_person=args.keep_person,
        dry_run=args.dry_run, resolve=args.resolve, chunk_size=args.chunk_size,
        concurrency=args.concurrency, retry_failed=args.retry_failed, patience=args.patience,
        check_deletion_status=args.deletion_status, on_progress=on_progress, on_notice=on_notice,
    )
    task, received = await run_with_signals(job, job.run(), progress_line)
    interrupted = received or task.cancelled()
    error = None if task.cancelled() else task.exception()
    if isinstance(error, JobInterrupted):
        interrupted, error = True, None
    if error is not None:
        if not interrupted:
            raise error
        print(redact(f"error: {type(error).__name__}: {error}"), file=sys.stderr)
    if interrupted and not journal_loaded(journal_path):
        _print_run_again(args, journal_path)
        return EXIT_INTERRUPTED
    report = task.result() if error is None and not task.cancelled() else await job.report()
    write_error = _write_report(report, report_path, per_id=args.per_id)
    print_summary(report, report_path, stream=sys.stdout if write_error else sys.stderr,
                  written=write_error is None)
    if write_error is not None:
        print(f"error: could not write the report to {report_path}: {write_error}. The journal "
              f"{journal_path} keeps every outcome: free the space or fix the path, then write the "
              "report again by resuming the job:", file=sys.stderr)
    failed = report.totals["failed"]  # a plain --resume leaves failed chunks alone
    chosen = report.selection or None  # the journal's projects, whatever this run was given
    if interrupted or write_error is not None or (report.totals["pending"] and report.stopped):
        if report.totals["pending"]:
            print(f"{report.totals['pending']:,} ids are not settled yet"
                  + (f" and {failed:,} failed" if failed else "") + ". Resume with:",
                  file=sys.stderr)
        elif write_error is None:
            print("interrupted with every id settled (a resume only writes the report again). "
                  "Resume with:", file=sys.stderr)
        print(f"  {job_command(args, journal_path, retry_failed=bool(failed), selection=chosen)}",
              file=sys.stderr)
        _print_notes(args)
    elif failed:
        print(f"{failed:,} ids failed (each chunk's error is in the report). Once the cause is "
              "fixed, send them again with:", file=sys.stderr)
        print(f"  {job_command(args, journal_path, retry_failed=True, selection=chosen)}", file=sys.stderr)
        _print_notes(args)
    elif report.not_covered:
        refused = [g for g in report.not_covered if g.get("status_code") is not None]
        if refused:
            print("not covered: the key cannot reach "
                  + ", ".join(f"project {g['id']}" if g.get("id") is not None
                              else f"organization {g.get('organization')}" for g in refused)
                  + ". Once it can, resume with:", file=sys.stderr)
            print(f"  {job_command(args, journal_path, selection=chosen)}", file=sys.stderr)
            _print_notes(args)
        for gap in report.not_covered:  # outside the job: no resume covers them
            if gap.get("status_code") is None:
                what = (f"project {gap['id']}" if gap.get("id") is not None
                        else f"organization {gap.get('name') or gap.get('organization')}")
                print(f"not covered: {what}: {gap.get('message')}", file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    if write_error is not None:
        return EXIT_INCOMPLETE
    if args.keep_person and not args.delete_events and not args.dry_run:
        print("(recording deletions cannot be verified: PostHog reports no status for them, and "
              "the persons were kept on purpose)", file=sys.stderr)
    elif not args.dry_run and report.totals["deleted"] + report.totals["queued"] + \
            report.totals["kept"] + report.totals["unresolved"]:
        proves = ("persons gone" if not args.keep_person else "") + (
            (", " if not args.keep_person else "") + "events deleted by PostHog's weekly batch"
            if args.delete_events else "")
        print(f"prove it later ({proves}) with:\n"
              f"  {verify_command(args, journal_path, chosen, from_job=True)}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_INCOMPLETE


def _write_report(report: JobReport, path: Path, *, per_id: bool) -> str | None:
    """Write the report; ``None`` once written, else why not (the OS error, or the journal's)."""
    try:
        report.write(path, per_id=per_id)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    except sqlite3.Error as exc:
        return f"reading the journal failed ({type(exc).__name__}: {exc})"
    return None


def _print_run_again(args: argparse.Namespace, journal: Path) -> None:
    print("stopped while loading the input: nothing was sent. Run the job again (no --resume "
          f"needed):\n  {job_command(args, journal, resume=False)}", file=sys.stderr)
    _print_notes(args, resume=False)


def _print_notes(args: argparse.Namespace, *, resume: bool = True) -> None:
    print("(" + "; ".join(hint_notes(args, resume=resume)) + ")", file=sys.stderr)
