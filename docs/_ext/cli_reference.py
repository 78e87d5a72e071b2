"""A Markdown extension: ``<!-- cli-reference -->`` on a line of its own becomes the help of every
``posthog-async`` command, generated from ``posthog_async.cli.build_parser()`` at build time.

The reference is the parser's own ``--help`` of each command and sub-command, walked from the
top; nothing is copied by hand, so a new option or command shows up at the next build. Works in
Zensical and MkDocs alike (both render with Python-Markdown), named in mkdocs.yml as
``docs._ext.cli_reference``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

MARKER = "<!-- cli-reference -->"
#: Help is wrapped at this width whatever the terminal of the build (argparse reads $COLUMNS).
WIDTH = 100


def commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser, then every sub-command's parser, depth first, in the order they were added."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases name the same parser once
                yield from commands(sub)


def anchor(prog: str) -> str:
    return "cli-" + "-".join(prog.split()[1:]) if " " in prog else "cli"


def render(parser: argparse.ArgumentParser) -> list[str]:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        lines: list[str] = []
        for command in commands(parser):
            depth = min(len(command.prog.split()), 3)  # posthog-async: ##, persons: ###, delete: ###
            lines += [f"{'#' * (depth + 1)} `{command.prog}` {{#{anchor(command.prog)}}}", ""]
            lines += ["```text", *command.format_help().rstrip().splitlines(), "```", ""]
        return lines
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


class CliReference(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        if not any(line.strip() == MARKER for line in lines):
            return lines
        from posthog_async.cli import build_parser

        out: list[str] = []
        for line in lines:
            out += render(build_parser()) if line.strip() == MARKER else [line]
        return out


class CliReferenceExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        md.preprocessors.register(CliReference(md), "posthog_async_cli_reference", 40)


def makeExtension(**kwargs: Any) -> CliReferenceExtension:  # noqa: N802 (Python-Markdown's name)
    return CliReferenceExtension(**kwargs)
