"""A griffe extension (loaded by mkdocstrings, mkdocs.yml): the reStructuredText some docstrings
use reads as a reader of ``help()`` reads it, not as literal syntax: Sphinx roles
(``:class:`Secret```, ``:func:`~x.y```) become code, and the ``::`` that opens an indented
example becomes ``:`` (the indented block is code in Markdown already)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|exc|mod|obj|const):`~?([^`]+)`")
LITERAL = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(lambda m: f"`{m.group(1)}`", obj.docstring.value)
            obj.docstring.value = LITERAL.sub(":", text)
