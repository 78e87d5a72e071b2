"""One exception hierarchy, keyed by HTTP status code.

Every error carries the method and the URL *path* (never the query string nor the key) and, for
HTTP errors, the server's message. PostHog's usual error body is
``{"type": "validation_error", "code": "invalid_input", "detail": "...", "attr": "ids"}``, but
some endpoints answer ``{"error": "..."}``, ``{"message": "...", "detail": ...}``, a body with
``code`` and ``detail`` swapped, or nothing at all; all of them give a readable message.

A server's words are redacted of the API key before anything keeps them (message, ``detail``,
``body``, ``headers``): some proxies and firewalls echo the request's ``Authorization`` header
in their error pages, and an error is shown, logged, journaled and reported.

The tree::

    PostHogError
    ├── ConfigurationError (also a ValueError)
    ├── UnsafeURLError
    ├── RateLimiterUnavailableError
    └── APIError
        ├── APIConnectionError
        │   └── APITimeoutError
        │       └── DeadlineExceededError
        ├── UnexpectedResponseError
        ├── WaitAbandonedError              (a stop ended its wait: not sent again)
        └── APIStatusError
            ├── RedirectError                   3xx
            ├── BadRequestError                 400
            ├── AuthenticationError             401
            ├── PermissionDeniedError           403
            │   └── PersonalAPIKeyNotAllowedError
            ├── NotFoundError                   404
            ├── MethodNotAllowedError           405
            ├── ConflictError                   409
            ├── RateLimitError                  429
            │   └── RateLimitWaitError          (raised before sending)
            └── InternalServerError             5xx
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import msgspec

__all__ = [
    "PostHogError", "ConfigurationError", "UnsafeURLError", "RateLimiterUnavailableError",
    "APIError", "APIConnectionError", "APITimeoutError", "DeadlineExceededError",
    "UnexpectedResponseError", "WaitAbandonedError", "APIStatusError", "RedirectError", "BadRequestError",
    "AuthenticationError", "PermissionDeniedError", "PersonalAPIKeyNotAllowedError",
    "NotFoundError", "MethodNotAllowedError", "ConflictError", "RateLimitError",
    "RateLimitWaitError",
    "InternalServerError", "make_status_error",
]

#: PostHog's 403 for endpoints that no personal API key may call (``APIScopePermission``).
KEY_NOT_ALLOWED_DETAIL = "This action does not support personal API key access"
_THROTTLE_DETAIL = re.compile(r"Expected available in (\d+(?:\.\d+)?) seconds?")


class PostHogError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(PostHogError, ValueError):
    """The client was built with missing or invalid settings (no key, a bad host...)."""


class UnsafeURLError(PostHogError):
    """A URL the server handed us (a ``next`` link) points away from the configured host.

    We refuse to follow it rather than send the personal API key to another host.
    """


class RateLimiterUnavailableError(PostHogError):
    """The shared rate limiter could not reach Redis and was told not to pace locally
    (``RedisRateLimiter(on_error="raise")``). The request was not sent."""


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
    """An attempt did not complete within its ``timeout`` (one attempt, not the whole call)."""


class DeadlineExceededError(APITimeoutError):
    """The whole call did not complete within its ``deadline``.

    The deadline bounds everything a call does: waiting for a concurrency slot, attempts,
    backoff between them. ``waited`` is how long the call had run, ``attempts`` how many were
    sent, ``waiting_for`` what it was doing when the deadline came, and ``last_error`` the
    error of the attempt before, if any. ``maybe_processed`` is true when an attempt whose
    answer never came may have reached the server.
    """

    def __init__(self, message: str, *, method: str, path: str, deadline: float, waited: float,
                 attempts: int, waiting_for: str, last_error: APIError | None = None,
                 maybe_processed: bool = True) -> None:
        super().__init__(message, method=method, path=path, maybe_processed=maybe_processed)
        self.deadline, self.waited, self.attempts = deadline, waited, attempts
        self.waiting_for, self.last_error = waiting_for, last_error


class UnexpectedResponseError(APIError):
    """A 2xx whose body is not what the endpoint answers. ``body`` holds it as JSON.

    A read raises this when its body is not the documented shape. A call that changed state is
    never reported failed because of its answer's *shape*; it raises this only when its body is
    not JSON at all where a typed answer was due (a proxy's or a login page): that is not
    PostHog's answer, and the call may or may not have reached PostHog (``maybe_processed``;
    ``body`` is then ``None``, as such a page may echo the request's headers).
    """

    def __init__(self, message: str, *, method: str, path: str, status_code: int, body: Any,
                 maybe_processed: bool = False) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code
        self.body = body
        self.maybe_processed = maybe_processed


class WaitAbandonedError(APIError):
    """A call gave up a wait of the transport (a bucket's pacing or hold, a retry's sleep)
    because its run was asked to stop (``_admission.WaitStop``): it was not sent (again).
    ``maybe_processed``: an earlier attempt of it may have done its work on the server."""

    def __init__(self, message: str, *, method: str, path: str, maybe_processed: bool) -> None:
        super().__init__(message, method=method, path=path)
        self.maybe_processed = maybe_processed


class APIStatusError(APIError):
    """The server answered with a non-success HTTP status.

    ``detail`` is the server's message whichever body shape carried it; ``code``, ``type`` and
    ``attr`` are set when the body has them.
    """

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
        code, detail = _str_or_none(fields.get("code")), server_message(body)
        if _looks_swapped(code, detail):
            code, detail = detail, code
        self.type: str | None = _str_or_none(fields.get("type"))
        self.code: str | None = code
        self.detail: str | None = detail
        self.attr: str | None = _str_or_none(fields.get("attr"))


class RedirectError(APIStatusError):
    """3xx: the server sent us elsewhere. Never followed: following would send the API key to
    wherever ``Location`` points.

    ``location`` is the target's ``scheme://host[:port]`` (its path and query are left out:
    they may hold tokens), ``None`` when there was no ``Location`` or it was relative (a path
    on the configured host). The cause is a wrong host setting (``http://`` for ``https://``,
    an old domain) or a login proxy in front of PostHog; no retry heals it.
    """

    location: str | None = None


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


class PersonalAPIKeyNotAllowedError(PermissionDeniedError):
    """403: PostHog refuses personal API keys on this endpoint, whatever their scopes.

    No key can be given a scope for it (``APIScopePermission``); retrying cannot help.
    """


class NotFoundError(APIStatusError):
    """404: the project, person or object does not exist (or the key cannot see it)."""


class MethodNotAllowedError(APIStatusError):
    """405: the endpoint does not support this HTTP method."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the object's current state."""


