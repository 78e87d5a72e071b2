"""One exception hierarchy, keyed by HTTP status code.

Every error carries the method and the URL *path* (never the query string's secrets nor the key)
and, for HTTP errors, the parsed JSON error body PostHog sends::

    {"type": "validation_error", "code": "invalid_input", "detail": "...", "attr": "ids"}
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

__all__ = [
    "PostHogError",
    "ConfigurationError",
    "UnsafeURLError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "MethodNotAllowedError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "make_status_error",
]


class PostHogError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(PostHogError, ValueError):
    """The client was built with missing or invalid settings (no key, a bad host...)."""


class UnsafeURLError(PostHogError):
    """A URL the server handed us (a ``next`` link) points away from the configured host.

    We refuse to follow it rather than send the personal API key to another host.
    """


class APIError(PostHogError):
    """An API call failed. ``method`` and ``path`` say which one."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path


class APIConnectionError(APIError):
    """The server could not be reached or dropped the connection.

    ``maybe_processed`` is false only when the request certainly never reached the server
    (the connection could not be opened); only then is a non-idempotent call retried.
    """

    def __init__(self, message: str, *, method: str, path: str, maybe_processed: bool = True) -> None:
        super().__init__(message, method=method, path=path)
        self.maybe_processed = maybe_processed


class APITimeoutError(APIConnectionError):
    """The request did not complete within its timeout."""


class APIStatusError(APIError):
    """The server answered with a non-success HTTP status."""

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status_code: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})
        fields = body if isinstance(body, dict) else {}
        self.type: str | None = _str_or_none(fields.get("type"))
        self.code: str | None = _str_or_none(fields.get("code"))
        self.detail: str | None = _str_or_none(fields.get("detail") or fields.get("message"))
        self.attr: str | None = _str_or_none(fields.get("attr"))


class BadRequestError(APIStatusError):
    """400: the request was invalid. ``attr`` names the offending field when the server says."""


class AuthenticationError(APIStatusError):
    """401: the personal API key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks a scope or access to the project. ``missing_scope`` when the body names it."""

    @property
    def missing_scope(self) -> str | None:
        detail = self.detail or ""
        marker = "scope '"
        if marker in detail:
            return detail.split(marker, 1)[1].split("'", 1)[0]
        return None


class NotFoundError(APIStatusError):
    """404: the project, person or object does not exist (or the key cannot see it)."""


class MethodNotAllowedError(APIStatusError):
    """405: the endpoint does not support this HTTP method."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the object's current state."""


class RateLimitError(APIStatusError):
    """429: throttled. ``retry_after`` is the server's wait in seconds, when it sent one."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    429: RateLimitError,
}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw[:500].decode("utf-8", "replace")


def make_status_error(
    *,
    status_code: int,
    method: str,
    path: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the exception that matches ``status_code``, with a message a human can act on."""
    body = _parse_body(raw_body)
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("message") or "")
        if body.get("attr"):
            detail += f" (attr: {body['attr']})"
    elif isinstance(body, str):
        detail = body
    message = f"{method} {path} -> {status_code}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = dict(
        method=method, path=path, status_code=status_code, body=body, headers=headers
    )
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
