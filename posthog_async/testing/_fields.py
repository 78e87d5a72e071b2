"""DRF's field coercions and their messages, so serializer-backed endpoints reject input as PostHog does.

Each function returns the coerced value or raises ``FieldError``; ``field_error`` turns that into
the 400 drf-exceptions-hog sends (``attr`` = the field, ``code`` = DRF's code).
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ._errors import FakeAPIError, validation_error

__all__ = [
    "FieldError", "field_error", "to_int", "to_bool", "to_char", "to_choice", "to_datetime",
    "to_uuid", "to_list", "iso", "parse_iso", "INT32_MAX",
]

INT32_MAX = 2_147_483_647
_TRUE = {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1", 1}
_FALSE = {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0", 0}
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")
_DATETIME_FORMAT = "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]"


class FieldError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def field_error(attr: str | None, err: FieldError) -> FakeAPIError:
    return validation_error(err.message, attr=attr, code=err.code)


def _not_null(value: Any, allow_null: bool) -> bool:
    """True when the value is null and allowed; raises when null is not allowed."""
    if value is None:
        if allow_null:
            return True
        raise FieldError("null", "This field may not be null.")
    return False


def to_int(value: Any, *, minimum: int | None = -INT32_MAX - 1, maximum: int | None = INT32_MAX,
           allow_null: bool = False) -> int | None:
    """``IntegerField``: ``"2"`` and ``2.0`` pass, ``True`` and ``1.5`` do not; model bounds apply."""
    if _not_null(value, allow_null):
        return None
    if isinstance(value, str) and len(value) > 1000:
        raise FieldError("max_string_length", "String value too large.")
    try:
        number = int(_DECIMAL_TAIL.sub("", str(value)))
    except (ValueError, TypeError):
        raise FieldError("invalid", "A valid integer is required.") from None
    if maximum is not None and number > maximum:
        raise FieldError("max_value", f"Ensure this value is less than or equal to {maximum}.")
    if minimum is not None and number < minimum:
        raise FieldError("min_value", f"Ensure this value is greater than or equal to {minimum}.")
    return number


def to_bool(value: Any, *, allow_null: bool = False) -> bool | None:
    if allow_null and value in ("null", "Null", "NULL", "", None):
        return None
    try:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    except TypeError:  # unhashable (a list or an object)
        pass
    raise FieldError("invalid", "Must be a valid boolean.")


def to_char(value: Any, *, allow_blank: bool = False, allow_null: bool = False,
            max_length: int | None = None) -> str | None:
    """``CharField``: numbers become strings, booleans and containers are refused, whitespace trimmed."""
    if _not_null(value, allow_null):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FieldError("invalid", "Not a valid string.")
    text = str(value).strip()
    if not text and not allow_blank:
        raise FieldError("blank", "This field may not be blank.")
    if max_length is not None and len(text) > max_length:
        raise FieldError("max_length", f"Ensure this field has no more than {max_length} characters.")
    return text


def to_choice(value: Any, choices: Iterable[str], *, allow_null: bool = False) -> str | None:
    if _not_null(value, allow_null):
        return None
    text = str(value)
    if text not in set(choices):
        raise FieldError("invalid_choice", f'"{value}" is not a valid choice.')
    return text


def to_datetime(value: Any, *, allow_null: bool = False) -> str | None:
    """``DateTimeField``: Django's ISO parsing; naive times are UTC; answered as ISO with ``Z``."""
    if _not_null(value, allow_null):
        return None
    parsed = parse_iso(value) if isinstance(value, str) else None
    if parsed is None:
        raise FieldError("invalid", f"Datetime has wrong format. Use one of these formats instead: "
                                    f"{_DATETIME_FORMAT}.")
    return iso(parsed)


def to_uuid(value: Any) -> str:
    try:
        return str(uuidlib.UUID(hex=value) if isinstance(value, str) else uuidlib.UUID(int=value))
    except (ValueError, TypeError):
        raise FieldError("invalid", "Must be a valid UUID.") from None


def to_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise FieldError("not_a_list", f'Expected a list of items but got type "{_type_name(value)}".')
    return value


def parse_iso(text: str) -> datetime | None:
    """``datetime.fromisoformat``, with ``Z`` accepted on Python 3.10 too; naive means UTC."""
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    """DRF's datetime rendering: ISO 8601, UTC written ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _type_name(value: Any) -> str:
    return {str: "str", int: "int", float: "float", bool: "bool", dict: "dict",
            type(None): "NoneType"}.get(type(value), type(value).__name__)