class RateLimitError(APIStatusError):
    """429: throttled. ``retry_after`` is the server's wait in seconds, when it said one.

    It comes from the ``Retry-After`` header, else from the detail ("Expected available in N
    seconds."), which older servers send without the header.
    """

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if retry_after is None and self.detail:
            match = _THROTTLE_DETAIL.search(self.detail)
            retry_after = float(match.group(1)) if match else None
        self.retry_after = retry_after


class RateLimitWaitError(RateLimitError):
    """429 raised by the client itself: the call was **not sent**, because waiting for its
    rate-limit bucket would take longer than the call may wait.

    ``retry_after`` is that wait in seconds (when to try again), ``bucket`` the bucket, and
    ``bound`` what the wait would have exceeded: ``"max_wait"`` (load shedding: a web app
    turns this into a 503 with ``Retry-After``), ``"deadline"`` (what is left of the call's
    deadline) or ``"max_retry_after"`` (the longest wait the client sleeps through: a
    ``Retry-After`` hold or a spent window; the deletion job waits those out itself, and
    stops when asked to while it waits). It is a :class:`RateLimitError`, so one ``except``
    handles the server's 429 and the client's alike.
    """

    def __init__(self, message: str, *, method: str, path: str, retry_after: float, bucket: str,
                 bound: str, limit: float) -> None:
        super().__init__(message, method=method, path=path, status_code=429,
                         retry_after=retry_after)
        self.bucket, self.bound, self.limit = bucket, bound, limit


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


