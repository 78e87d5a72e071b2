"""The arguments ``persons delete`` and ``persons verify`` share: the job's inputs, its journal, its
projects, and its report path; each checked before anything is created or sent.

A job is named by its inputs (the journal defaults to ``<first input>.journal.sqlite``) or by
``--journal``; ``verify`` takes the same arguments as ``delete --resume``. Its projects are the
global ``--project-id`` (given once: the client's project, as always; several times: those),
or ``--all-projects`` (every project the key reaches) less ``--exclude-project``; on a resume,
or for ``verify``, none at all means the journal's own.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import Any

from ..jobs import ALL_PROJECTS, InputSpec, check_report_path
from ..jobs._job_projects import JOURNAL_PROJECTS
from ..jobs._input_bytes import unreadable_reason
from ._args import UsageError

__all__ = ["add_input_arguments", "add_project_arguments", "input_specs", "job_projects",
           "check_report_target", "check_journal_target", "JOURNAL_SIDE_FILES"]

JOURNAL_SIDE_FILES = ("-wal", "-shm", "-journal", ".lock")  # SQLite's, and the job's lock


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("input (a path, or - for standard input; each may be given "
                               "several times: every file is part of the job)")
    src.add_argument("--distinct-ids-file", metavar="PATH", action="append", help="distinct ids")
    src.add_argument("--ids-file", metavar="PATH", action="append", help="person UUIDs")
    fmt = src.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="inputs are CSV with a header (needs --column)")
    fmt.add_argument("--jsonl", action="store_true", help="inputs are JSON Lines (needs --field)")
    src.add_argument("--column", help="the CSV column that holds the ids")
    src.add_argument("--field", help="the JSON Lines field that holds the ids")


def add_project_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "projects (--project-id, a global option, may be given several times here)")
    group.add_argument("--all-projects", action="store_true",
                       help="every project the key reaches (its scoped projects, else every "
                       "project of its organisations); each project is its own set of persons")
    group.add_argument("--exclude-project", metavar="ID", action="append",
                       help="with --all-projects: leave this project out on purpose (recorded "
                       "in the report)")


def input_specs(args: argparse.Namespace, *, journal_alone: bool,
                alone: str = "--resume --journal PATH to continue a job from its journal"
                ) -> list[InputSpec]:
    """The inputs given; ``journal_alone``: none may be given (``--journal`` names the job);
    ``alone`` says how to name a job by its journal, for the error when nothing is given."""
    fmt = "csv" if args.csv else "jsonl" if args.jsonl else "lines"
    if args.column and fmt != "csv":
        raise UsageError("--column goes with --csv")
    if args.field and fmt != "jsonl":
        raise UsageError("--field goes with --jsonl")
    name = args.column if fmt == "csv" else args.field if fmt == "jsonl" else None
    if fmt != "lines" and not name:
        raise UsageError(f"--{fmt} needs --{'column' if fmt == 'csv' else 'field'} NAME")
    specs = [InputSpec(kind, path, fmt, name)  # type: ignore[arg-type]
             for kind, paths in (("distinct_ids", args.distinct_ids_file), ("ids", args.ids_file))
             for path in paths or ()]
    if not specs and not journal_alone:
        raise UsageError("give --distinct-ids-file PATH and/or --ids-file PATH (- reads standard "
                         f"input), or {alone}")
    if sum(spec.is_stdin for spec in specs) > 1:
        raise UsageError("only one input can be standard input")
    for spec in specs:
        if not spec.is_stdin:
            _check_readable(spec.path)
    _refuse_twice(specs)
    return specs


def _check_readable(name: str) -> None:
    """Refuse an input that cannot be read, naming why (a symlink loop is not "not found")."""
    path = Path(name)
    try:
        os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read the input file {name}: {unreadable_reason(name, exc)}"
                         ) from None
    if path.is_dir():
        raise UsageError(f"{name} is a directory, not an input file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read the input file {name}: permission denied")


def _refuse_twice(specs: list[InputSpec]) -> None:
    """One file given twice (by the same name, a symlink or a hard link) would be loaded twice,
    and a pipe cannot be read twice: either way the command is not what was meant."""
    files = [spec for spec in specs if not spec.is_stdin]
    for index, spec in enumerate(files):
        for earlier in files[:index]:
            if os.path.samefile(earlier.path, spec.path):
                same = "" if earlier.path == spec.path else f" (the same file as {earlier.path})"
                raise UsageError(f"{spec.path}{same} is given twice: give each input once")


def job_projects(args: argparse.Namespace, *, resume: bool = False) -> tuple[Any, list[str]]:
    """``(projects, exclude_projects)`` for ``DeletionJob``: ``"all"``, the ids named, or the
    client's project (``--project-id`` once, or ``$POSTHOG_PROJECT_ID``). On a resume or a
    verification, without ``--project-id`` or ``--all-projects`` on the command line: the
    journal's (``$POSTHOG_PROJECT_ID`` then never conflicts with it)."""
    named = list(getattr(args, "project_ids", None) or [])
    excluded = list(dict.fromkeys(args.exclude_project or []))
    if args.all_projects:
        if named:
            raise UsageError("--all-projects finds every project the key reaches and "
                             "--project-id names projects: give one of the two")
        return ALL_PROJECTS, excluded
    if excluded:
        raise UsageError("--exclude-project goes with --all-projects (with --project-id, name "
                         "only the projects you want)")
    if resume and not named:
        return JOURNAL_PROJECTS, []
    return (named if len(named) > 1 else None), []


def check_journal_target(journal: Path) -> None:
    """Refuse a journal (or a side file of it) that exists and is not a regular file: SQLite
    opening a named pipe waits for a writer forever, a device or a folder is no journal."""
    for path in (journal, *(journal.with_name(journal.name + s) for s in JOURNAL_SIDE_FILES)):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # missing (created later), or unreadable (SQLite says why)
        if not stat.S_ISREG(mode):
            kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a directory"
                    if stat.S_ISDIR(mode) else "a socket" if stat.S_ISSOCK(mode) else
                    "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
            name = f"the journal {path}" if path == journal else f"the journal's side file {path}"
            raise UsageError(f"{name} is {kind}, not a regular file: give --journal the path "
                             "of a file (it is created if missing)")


def check_report_target(report: Path, specs: list[InputSpec], journal: Path) -> None:
    """Refuse a report path that would overwrite an input, the journal or one of its side files
    (and, through :func:`check_report_path`, one that is not a regular file)."""
    try:
        check_report_path(report)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target = report.resolve()
    taken = {Path(spec.path).resolve(): f"the input file {spec.path}"
             for spec in specs if not spec.is_stdin}
    taken[journal.resolve()] = f"the journal {journal}"
    for suffix in JOURNAL_SIDE_FILES:
        side = journal.with_name(journal.name + suffix)
        taken[side.resolve()] = f"the journal's side file {side}"
    if target in taken:
        raise UsageError(f"report path {report} is {taken[target]}: the report would overwrite it")
    if not target.exists():
        return
    for spec in specs:
        if not spec.is_stdin and os.path.exists(spec.path) and os.path.samefile(spec.path, target):
            raise UsageError(f"report path {report} is the input file {spec.path} (a hard link)")
    if journal.exists() and os.path.samefile(journal, target):
        raise UsageError(f"report path {report} is the journal {journal} (a hard link)")
