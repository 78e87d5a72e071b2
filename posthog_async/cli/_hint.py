"""The command that continues (or restarts, or verifies) a deletion job, rebuilt from the parsed
arguments.

Never from the raw command line: the hint must not carry the API key (in any spelling), nor a
Redis URL (it may hold a password), nor credentials in the host URL. A job that read standard
input resumes from its journal alone (``--resume --journal PATH``): a pipe cannot be read twice.
Every word is quoted for a POSIX shell, so the hint survives copy-paste: a value starting
with ``-`` is written ``--option=value`` (else it would read as an option), and a file name
that is not UTF-8 text (or holds control characters) is written ``$'...'`` with its bytes as
``\\xNN`` escapes (bash, zsh and ksh reproduce it). The projects are always named
(``--project-id`` once or several times, or ``--all-projects`` with its
``--exclude-project``), also when the project came from ``POSTHOG_PROJECT_ID``; the host too,
also when it came from ``POSTHOG_HOST`` (it is no secret): a resume in another shell must
reach the same projects on the same PostHog (the journal refuses another host in any case).
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import Any

from .. import _constants as C
from .._config import resolve_project_id
from ..jobs._input_bytes import reads_once

__all__ = ["job_command", "verify_command", "verify_report_path", "hint_notes", "shell_join", "option",
           "host_words"]

_DEFAULT_CHUNK_SIZE = C.MAX_BULK_DELETE_IDS
_DEFAULT_PATIENCE = 600


def _host(host: str) -> str:
    """``https://user:pw@eu.posthog.com`` -> ``https://eu.posthog.com``."""
    scheme, sep, rest = host.rpartition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"


def option(flag: str, value: str) -> list[str]:
    """``flag value`` as words of a command; ``flag=value`` when the value starts with ``-``
    (``--journal -j.sqlite`` reads ``-j.sqlite`` as an option; ``-`` alone is standard input)."""
    return [f"{flag}={value}"] if value.startswith("-") and value != "-" else [flag, value]


def _quote(word: str) -> str:
    if word.isprintable() and not any("\udc80" <= char <= "\udcff" for char in word):
        return shlex.quote(word)
    # Bytes that are not UTF-8 (surrogate escapes, as Python decodes them in sys.argv) or
    # control characters: $'...' with \xNN escapes, the only quoting that reproduces them.
    escaped = "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in "'\\" else f"\\x{b:02x}"
                      for b in os.fsencode(word))
    return f"$'{escaped}'"


def shell_join(words: list[str]) -> str:
    """``words`` as one line a shell reads back as those words (see the module docstring)."""
    return " ".join(_quote(word) for word in words)


def host_words(args: argparse.Namespace) -> list[str]:
    """``--host URL`` for the host this run used (``--host`` or ``POSTHOG_HOST``; credentials
    left out), or nothing for PostHog's default host."""
    host = args.host or os.environ.get(C.ENV_HOST)
    if not host or _host(host.strip()).rstrip("/") == C.DEFAULT_HOST:
        return []
    return option("--host", _host(host.strip()).rstrip("/"))


def _reads_stdin(args: argparse.Namespace) -> bool:
    return "-" in [*(args.distinct_ids_file or ()), *(args.ids_file or ())]


