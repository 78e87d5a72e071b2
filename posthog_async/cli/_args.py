"""Argument parsing shared by every command: a parser that never prints the API key, and the
numeric argument types.

Every parser of the CLI is a :class:`CliParser` built with ``allow_abbrev=False`` (``--api`` is
not silently taken for ``--api-key``, nor ``--dry`` for ``--dry-run``). Its error messages
("unrecognized arguments: phx_...", "invalid choice: ...") have the key redacted: any argument
given to ``--api-key`` (or to any option whose name says key, token, secret or password), the
key in the environment, and anything that looks like a personal API key (``phx_...``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any, NoReturn

from .. import _constants as C

__all__ = ["CliParser", "UsageError", "redact", "secrets_in", "positive_int", "bounded_int"]

REDACTED = "<redacted>"
_KEY_PATTERN = re.compile(r"phx_[^\s'\",;)\]}]*")
_SECRET_OPTION = re.compile(r"key|token|secret|passw", re.IGNORECASE)
_ARGV: ContextVar[tuple[str, ...]] = ContextVar("posthog_async_cli_argv", default=())


class UsageError(ValueError):
    """A bad argument or input, found before anything was sent (exit status 2)."""


def secrets_in(argv: Iterable[str]) -> set[str]:
    """Values that may be the API key: what follows a key-like option, and the key in the env."""
    tokens = list(argv)
    found: set[str] = set()
    for index, token in enumerate(tokens):
        if not token.startswith("-"):
            continue
        name, eq, value = token.partition("=")
        if not _SECRET_OPTION.search(name):
            continue
        if eq:
            found.add(value)
        elif index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
            found.add(tokens[index + 1])
    env = os.environ.get(C.ENV_API_KEY)
    if env:
        found.add(env)
    return {value for value in found if value.strip()}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret (and every ``phx_...`` token) replaced by ``<redacted>``."""
    every = set(secrets) | secrets_in(())
    for secret in sorted(every, key=len, reverse=True):  # the longest first: no half-redaction
        text = text.replace(secret, REDACTED)
        escaped = repr(secret)[1:-1]  # as argparse shows it inside %r
        if escaped != secret:
            text = text.replace(escaped, REDACTED)
    return _KEY_PATTERN.sub(REDACTED, text)


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose error messages never hold the API key (exit status 2).

    Sub-parsers made with ``add_subparsers`` are of this class too (argparse uses the parent's).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        token = _ARGV.set(tuple(argv))  # sub-parsers report their errors inside this call
        try:
            return super().parse_args(argv, namespace)
        finally:
            _ARGV.reset(token)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {redact(message, secrets_in(_ARGV.get()))}\n")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def bounded_int(most: int, why: str) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to ``most`` (``why``: "PostHog takes at most...")."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"{why}, got {value}")
        return value

    parse.__name__ = "bounded_int"
    return parse
