"""PostHog's error answers, in every shape the real server sends them.

The standard shape is drf-exceptions-hog's ``{"type", "code", "detail", "attr"}``; some PostHog
views answer off-shape (``{"error": ...}``, swapped ``code``/``detail``, empty bodies), and the fake
reproduces those too, because clients must cope with them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FakeAPIError", "validation_error", "not_found", "permission_denied", "server_error",
    "method_not_allowed", "parse_error", "unsupported_media_type", "swapped_required",
    "error_body", "NO_PERSONAL_KEYS", "not_a_dict",
]

#: APIScopePermission's answer for actions that declare no scope.
NO_PERSONAL_KEYS = "This action does not support personal API key access"


class FakeAPIError(Exception):
    """Raised by a handler to answer with PostHog's standard error shape.

    ``FakeAPIError.raw`` builds one with any body (or none), for the off-shape answers.
    """

    def __init__(self, status: int, type: str, code: str, detail: str, attr: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body: Any = {"type": type, "code": code, "detail": detail, "attr": attr}
        self.headers = headers or {}

    @classmethod
    def raw(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> FakeAPIError:
        err = cls(status, "", "", "")
        err.body = body
        err.headers = headers or {}
        return err


def validation_error(detail: str, attr: str | None = None, code: str = "invalid_input") -> FakeAPIError:
    """A DRF ``ValidationError`` (its code ``invalid`` is renamed ``invalid_input`` by the handler)."""
    return FakeAPIError(400, "validation_error", "invalid_input" if code == "invalid" else code,
                        detail, attr)


def not_found(detail: str = "Not found.") -> FakeAPIError:
    return FakeAPIError(404, "invalid_request", "not_found", detail)


def permission_denied(detail: str) -> FakeAPIError:
    return FakeAPIError(403, "authentication_error", "permission_denied", detail)


def server_error() -> FakeAPIError:
    """What drf-exceptions-hog answers for an exception that is not a DRF one."""
    return FakeAPIError(500, "server_error", "error", "A server error occurred.")


def method_not_allowed(method: str, detail: str | None = None) -> FakeAPIError:
    return FakeAPIError(405, "invalid_request", "method_not_allowed",
                        detail or f'Method "{method}" not allowed.')


def parse_error(detail: str) -> FakeAPIError:
    return FakeAPIError(400, "invalid_request", "parse_error", detail)


def unsupported_media_type(media_type: str) -> FakeAPIError:
    return FakeAPIError(415, "invalid_request", "unsupported_media_type",
                        f'Unsupported media type "{media_type}" in request.')


def swapped_required(attr: str) -> FakeAPIError:
    """PersonViewSet's hand-built 400 for update/update_property, with code and detail swapped."""
    return FakeAPIError.raw(400, {"attr": attr, "code": "This field is required.", "detail": "required",
                                  "type": "validation_error"})


def error_body(status: int, message: str) -> FakeAPIError:
    """The ``{"error": ...}`` answers of properties_at_time and sharing."""
    return FakeAPIError.raw(status, {"error": message})


def not_a_dict(value: Any) -> FakeAPIError:
    """A JSON body that is not an object: DRF serializers say so (views reading ``request.data.get``
    would crash with a 500 instead; the fake never answers 500 for junk, so it says this too)."""
    return validation_error(f"Invalid data. Expected a dictionary, but got {_py_type(value)}.")


def _py_type(value: Any) -> str:
    return {list: "list", str: "str", int: "int", float: "float", bool: "bool",
            type(None): "NoneType"}.get(type(value), type(value).__name__)
