"""A griffe extension (loaded by mkdocstrings, mkdocs.yml): the Sphinx roles some docstrings use
(``:class:`Secret```, ``:func:`~x.y```) are shown as code, as a reader of ``help()`` reads them,
instead of as literal role syntax."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|exc|mod|obj|const):`~?([^`]+)`")


class SphinxRolesAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(lambda m: f"`{m.group(1)}`", obj.docstring.value)
