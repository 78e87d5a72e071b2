"""The ``posthog-async`` command line.

Key and host come from ``POSTHOG_PERSONAL_API_KEY`` / ``POSTHOG_HOST`` / ``POSTHOG_PROJECT_ID``
or ``--host`` / ``--project-id``. ``--api-key`` exists but puts the key in shell history and the
process list; the key is never printed, logged or written to a journal or report (argument
errors redact it too, see ``_args.CliParser``). Options are never abbreviated: ``--dry`` is an
error, not ``--dry-run``. The global options are accepted before or after the command, as
users type them (``posthog-async persons list --host URL``); an option given twice with two
values is refused, wherever each was given.

Exit status: 0 done, 1 incomplete (failures, a report or journal that could not be written, a
project not covered), 2 bad usage or configuration (nothing was sent), 3 (``persons verify``)
work still pending at PostHog, 130 interrupted (Ctrl-C, SIGTERM), 141 standard output closed
by its reader (``persons list | head -1``: nothing is printed, as a command killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .. import __version__
from .. import _constants as C
from .. import AsyncPostHog, ConfigurationError, PostHogError, RateLimits, RedisRateLimiter
from .._config import resolve_project_id
from ..jobs import InputError, JournalError, JournalWriteError, ReportPathError
from ._args import AppendAcross, CliParser, UsageError, redact, secrets_in
from ._delete import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    add_delete_parser,
    run_delete,
)
from ._demo import add_demo_parser, run_demo
from ._export import add_export_parser, run_export
from ._persons import add_read_parsers, run_list, run_lookup
from ._verify import add_verify_parser, run_verify

__all__ = ["main", "build_parser"]


#: The options every command takes, before or after its name: (flags, add_argument options).
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, object]], ...] = (
    (("--host",), {"help": "PostHog host (default $POSTHOG_HOST or us.posthog.com)"}),
    (("--project-id",), {"help": "project id (default $POSTHOG_PROJECT_ID); persons delete and "
                         "persons verify take several", "action": AppendAcross}),
    (("--api-key",), {"help": "personal API key (prefer $POSTHOG_PERSONAL_API_KEY)"}),
    (("--redis-url",), {"help": "share the key's rate limit with other processes through "
                        f"Redis/Valkey (default ${C.ENV_REDIS_URL})"}),
    (("-v", "--verbose"), {"action": "store_true", "help": "log retries"}),
)


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The global options on ``parser``. Below the top, they default to "not given"
    (``SUPPRESS``), so a command's parser never overwrites what was given before its name."""
    group = parser.add_argument_group("global options" if top else
                                      "global options (also accepted before the command)")
    for flags, options in GLOBAL_OPTIONS:
        extra = {} if top else {"default": argparse.SUPPRESS}
        group.add_argument(*flags, **{**options, **extra})  # type: ignore[arg-type]


def _sub_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (commands, and their commands)."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to one parser
                found += [child, *_sub_parsers(child)]
    return found


#: The commands that work in several projects at once (``--project-id`` repeated).
MULTI_PROJECT_ACTIONS = ("delete", "verify")


