"""Argument checks that run before any request, so bad input never costs a round trip.

:func:`clean_id` is the one rule for what an id may be, used by the single calls, the bulk
helpers and the deletion job alike.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable, Sequence

from . import _constants as C

__all__ = [
    "InvalidIdError", "clean_id", "require_uuid", "require_person_id", "require_project_id",
    "require_text", "require_id_list", "require_choice", "exactly_one",
]


class InvalidIdError(ValueError):
    """An id that cannot name a person; the message says why (it never reaches the server)."""


def clean_id(raw: object, *, uuid: bool) -> str | None:
    """The id as the server should see it, ``None`` for a blank one; raise :class:`InvalidIdError`.

    Whitespace around it is removed. Refused: non-strings, ids longer than PostHog stores (400
    characters), line breaks, control or invisible characters (tabs, a byte-order mark,
    zero-width spaces), U+FFFD (the input was decoded with the wrong encoding), and, with
    ``uuid``, anything that is not a UUID (UUIDs come back canonical and lower-case).
    """
    if not isinstance(raw, str):
        raise InvalidIdError(f"not a string ({type(raw).__name__})")
    value = raw.strip()
    if not value:
        return None
    if len(value) > C.MAX_DISTINCT_ID_LENGTH:
        raise InvalidIdError(f"longer than {C.MAX_DISTINCT_ID_LENGTH} characters ({len(value)})")
    if not value.isprintable():
        if "\n" in value or "\r" in value:
            raise InvalidIdError("contains a line break (a CSV cell spanning lines holds more "
                                 "than one id?)")
        raise InvalidIdError("contains control or invisible characters")
    if "\ufffd" in value:
        raise InvalidIdError("contains U+FFFD: the input was decoded with the wrong encoding")
    if uuid:
        try:
            return str(uuidlib.UUID(value))
        except ValueError:
            raise InvalidIdError("not a valid UUID") from None
    return value


#: A UUID already in canonical form: accepted without parsing (the hot path of every call).
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def require_uuid(value: object, name: str = "id") -> str:
    """Return ``value`` as a canonical UUID string or raise ``ValueError`` naming the argument."""
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return value
    if isinstance(value, uuidlib.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a UUID string, got {type(value).__name__}")
    try:
        return str(uuidlib.UUID(value.strip()))
    except ValueError:
        raise ValueError(f"{name} must be a UUID, got {value!r}") from None


def require_person_id(value: object, name: str = "id") -> str:
    """A person's UUID or numeric ``id``: the two forms PostHog accepts in a path.

    Distinct ids are not person ids; PostHog answers 400 for them, so we refuse them here.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a person UUID or numeric id, got a bool")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return value.strip()
    try:
        return require_uuid(value, name)
    except ValueError:
        raise ValueError(
            f"{name} must be a person's UUID or numeric id, got {value!r} (for a distinct id, "
            "use persons.list(distinct_id=...) or persons.batch_by_distinct_ids)"
        ) from None


def require_project_id(value: object, name: str = "project id") -> str:
    """A project (environment) id as PostHog routes it: ASCII digits, or ``@current`` for the
    key's current project. PostHog answers any other value with 404 "Project not found."
    (``int()`` in posthog/api/routing.py), which would look like a missing project."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if text == "@current" or (text.isascii() and text.isdigit()):
        return text
    raise ValueError(f"{name} must be a number (or @current), got {value!r}")


def require_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def require_id_list(
    values: Iterable[object], name: str, *, maximum: int, uuids: bool = False
) -> list[str]:
    """A non-empty list of at most ``maximum`` valid ids (see :func:`clean_id`)."""
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
        try:
            value = clean_id(item, uuid=uuids)
        except InvalidIdError as exc:
            raise ValueError(f"{name}[{index}] = {item!r:.80}: {exc}") from None
        if value is None:
            raise ValueError(f"{name}[{index}] is blank")
        checked.append(value)
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