def _looks_swapped(code: str | None, detail: str | None) -> bool:
    """PostHog's persons update 400s put the sentence in ``code`` and the code in ``detail``."""
    return bool(code and detail and " " in code and " " not in detail)


def server_message(body: Any) -> str | None:
    """The human message of an error body: ``detail``, else ``error``, else ``message``, else text.

    A JSON body with none of the three (``{"non_field_errors": [...]}``) is shown as its JSON
    text, cut to 500 characters: whatever the server said beats no message at all."""
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else msgspec.json.encode(value).decode()
    if isinstance(body, str):
        return body or None
    if body is None:
        return None
    return msgspec.json.encode(body).decode()[:500]


#: A personal API key anywhere in a server's words (the configured one is redacted exactly).
_KEY_TOKEN = re.compile(rb"phx_[A-Za-z0-9_-]{8,}")
REDACTED = "<redacted>"


def _redacted(raw: bytes, secrets: Iterable[str]) -> bytes:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        raw = raw.replace(secret.encode(), REDACTED.encode())
    return _KEY_TOKEN.sub(REDACTED.encode(), raw)


def _redacted_headers(headers: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    secrets = list(secrets)
    return {name: _redacted(value.encode("utf-8", "surrogateescape"), secrets).decode(
        "utf-8", "surrogateescape") for name, value in headers.items()}


def _redirect_target(location: str | None, path: str) -> str | None:
    """``scheme://host[:port]`` of a ``Location`` (relative: the configured host, unnamed)."""
    if not location:
        return None
    parts = urlsplit(urljoin("http://configured-host" + path, location.strip()))
    if parts.netloc.rpartition("@")[2] == "configured-host":
        return "the same host"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
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
    secrets: Iterable[str] = (),
) -> APIStatusError:
    """Build the exception that matches ``status_code``, with a message a human can act on.

    ``secrets`` (the API key as sent) are redacted from the body and the headers before
    anything reads them, and so is any other ``phx_...`` token."""
    secrets = list(secrets)
    body = _parse_body(_redacted(raw_body, secrets))
    headers = _redacted_headers(headers, secrets)
    if 300 <= status_code < 400:
        return _redirect_error(status_code, method, path, body, headers)
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    kwargs: dict[str, Any] = dict(
        method=method, path=path, status_code=status_code, body=body, headers=headers
    )
    error = (RateLimitError("", retry_after=retry_after, **kwargs) if cls is RateLimitError
             else cls("", **kwargs))
    if cls is PermissionDeniedError and error.detail == KEY_NOT_ALLOWED_DETAIL:
        error = PersonalAPIKeyNotAllowedError("", **kwargs)
    detail = error.detail or ""
    if error.attr:
        detail += f" (attr: {error.attr})"
    if isinstance(error, PersonalAPIKeyNotAllowedError):
        detail += ("; PostHog does not let personal API keys call this endpoint, so no scope or "
                   "retry can help")
    error.message = f"{method} {path} -> {status_code}" + (f": {detail}" if detail else "")
    error.args = (error.message,)
    return error


def _redirect_error(status_code: int, method: str, path: str, body: Any,
                    headers: Mapping[str, str]) -> RedirectError:
    location = next((value for name, value in headers.items() if name.lower() == "location"), None)
    target = _redirect_target(location, path)
    where = f"a redirect to {target}" if target else "a redirect without a Location"
    error = RedirectError(
        f"{method} {path} -> {status_code}: {where}, not followed (the API key goes only to the "
        "configured host); check the host setting (https://, the right domain) or what stands "
        "between you and PostHog", method=method, path=path, status_code=status_code, body=body,
        headers=headers)
    error.location = target if target != "the same host" else None
    return error