def job_command(args: argparse.Namespace, journal: Path, *, resume: bool = True,
                retry_failed: bool = False, selection: dict[str, Any] | None = None) -> str:
    """``posthog-async ... persons delete ...`` for the job ``args`` describe.

    ``resume=True``: continue the job in ``journal`` (``--resume``; with ``retry_failed``, or
    when the run had it, ``--retry-failed`` too). ``resume=False``: run it again from the start
    (it was stopped before its input was loaded: there is nothing to resume; an input read from
    standard input is then kept, to be piped in again). ``selection``: the projects the journal
    records (a report's ``selection``), named instead of what this run was given.
    """
    words = [*_global_words(args, selection), "persons", "delete",
             *_input_words(args, selection, resume=resume)]
    for flag in ("delete_events", "delete_recordings", "keep_person", "dry_run"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    if not args.resolve:
        words.append("--no-resolve")
    if args.chunk_size != _DEFAULT_CHUNK_SIZE:  # the journal holds it: a resume must match
        words += ["--chunk-size", str(args.chunk_size)]
    if args.concurrency:
        words += ["--concurrency", str(args.concurrency)]
    if args.patience != _DEFAULT_PATIENCE:
        words += ["--patience", str(args.patience)]
    if args.report:
        words += option("--report", args.report)
    if args.per_id:
        words.append("--per-id")
    if args.deletion_status:
        words.append("--deletion-status")
    words += option("--journal", str(journal))
    if resume:
        words.append("--resume")
        if args.retry_failed or retry_failed:
            words.append("--retry-failed")
    return "posthog-async " + shell_join(words)


def _every_project(args: argparse.Namespace, selection: dict[str, Any] | None) -> bool:
    return bool(selection["all"]) if selection else bool(getattr(args, "all_projects", False))


def _global_words(args: argparse.Namespace, selection: dict[str, Any] | None) -> list[str]:
    words = host_words(args)
    if not _every_project(args, selection):
        named = [str(p) for p in selection["ids"]] if selection else _projects(args)
        for project in named:
            words += option("--project-id", project)
    if args.verbose:
        words.append("-v")
    return words


def _input_words(args: argparse.Namespace, selection: dict[str, Any] | None, *,
                 resume: bool) -> list[str]:
    """The inputs (left out when a standard-input job resumes from its journal alone), and the
    projects' own options."""
    words: list[str] = []
    if not (resume and _reads_stdin(args)):
        for flag, paths in (("--distinct-ids-file", args.distinct_ids_file),
                            ("--ids-file", args.ids_file)):
            for path in paths or ():
                words += option(flag, path)
        if args.csv:
            words += ["--csv", *option("--column", args.column)]
        elif args.jsonl:
            words += ["--jsonl", *option("--field", args.field)]
    if _every_project(args, selection):
        words.append("--all-projects")
        left_out = selection["exclude"] if selection else args.exclude_project or ()
        for project in dict.fromkeys(str(p) for p in left_out):
            words += option("--exclude-project", project)
    return words


def verify_report_path(job_report: str | None) -> str | None:
    """Where the verify a deletion job suggests writes its report: beside the job's own, never
    over it (``rep.json`` -> ``rep.verify.json``); ``None``: verify's default
    (``JOURNAL.verify.json``)."""
    if not job_report:
        return None
    path = Path(job_report)
    return str(path.with_name(f"{path.stem}.verify{path.suffix}" if path.suffix
                              else f"{path.name}.verify"))


def verify_command(args: argparse.Namespace, journal: Path,
                   selection: dict[str, Any] | None = None, *, from_job: bool = False) -> str:
    """``posthog-async ... persons verify ...`` for the job ``args`` describe; ``from_job``:
    ``args`` are the deletion job's, whose report the verification must not overwrite (its
    report goes beside it, with every id when the job's had them)."""
    words = [*_global_words(args, selection), "persons", "verify",
             *_input_words(args, selection, resume=True)]
    report = verify_report_path(args.report) if from_job else args.report
    if report:
        words += option("--report", report)
    if getattr(args, "per_id", False):
        words.append("--per-id")
    words += option("--journal", str(journal))
    return "posthog-async " + shell_join(words)


def _projects(args: argparse.Namespace) -> list[str]:
    named = list(getattr(args, "project_ids", None) or ())
    if len(named) > 1:
        return named
    try:
        project = resolve_project_id(args.project_id)
    except ValueError:  # checked before the job started; a hint never fails
        project = str(args.project_id) if args.project_id else None
    return [project] if project else []


def hint_notes(args: argparse.Namespace, *, resume: bool = True) -> list[str]:
    """What the user must supply again, that the command leaves out on purpose."""
    notes = [f"keep the API key in {C.ENV_API_KEY}; it is never written to the journal or the "
             "report"]
    if args.redis_url:
        notes.append(f"the Redis URL is left out (it may hold a password): add --redis-url URL "
                     f"again, or set {C.ENV_REDIS_URL}")
    if args.host and _host(args.host) != args.host:
        notes.append("the credentials in the host URL are left out")
    if not resume and _reads_stdin(args):
        notes.append("feed the same input to standard input again")
    pipes = [path for path in (*(args.distinct_ids_file or ()), *(args.ids_file or ()))
             if path != "-" and reads_once(path)]
    if pipes:
        notes.append(f"write the same input to {', '.join(pipes)} again: a pipe is read once, "
                     "and the input is checked to be the one loaded")
    return notes
