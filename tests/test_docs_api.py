"""The public API is documented: every name in ``__all__`` of every public module has a
docstring (as the reference pages read it: through griffe, which mkdocstrings uses, so a
constant's docstring is the string literal after it), and appears in the reference.

A public module is one whose dotted path has no part starting with ``_``. A new public module
needs an ``__all__``; a new public name needs a docstring and a ``::: path`` line in a page of
``docs/reference/`` (the build then renders it; ``zensical build --strict`` fails on a path that
does not exist).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import griffe
import pytest

import posthog_async

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.MULTILINE)
#: Public modules without ``__all__``, each with the reason.
NO_ALL = {
    "posthog_async.testing.pytest_plugin": "a pytest plugin loaded by entry point, never imported by "
    "users; its fixtures are documented in its module docstring (docs/reference/testing.md)",
}


def public_modules() -> Iterator[ModuleType]:
    yield posthog_async
    for info in pkgutil.walk_packages(posthog_async.__path__, "posthog_async."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


PUBLIC = {m.__name__: m for m in public_modules()}


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    loaded = griffe.load("posthog_async", search_paths=[str(ROOT)], resolve_aliases=True,
                         resolve_external=False)
    assert isinstance(loaded, griffe.Module)
    return loaded


def public_names() -> list[tuple[str, str]]:
    return [(module, name) for module, mod in PUBLIC.items() for name in getattr(mod, "__all__", ())]


def test_every_public_module_declares_its_names() -> None:
    missing = [m for m, mod in PUBLIC.items() if not hasattr(mod, "__all__") and m not in NO_ALL]
    assert not missing, f"public modules without __all__ (declare their public names): {missing}"
    for module, name in public_names():
        assert hasattr(PUBLIC[module], name), f"{module}.__all__ names {name!r}, which does not exist"


def docstring_of(package: griffe.Module, module: str, name: str) -> str:
    obj: Any = package[f"{module.removeprefix('posthog_async.')}.{name}" if module != "posthog_async"
                       else name]
    if isinstance(obj, griffe.Alias):
        obj = obj.final_target
    return (obj.docstring.value if obj.docstring else "").strip()


def test_every_public_name_has_a_docstring(package: griffe.Module) -> None:
    undocumented = [f"{module}.{name}" for module, name in public_names()
                    if not docstring_of(package, module, name)]
    assert not undocumented, (
        "public names without a docstring (a class or function: its docstring; a constant or type "
        f"alias: a string literal on the line after it): {undocumented}")


def documented_objects() -> list[Any]:
    """Every object a ``::: path`` line of the reference renders (a module: its members too)."""
    found: list[Any] = []
    for page in sorted(REFERENCE.glob("*.md")):
        for path in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            module_path, obj = path, None
            while module_path not in PUBLIC and "." in module_path:
                module_path = module_path.rsplit(".", 1)[0]
            obj = PUBLIC.get(module_path) or importlib.import_module(module_path)
            for attr in path[len(module_path):].strip(".").split(".") if path != module_path else ():
                obj = getattr(obj, attr)
            found.append(obj)
            if isinstance(obj, ModuleType):
                found += [getattr(obj, n) for n in getattr(obj, "__all__", ())]
    return found


def test_every_public_name_is_in_the_reference() -> None:
    documented = documented_objects()
    missing = [f"{module}.{name}" for module, name in public_names()
               if not any(getattr(PUBLIC[module], name) is obj for obj in documented)]
    assert not missing, f"public names no page of docs/reference/ renders (add a '::: path' line): {missing}"
