"""A Markdown extension: ``<!-- cli-reference -->`` on a line of its own becomes the help of every
``posthog-async`` command, generated from ``posthog_async.cli.build_parser()`` at build time.
``<!-- cli-reference: module:function level=N -->`` does the same for another parser (the offline
server's, ``posthog_async.testing.__main__:build_parser``), its first heading at level N (2).

The reference is the parser's own ``--help`` of each command and sub-command, walked from the
top; nothing is copied by hand, so a new option or command shows up at the next build. Works in
Zensical and MkDocs alike (both render with Python-Markdown), named in mkdocs.yml as
``docs._ext.cli_reference``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
from collections.abc import Iterator
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

MARKER = re.compile(
    r"^<!-- cli-reference(?::\s*(?P<target>[\w.]+:\w+))?(?:\s+level=(?P<level>[1-6]))?\s*-->$")
DEFAULT = "posthog_async.cli:build_parser"
#: Help is wrapped at this width whatever the terminal of the build (argparse reads $COLUMNS).
WIDTH = 80


def commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser, then every sub-command's parser, depth first, in the order they were added."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases name the same parser once
                yield from commands(sub)


def anchor(prog: str) -> str:
    """``posthog-async persons delete`` -> ``cli-persons-delete``; other programs: their words."""
    words = prog.split()
    if words[0] == "posthog-async":
        return "-".join(["cli", *words[1:]])
    return re.sub(r"[^a-z0-9]+", "-", prog.lower()).strip("-")


def render(parser: argparse.ArgumentParser, level: int = 2) -> list[str]:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        lines: list[str] = []
        top = len(parser.prog.split())
        for command in commands(parser):
            depth = len(command.prog.split()) - top  # a command's heading is under its parent's
            lines += [f"{'#' * min(level + depth, 6)} `{command.prog}` {{#{anchor(command.prog)}}}", ""]
            lines += ["```text", *command.format_help().rstrip().splitlines(), "```", ""]
        return lines
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


class CliReference(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            marker = MARKER.match(line.strip())
            if marker is None:
                out.append(line)
                continue
            module, function = (marker["target"] or DEFAULT).split(":")
            build_parser = getattr(importlib.import_module(module), function)
            out += render(build_parser(), int(marker["level"] or 2))
        return out


class CliReferenceExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:  # Python-Markdown's names
        md.preprocessors.register(CliReference(md), "posthog_async_cli_reference", 40)


def makeExtension(**kwargs: Any) -> CliReferenceExtension:
    return CliReferenceExtension(**kwargs)