def _one_project_unless_a_job(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.project_ids``: every ``--project-id`` given (repeats of one value dropped);
    ``args.project_id``: the first (the client's). Only jobs take more than one."""
    ids = list(dict.fromkeys(getattr(args, "project_id", None) or ()))
    args.project_ids, args.project_id = ids, (ids[0] if ids else None)
    if len(ids) > 1 and getattr(args, "action", None) not in MULTI_PROJECT_ACTIONS:
        parser.error(f"--project-id {ids[0]!r} and --project-id {ids[1]!r} conflict: give "
                     "--project-id once (only persons delete and persons verify work in several "
                     "projects)")


def build_parser() -> argparse.ArgumentParser:
    """The ``posthog-async`` argument parser (the command-line reference is generated from it).

    A new command registers itself below; the global options and the once-only rule (see
    ``_args``) reach it without more code."""
    parser = CliParser(prog="posthog-async", allow_abbrev=False, after_parse=_one_project_unless_a_job,
                       description="Async PostHog REST client: bulk person jobs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)
    persons = sub.add_parser("persons", help="person commands", allow_abbrev=False).add_subparsers(
        dest="action", required=True)
    add_delete_parser(persons)
    add_verify_parser(persons)
    add_read_parsers(persons)
    add_export_parser(persons)
    add_demo_parser(sub)
    for command in _sub_parsers(parser):
        _add_global_options(command, top=False)
    return parser


def _require_project(args: argparse.Namespace) -> None:
    """Every ``persons`` command works in one project: without one, say so before anything is
    created or sent (exit status 2)."""
    try:
        project = resolve_project_id(args.project_id)
    except ConfigurationError as exc:
        raise UsageError(f"{exc} (--project-id ID or ${C.ENV_PROJECT_ID})") from None
    if project is None:
        raise UsageError(f"no project id: give --project-id ID or set {C.ENV_PROJECT_ID} (the "
                         "number in your project's URL, /project/ID)")


def _client(args: argparse.Namespace) -> AsyncPostHog:
    concurrency = getattr(args, "concurrency", None)
    options: dict[str, object] = {"max_concurrency": concurrency} if concurrency else {}
    redis_url = args.redis_url or os.environ.get(C.ENV_REDIS_URL)  # None in args: not in a hint
    limits = (RateLimits(hogql=C.API_QUERIES_PLAN_RATE_WINDOWS)
              if getattr(args, "api_queries_plan", False) else None)  # persons export
    if redis_url:
        options["rate_limiter"] = RedisRateLimiter(redis_url, limits=limits)
    elif limits is not None:
        options["rate_limits"] = limits
    return AsyncPostHog(args.api_key, host=args.host, project_id=args.project_id, **options)  # type: ignore[arg-type]


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command its reader left


def _refuse_for_demo(args: argparse.Namespace) -> None:
    """``demo`` runs against its own offline server: options naming another would be ignored."""
    given = [flag for flag, value in (("--host", args.host), ("--project-id", args.project_ids),
                                      ("--redis-url", args.redis_url), ("--api-key", args.api_key))
             if value]
    if given:
        raise UsageError(f"demo runs against its own offline PostHog on 127.0.0.1, with its own "
                         f"projects and key: {', '.join(given)} would be ignored; leave "
                         f"{'it' if len(given) == 1 else 'them'} out")


def _refuse_a_project_key(args: argparse.Namespace) -> None:
    """A project API key (``phc_...``) only sends events: PostHog answers every call of these
    commands with a 401 that does not say why. Say it before any request."""
    key = (args.api_key or os.environ.get(C.ENV_API_KEY) or "").strip()
    if key.startswith("phc_"):
        raise UsageError(
            "the key is a project API key (it starts with 'phc_'), which only sends events; "
            "these commands need a personal API key (it starts with 'phx_'): create one in "
            "PostHog under Settings > Personal API keys, with the person scopes, and set "
            f"{C.ENV_API_KEY} to it")


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        _refuse_for_demo(args)
        return await run_demo(args)
    _refuse_a_project_key(args)
    async with _client(args) as client:  # the key and host are checked here: no request yet
        if args.action not in MULTI_PROJECT_ACTIONS or not (
                args.all_projects or args.action == "verify" or args.resume):
            _require_project(args)  # a job's journal knows its projects: a resume's, verify's
        if args.action == "delete":  # checks its arguments before it creates or sends anything
            return await run_delete(args, client)
        if args.action == "verify":
            return await run_verify(args, client)
        if args.action == "list":
            return await run_list(args, client)
        if args.action == "export":
            return await run_export(args, client)
        return await run_lookup(args, client)


def main(argv: list[str] | None = None) -> int:
    """Run ``posthog-async`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.api_key:
        print("warning: --api-key puts the key in your shell history and process list; "
              f"prefer {C.ENV_API_KEY}", file=sys.stderr)
    secrets = secrets_in(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of standard output left: nothing more to say to it
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except JournalWriteError as exc:  # the disk, not the usage: exit status 1
        print(f"error: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except (UsageError, InputError, JournalError, ReportPathError, ConfigurationError) as exc:
        print(f"error: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    except PostHogError as exc:
        print(f"error: {type(exc).__name__}: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except (ValueError, OSError) as exc:
        print(f"error: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE


def _quiet_stdout() -> None:
    """Point standard output at the null device, so the interpreter's flush at exit does not
    fail on the broken pipe a second time (and print a traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - no stdout file descriptor
        pass


if __name__ == "__main__":
    sys.exit(main())
