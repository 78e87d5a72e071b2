"""The ``posthog-async`` command line.

Key and host come from ``POSTHOG_PERSONAL_API_KEY`` / ``POSTHOG_HOST`` / ``POSTHOG_PROJECT_ID``
or ``--host`` / ``--project-id``. ``--api-key`` exists but puts the key in shell history and the
process list; the key is never printed, logged or written to a journal or report (argument
errors redact it too, see ``_args.CliParser``). Options are never abbreviated: ``--dry`` is an
error, not ``--dry-run``.

Exit status: 0 done, 1 incomplete (failures, a report that could not be written), 2 bad usage
(nothing was sent), 130 interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .. import __version__
from .. import _constants as C
from .. import AsyncPostHog, ConfigurationError, PostHogError, RedisRateLimiter
from ..jobs import InputError, JournalError, ReportPathError
from ._args import CliParser, UsageError, redact, secrets_in
from ._delete import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    add_delete_parser,
    run_delete,
)
from ._demo import add_demo_parser, run_demo
from ._persons import add_read_parsers, run_list, run_lookup

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``posthog-async`` argument parser (the command-line reference is generated from it)."""
    parser = CliParser(prog="posthog-async", allow_abbrev=False,
                       description="Async PostHog REST client: bulk person jobs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--host", help="PostHog host (default $POSTHOG_HOST or us.posthog.com)")
    parser.add_argument("--project-id", help="project id (default $POSTHOG_PROJECT_ID)")
    parser.add_argument("--api-key", help="personal API key (prefer $POSTHOG_PERSONAL_API_KEY)")
    parser.add_argument("--redis-url", default=None,
                        help="share the key's rate limit with other processes through Redis/Valkey "
                        f"(default ${C.ENV_REDIS_URL})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries")
    sub = parser.add_subparsers(dest="command", required=True)
    persons = sub.add_parser("persons", help="person commands", allow_abbrev=False).add_subparsers(
        dest="action", required=True)
    add_delete_parser(persons)
    add_read_parsers(persons)
    add_demo_parser(sub)
    return parser


def _client(args: argparse.Namespace) -> AsyncPostHog:
    concurrency = getattr(args, "concurrency", None)
    options: dict[str, object] = {"max_concurrency": concurrency} if concurrency else {}
    redis_url = args.redis_url or os.environ.get(C.ENV_REDIS_URL)  # None in args: not in a hint
    if redis_url:
        options["rate_limiter"] = RedisRateLimiter(redis_url)
    return AsyncPostHog(args.api_key, host=args.host, project_id=args.project_id, **options)  # type: ignore[arg-type]


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return await run_demo(args)
    if args.action == "delete":
        from ._delete import validate_delete_args

        validate_delete_args(args)  # before the client: bad usage costs no request
    async with _client(args) as client:
        if args.action == "delete":
            return await run_delete(args, client)
        if args.action == "list":
            return await run_list(args, client)
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
    except (UsageError, InputError, JournalError, ReportPathError, ConfigurationError) as exc:
        print(f"error: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    except PostHogError as exc:
        print(f"error: {type(exc).__name__}: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except (ValueError, OSError) as exc:
        print(f"error: {redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
