"""Argument parsing shared by every command: a parser that never prints a secret, never
drops a value given twice, and the numeric argument types.

Every parser of the CLI is a :class:`CliParser` built with ``allow_abbrev=False`` (``--api`` is
not silently taken for ``--api-key``, nor ``--dry`` for ``--dry-run``). Its error messages
("unrecognized arguments: phx_...", "invalid choice: ...") have secrets redacted: any argument
given to ``--api-key`` (or to any option whose name says key, token, secret or password), the
key in the environment, anything that looks like a personal API key (``phx_...``), and the
credentials of any URL (``redis://:pw@host``, ``?password=...``).

**Which options may repeat** is declared, not left to argparse's "the last one wins": an
option with a value (argparse's default ``store`` action) is given once; given again with
another value it is a usage error (a second ``--report`` must not silently replace the first).
An option that may repeat says so with ``action="append"`` (``--distinct-ids-file``: every file
given is part of the job). ``--flag/--no-flag`` pairs use :class:`BooleanOption`, which refuses
both spellings at once. ``tests/test_cli_usage.py`` walks every parser to keep it that way.
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

__all__ = ["CliParser", "UsageError", "BooleanOption", "AppendAcross", "redact", "secrets_in",
           "positive_int", "bounded_int"]

REDACTED = "<redacted>"
#: A personal API key: ``phx_`` and at least one more character (a bare ``phx_``, as in "keys
#: start with 'phx_'", is the prefix, not a key).
_KEY_PATTERN = re.compile(r"phx_[^\s'\",;)\]}]+")
#: The credentials of a URL: ``scheme://user:password@`` (greedy: a password may hold ``@``).
_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s'\"]*@", re.IGNORECASE)
#: A secret in a query string: ``?password=...``, ``&token=...``.
_SECRET_PARAM = re.compile(r"([?&](?:passw(?:or)?d|token|secret|api_?key)=)[^&\s'\"]+",
                           re.IGNORECASE)
_SECRET_OPTION = re.compile(r"key|token|secret|passw", re.IGNORECASE)
_ARGV: ContextVar[tuple[str, ...]] = ContextVar("posthog_async_cli_argv", default=())
#: During one ``parse_args``: each once-only option's first spelling and value, by ``dest``.
_GIVEN: ContextVar[dict[str, tuple[str, Any]] | None] = ContextVar("posthog_async_cli_given",
                                                                   default=None)
#: During one ``parse_args``: every value of each :class:`AppendAcross` option, by ``dest``.
_APPENDED: ContextVar[dict[str, list[Any]] | None] = ContextVar("posthog_async_cli_appended",
                                                               default=None)


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
    """``text`` with every secret, every ``phx_...`` token and every URL's credentials replaced
    by ``<redacted>``."""
    every = set(secrets) | secrets_in(())
    for secret in sorted(every, key=len, reverse=True):  # the longest first: no half-redaction
        text = text.replace(secret, REDACTED)
        escaped = repr(secret)[1:-1]  # as argparse shows it inside %r
        if escaped != secret:
            text = text.replace(escaped, REDACTED)
    text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _SECRET_PARAM.sub(rf"\1{REDACTED}", text)
    return _KEY_PATTERN.sub(REDACTED, text)


def _given_once(parser: argparse.ArgumentParser, dest: str, option: str | None,
                value: Any) -> None:
    """Remember that ``option`` gave ``dest`` its ``value``; a different value given earlier in
    the same command line (before or after the command, in any spelling) is a usage error."""
    given = _GIVEN.get()
    if given is None:  # parsed outside CliParser.parse_args: nothing to compare with
        return
    spelling = option or dest
    if dest in given and given[dest][1] != value:
        first, earlier = given[dest]
        advice = ("give only one of them" if isinstance(value, bool)
                  else f"give {spelling} once (only the last would count)")
        parser.error(f"{first}{_shown(earlier)} and {spelling}{_shown(value)} conflict: {advice}")
    given.setdefault(dest, (spelling, value))


def _shown(value: Any) -> str:
    """`` 'value'`` as the message shows it; nothing for a flag (its spelling says it)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, (list, tuple)):
        return "".join(f" {str(item)!r}" for item in value)
    return f" {str(value)!r}"


class _StoreOnce(argparse._StoreAction):
    """argparse's ``store``, refusing a second, different value (see the module docstring)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if option_string is not None:  # an option, not a positional argument
            _given_once(parser, self.dest, option_string, values)
        super().__call__(parser, namespace, values, option_string)


class BooleanOption(argparse.BooleanOptionalAction):
    """``--flag/--no-flag``; giving both is a usage error, not "the last one wins"."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if option_string is not None and option_string in self.option_strings:
            _given_once(parser, self.dest, option_string, not option_string.startswith("--no-"))
        super().__call__(parser, namespace, values, option_string)


class AppendAcross(argparse._AppendAction):
    """``append`` for an option accepted before and after the command (``--project-id``): every
    value is kept, wherever it was typed. (argparse gives a command's parser a namespace of its
    own and copies it over the first one, so a plain ``append`` after the command would drop
    the values given before it.)"""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        appended = _APPENDED.get()
        if appended is None:  # parsed outside CliParser.parse_args: a plain append
            super().__call__(parser, namespace, values, option_string)
            return
        appended.setdefault(self.dest, []).append(values)
        setattr(namespace, self.dest, list(appended[self.dest]))


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose error messages never hold the API key (exit status 2).

    Sub-parsers made with ``add_subparsers`` are of this class too (argparse uses the parent's).
    ``after_parse(parser, namespace)`` (the top parser's) checks and shapes what was parsed; it
    may call ``parser.error``.
    """

    def __init__(self, *args: Any,
                 after_parse: Callable[[argparse.ArgumentParser, argparse.Namespace], None]
                 | None = None, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)
        self.after_parse = after_parse
        self.register("action", None, _StoreOnce)  # the default action: an option given once
        self.register("action", "store", _StoreOnce)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        # Sub-parsers report their errors, and record the options they were given, inside
        # this call: one command line, one record, whichever parser reads an option.
        token, given, appended = _ARGV.set(tuple(argv)), _GIVEN.set({}), _APPENDED.set({})
        try:
            parsed = super().parse_args(argv, namespace)
            if self.after_parse is not None:
                self.after_parse(self, parsed)
            return parsed
        finally:
            _APPENDED.reset(appended)
            _GIVEN.reset(given)
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
