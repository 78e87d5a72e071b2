"""``posthog-async persons delete``: the resumable GDPR deletion job from the command line."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from pathlib import Path

from .._client import AsyncPostHog
from ..jobs import DeletionJob, JobProgress, JobReport
from ..jobs._journal import Journal
from ._progress import ProgressLine

__all__ = ["add_delete_parser", "run_delete", "print_summary"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_delete_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("delete", help="delete persons listed in files (resumable, journaled)",
                       description="Delete every person named in the input files, in chunks of "
                       "at most 1000, under PostHog's rate limits. Progress is journaled in SQLite "
                       "so an interrupted run can be resumed with --resume.")
    p.add_argument("--distinct-ids-file", type=Path, help="one distinct id per line")
    p.add_argument("--ids-file", type=Path, help="one person UUID per line")
    p.add_argument("--delete-events", action="store_true", help="also queue their events for deletion")
    p.add_argument("--delete-recordings", action="store_true", help="also delete their recordings")
    p.add_argument("--keep-person", action="store_true",
                   help="keep the persons; delete only events/recordings")
    p.add_argument("--dry-run", action="store_true", help="look the ids up; delete nothing")
    p.add_argument("--resolve", action="store_true",
                   help="look each chunk up first so every id's outcome is exact (slower)")
    p.add_argument("--journal", type=Path, help="journal file (default: beside the input)")
    p.add_argument("--resume", action="store_true", help="continue the job in an existing journal")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: re-send failed chunks")
    p.add_argument("--concurrency", type=int, default=None, help="chunks in flight (default 8)")
    p.add_argument("--chunk-size", type=int, default=1000, help="ids per call, at most 1000")
    p.add_argument("--report", type=Path, help="report path: .json for totals, .csv for per id")
    p.add_argument("--per-id", action="store_true", help="include every id's outcome in the JSON report")


def _journal_state(path: Path) -> bool:
    if not path.exists():
        return False
    journal = Journal(path)
    try:
        return journal.loaded
    finally:
        journal.close()


async def run_delete(args: argparse.Namespace, client: AsyncPostHog, argv: list[str]) -> int:
    if not args.distinct_ids_file and not args.ids_file:
        print("error: give --distinct-ids-file FILE and/or --ids-file FILE", file=sys.stderr)
        return EXIT_USAGE
    for path in (args.distinct_ids_file, args.ids_file):
        if path is not None and not path.is_file():
            print(f"error: input file not found: {path}", file=sys.stderr)
            return EXIT_USAGE
    progress_line = ProgressLine("dry run" if args.dry_run else "deleting")

    def on_progress(p: JobProgress) -> None:
        progress_line.update(p.ids_finished, p.ids_total, failed=p.failed_chunks)

    job = DeletionJob(
        client, distinct_ids=args.distinct_ids_file, ids=args.ids_file, journal=args.journal,
        delete_events=args.delete_events, delete_recordings=args.delete_recordings,
        keep_person=args.keep_person, dry_run=args.dry_run, resolve=args.resolve,
        chunk_size=args.chunk_size, concurrency=args.concurrency,
        retry_failed=args.retry_failed, on_progress=on_progress,
    )
    exists = _journal_state(job.journal_path)
    if exists and not args.resume:
        print(f"error: journal {job.journal_path} holds an earlier run: add --resume to continue "
              "it, or pass --journal NEW to start over", file=sys.stderr)
        return EXIT_USAGE
    if args.resume and not exists:
        print(f"error: --resume but no journal at {job.journal_path}", file=sys.stderr)
        return EXIT_USAGE

    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        if job.stopped:
            raise KeyboardInterrupt
        print("\nstopping after the chunks in flight (Ctrl-C again to abort)...", file=sys.stderr)
        job.request_stop()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, non-main thread
        pass
    try:
        report = await job.run()
    finally:
        progress_line.close()
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    report_path = args.report or job.journal_path.with_suffix(".report.json")
    report.write(report_path, per_id=args.per_id)
    print_summary(report, report_path)
    if report.interrupted and not report.complete:
        resume = [a for a in argv if a != "--resume"] + ["--resume"]
        if "--journal" not in resume:
            resume += ["--journal", str(job.journal_path)]
        print(f"interrupted: {report.totals['pending']:,} ids not sent yet. Resume with:\n  "
              f"posthog-async {shlex.join(resume)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_INCOMPLETE


def print_summary(report: JobReport, report_path: Path) -> None:
    t = report.totals
    lines = [
        f"requested {t['requested']:,}  (blank {t['blank']:,}, duplicates {t['duplicates']:,}, "
        f"invalid {t['invalid']:,}) -> unique {t['unique']:,}",
        f"found {t['found']:,}  deleted {t['deleted']:,}  not found {t['not_found']:,}"
        + ("" if report.not_found_is_exact else " (from server counts)"),
        f"failed {t['failed']:,}  pending {t['pending']:,}  requests {t['requests_sent']:,}",
    ]
    if t["events_queued_for_deletion"]:
        lines.append(f"events queued for deletion for {t['events_queued_for_deletion']:,} persons")
    for chunk in report.failed_chunks[:5]:
        lines.append(f"  chunk {chunk['chunk']} ({chunk['size']} ids) failed: {chunk['error']}")
    for reject in report.rejected[:5]:
        lines.append(f"  rejected {reject['value']!r}: {reject['reason']}")
    lines.append(f"report: {report_path}   journal: {report.journal}")
    print("\n".join(lines), file=sys.stderr)
