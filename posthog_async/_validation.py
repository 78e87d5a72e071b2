"""Argument checks that run before any request, so bad input never costs a round trip."""

from __future__ import annotations

import uuid
from typing import Iterable, Sequence

__all__ = ["require_uuid", "require_text", "require_id_list", "require_choice", "exactly_one"]


def require_uuid(value: object, name: str = "id") -> str:
    """Return ``value`` as a canonical UUID string or raise ``ValueError`` naming the argument."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a UUID string, got {type(value).__name__}")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ValueError(f"{name} must be a UUID (a person's uuid), got {value!r}") from None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def require_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def require_id_list(
    values: Iterable[object], name: str, *, maximum: int, uuids: bool = False
) -> list[str]:
    """A non-empty list of at most ``maximum`` non-blank ids (UUIDs when ``uuids``)."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a list of ids, not a single string")
    out = list(values)
    if not out:
        raise ValueError(f"{name} must not be empty")
    if len(out) > maximum:
        raise ValueError(
            f"{name} has {len(out)} ids; the server accepts at most {maximum} in one call "
            "(use the *_all helpers to split larger lists)"
        )
    checked: list[str] = []
    for index, item in enumerate(out):
        if uuids:
            checked.append(require_uuid(item, f"{name}[{index}]"))
        else:
            checked.append(require_text(item, f"{name}[{index}]"))
    return checked


def require_choice(value: object, name: str, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (the enums of the API)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def exactly_one(names: Sequence[str], values: Sequence[object]) -> None:
    given = [n for n, v in zip(names, values) if v is not None]
    if len(given) != 1:
        raise ValueError(
            f"pass exactly one of {' or '.join(names)}"
            + (f" (got {', '.join(given)})" if given else "")
        )
