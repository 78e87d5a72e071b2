"""The public surface: ``__all__`` is sorted, every name exists, and the types public signatures
use are exported too (httpx's exported-members test)."""

from __future__ import annotations

import inspect
import typing

import posthog_async
from posthog_async import AsyncPostHog, ScopedPostHog
from posthog_async.resources import (
    Integrations,
    Organizations,
    PersonalAPIKeys,
    Persons,
    Projects,
    PropertyDefinitions,
    SessionRecordings,
    Subscriptions,
    Users,
)
from posthog_async.resources.persons import PersonActors, PersonVerification
from posthog_async.resources.query import Query


def test_all_is_sorted_and_complete() -> None:
    public = sorted((name for name in vars(posthog_async)
                     if not name.startswith("_") and name[0].isupper()), key=str.casefold)
    assert posthog_async.__all__ == sorted(posthog_async.__all__, key=str.casefold)
    assert set(public) <= set(posthog_async.__all__), set(public) - set(posthog_async.__all__)
    for name in posthog_async.__all__:
        assert getattr(posthog_async, name) is not None, name


def _names_in(annotation: object) -> set[str]:
    found: set[str] = set()
    origin = typing.get_origin(annotation)
    if origin is not None:
        for arg in typing.get_args(annotation):
            found |= _names_in(arg)
        return found
    if isinstance(annotation, typing.TypeVar):
        return found
    name = getattr(annotation, "__name__", None)
    module = getattr(annotation, "__module__", "")
    if name and module.startswith("posthog_async"):
        found.add(name)
    return found


def test_types_in_public_signatures_are_exported() -> None:
    missing: set[str] = set()
    classes = (AsyncPostHog, ScopedPostHog, Persons, PersonActors, PropertyDefinitions,
               Subscriptions, Users, SessionRecordings, Integrations, Organizations,
               PersonalAPIKeys, Projects, PersonVerification, Query)
    exported = set(posthog_async.__all__) | {c.__name__ for c in classes}
    for cls in classes:
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not callable(member):
                continue
            try:
                hints = typing.get_type_hints(member)
            except (NameError, TypeError):
                continue
            for hint in hints.values():
                missing |= _names_in(hint) - exported
    assert not missing, f"public signatures use types that are not exported: {sorted(missing)}"
