"""``posthog-async persons verify``: prove that a deletion job's work was done at PostHog.

It takes the job's own input or journal arguments (like ``persons delete --resume``) and checks,
for every person the job deleted or queued, that lookups no longer find them, and, where the job
asked for ``--delete-events``, that PostHog's ``deletion_status`` row is ``completed``. Every
check is journaled: a verification stopped (Ctrl-C, SIGTERM) or killed resumes where it was.
``--wait`` checks again every ``--interval`` while work is pending at PostHog.

Every run looks every person up again, even those an earlier run proved gone (a person may
come back: under the same uuid, or as a new person under an erased distinct id), and looks up
the erased distinct ids themselves.

Exit status: 0 everything the job did is verified; 3 work is still pending at PostHog (the
summary gives the counts and when PostHog's next batch runs); 1 something is wrong (a person
found again, a queued deletion never carried out, an erased distinct id that names another
person now, an event-deletion row missing after the batch ran, a project not covered or created
since an --all-projects job started, a job that did not finish, a check that failed); 4 nothing
the job did can be verified (it kept its persons and deleted only recordings: PostHog reports no
status for recording deletions); 2 bad usage; 130 interrupted.

The report goes to ``--report`` (default: ``<journal>.verify.json``, beside the job's own
``<journal>.report.json``, which verify never overwrites unless told to). It keeps the job's
``started_at``/``finished_at`` (the verification's own times are in its ``verification``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .. import AsyncPostHog
from .. import _constants as C
from ..jobs import DeletionJob, EventBatchSchedule, InputSpec, VerifyProgress
from ..jobs._lock import JobLock
from ._args import CliParser, UsageError, positive_int
from ._delete import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, journal_loaded
from ._hint import verify_command
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
from ._summary import print_verification

__all__ = ["add_verify_parser", "run_verify", "EXIT_PENDING", "EXIT_UNVERIFIABLE"]

#: Work is still pending at PostHog (queued deletions, event deletions awaiting its batch).
EXIT_PENDING = 3
#: Nothing the job did is verifiable (persons kept, recordings only): never "verified".
EXIT_UNVERIFIABLE = 4
_EXIT = {"verified": EXIT_OK, "pending": EXIT_PENDING, "failed": EXIT_INCOMPLETE,
         "unverifiable": EXIT_UNVERIFIABLE}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def seconds_or_zero(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, got {text}")
    return value


def until_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 time (without a zone: UTC) or a duration from now
    (``90m``, ``12h``, ``8d``)."""
    duration = _DURATION.match(text.strip().lower())
    if duration:
        seconds = float(duration.group(1)) * _UNITS[duration.group(2)]
        return datetime.now(timezone.utc) + timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time (2026-12-13T09:00Z) nor a duration (90m, 12h, 8d): {text!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def batch_schedule(text: str) -> EventBatchSchedule:
    try:
        return EventBatchSchedule.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_verify_parser(sub: argparse._SubParsersAction[CliParser]) -> None:
    p = sub.add_parser(
        "verify", help="prove a deletion job's work was done at PostHog (persons gone, events "
        "deleted)", allow_abbrev=False,
        description="Check, for every person a deletion job deleted or queued, that PostHog no "
        "longer finds them and (with --delete-events) that PostHog reports their events deleted. "
        "Give the job's own input or --journal. Every run looks every person up again. Exit "
        "status: 0 verified, 3 pending at PostHog, 1 something wrong, 4 nothing verifiable "
        "(persons kept, recordings only: PostHog reports no status for recording deletions).")
    add_input_arguments(p)
    add_project_arguments(p)
    run = p.add_argument_group("running")
    run.add_argument("--journal", metavar="PATH", help="the job's journal (default: beside the input)")
    run.add_argument("--wait", action="store_true",
                     help="while work is pending at PostHog, check again every --interval "
                     "instead of returning (exit status 3)")
    run.add_argument("--until", metavar="TIME", type=until_time,
                     help="with --wait: stop waiting at this time (ISO 8601; without a zone, UTC) "
                     "or after this long (90m, 12h, 8d)")
    run.add_argument("--interval", metavar="SECONDS", type=positive_seconds,
                     default=C.VERIFY_INTERVAL, help="with --wait: seconds between checks "
                     f"(default {C.VERIFY_INTERVAL:.0f})")
    run.add_argument("--batch-schedule", metavar="'DAY HH:MM'", type=batch_schedule, default=None,
                     help="when PostHog's weekly event-deletion batch starts, in UTC (default "
                     "'sun 05:00', PostHog's; PostHog Cloud has run it as 'sat 22:00')")
    run.add_argument("--queued-grace", metavar="SECONDS", type=seconds_or_zero,
                     default=C.QUEUED_DELETION_GRACE,
                     help="how long a person whose deletion PostHog queued may still be found "
                     f"before it counts as wrong (default {C.QUEUED_DELETION_GRACE:.0f})")
    run.add_argument("--concurrency", type=positive_int, default=None,
                     help="lookups in flight (default 8)")
    run.add_argument("--patience", type=positive_int, default=600, metavar="SECONDS",
                     help="how long a failing read of PostHog's deletion status (5xx) is retried "
                     "before its events are reported not checked")
    out = p.add_argument_group("report")
    out.add_argument("--report", metavar="PATH",
                     help="report path: .json for totals, .csv for every id (default: "
                     "JOURNAL.verify.json; the job's own report is kept)")
    out.add_argument("--per-id", action="store_true", help="include every id in a JSON report")


def validate_verify_args(args: argparse.Namespace) -> tuple[list[InputSpec], Path, Path]:
    """Every check that needs no request. Raises :class:`UsageError`."""
    specs = input_specs(args, journal_alone=bool(args.journal),
                        alone="--journal PATH: the job's own input or journal")
    job_projects(args)
    if any(spec.is_stdin for spec in specs):
        raise UsageError("verify reads the job's journal: give --journal PATH instead of '-'")
    if args.until is not None and not args.wait:
        raise UsageError("--until goes with --wait")
    if args.until is not None and args.until <= datetime.now(timezone.utc):
        raise UsageError(f"--until {args.until.isoformat(timespec='seconds')} is in the past: "
                         "give a later time, or a duration (90m, 12h, 8d)")
    first = next(iter(specs), None)
    journal = Path(args.journal) if args.journal else Path(f"{first.path}.journal.sqlite")  # type: ignore[union-attr]
    check_journal_target(journal)
    if not journal_loaded(journal):
        raise UsageError(f"no deletion job to verify in {journal}: run persons delete first, or "
                         "give its --journal")
    JobLock(journal).release()  # a job still running says whose it is (JournalBusy)
    report = Path(args.report) if args.report else journal.with_name(journal.name + ".verify.json")
    check_report_target(report, specs, journal)
    return specs, journal, report



async def run_verify(args: argparse.Namespace, client: AsyncPostHog) -> int:
    specs, journal_path, report_path = validate_verify_args(args)
    projects, excluded = job_projects(args, resume=True)
    line = ProgressLine("verifying")

    def on_progress(p: VerifyProgress) -> None:
        if p.next_check_at is not None:
            waiting = {**p.persons, **{f"events {k}": v for k, v in p.events.items()}}
            pending = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in waiting.items()
                                if k in ("still_queued", "events pending", "events missing"))
            line.interrupt(f"pending at PostHog: {pending or 'checks'}; next batch "
                           f"{p.next_batch_at}; checking again in "
                           f"{format_duration(p.next_check_at - time.time())}")
        elif p.checked:
            line.update(p.checked, None)

    job = DeletionJob(client, inputs=specs, journal=journal_path, projects=projects,
                      exclude_projects=excluded, concurrency=args.concurrency,
                      patience=args.patience, on_notice=line.interrupt)
    task, received = await run_with_signals(job, job.verify(
        wait=args.wait, until=args.until, interval=args.interval, queued_grace=args.queued_grace,
        schedule=args.batch_schedule, on_progress=on_progress), line)
    wait = (" --wait" + (f" --interval {args.interval:g}" if args.interval != C.VERIFY_INTERVAL
                         else "")) if args.wait else ""
    if received or task.cancelled():
        print("interrupted: every check made so far is journaled. Verify again with:\n"
              f"  {verify_command(args, journal_path)}{wait}", file=sys.stderr)
        return EXIT_INTERRUPTED
    report = task.result()
    try:
        report.write(report_path, per_id=args.per_id)
        written = True
    except OSError as exc:
        print(f"error: could not write the report to {report_path}: {exc.strerror or exc}",
              file=sys.stderr)
        written = False
    print_verification(report, report_path, written=written)
    v = report.verification or {}
    state = v.get("state", "failed")
    again = verify_command(args, journal_path, report.selection or None) + wait
    if state == "pending" and args.wait:
        stopped = ("--until" if args.until is None else
                   args.until.isoformat(timespec="seconds").replace("+00:00", "Z"))
        print(f"stopped waiting at {stopped} (--until): work is still pending at PostHog; "
              f"PostHog's next event-deletion batch: {v.get('next_batch_at')}. Wait again with:"
              f"\n  {again} --until TIME", file=sys.stderr)
    elif state == "pending":
        print("work is still pending at PostHog. Check again later (or add --wait) with:\n"
              f"  {again}", file=sys.stderr)
    elif state == "failed" and _failed_checks(v):
        print(f"some checks could not be made now. Verify again with:\n  {again}",
              file=sys.stderr)
    return _EXIT.get(state, EXIT_INCOMPLETE) if written else EXIT_INCOMPLETE


def _failed_checks(v: dict[str, object]) -> bool:
    """A lookup or a status read failed: running verify again may settle it."""
    return any(isinstance(counts, dict) and counts.get("check_failed")
               for counts in (v.get("persons"), v.get("events"), v.get("distinct_ids")))
