"""Client settings: where they come from (arguments, then environment) and how they are checked.

The personal API key is wrapped in :class:`Secret` as soon as it is read, so that no repr, log
line or exception of ours can show it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import _constants as C
from ._exceptions import ConfigurationError, UnsafeURLError
from ._validation import require_project_id

__all__ = ["Secret", "ClientConfig", "RequestOptions", "NO_OPTIONS", "resolve_config",
           "resolve_project_id", "check_options"]


class Secret:
    """A string that never prints itself. ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:  # pickling would leak it
        raise TypeError("Secret cannot be pickled")


@dataclass(frozen=True)
class ClientConfig:
    """Everything the transport needs, validated once at construction."""

    api_key: Secret = field(repr=False)
    host: str
    timeout: float
    max_connections: int
    max_concurrency: int
    max_retries: int
    max_retry_after: float
    #: The whole call's bound (slot, pacing, attempts, backoff), ``None`` for none.
    deadline: float | None = None
    #: The longest wait for a rate-limit bucket before the call is refused, ``None`` for none.
    max_wait: float | None = None

    @property
    def key_fingerprint(self) -> str:
        """A one-way name for (host, key): how a shared rate limiter tells keys apart.

        128 bits of SHA-256; personal API keys are high-entropy, so it cannot be reversed.
        """
        material = b"posthog-async/v1\0" + self.host.encode() + b"\0" + self.api_key.reveal().encode()
        return hashlib.sha256(material).hexdigest()[:32]

    @property
    def origin(self) -> tuple[str, str]:
        """(scheme, netloc) of the host: the only place the key may be sent."""
        parts = urlsplit(self.host)
        return parts.scheme, parts.netloc.lower()

    @property
    def base_path(self) -> str:
        """Path prefix of a self-hosted install (``""`` for PostHog Cloud)."""
        return urlsplit(self.host).path.rstrip("/")

    def check_same_origin(self, url: str) -> None:
        """Raise :class:`UnsafeURLError` unless ``url`` is on the configured scheme, host and prefix."""
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc.lower()) != self.origin or not parts.path.startswith(
            self.base_path + "/"
        ):
            shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
            raise UnsafeURLError(
                f"refusing to follow {shown!r}: it is not on the configured host {self.host!r}, "
                "and following it would send the API key there"
            )


@dataclass(frozen=True)
class RequestOptions:
    """Per-view overrides of the client's settings (``ph.with_options(...)``); ``None`` keeps
    the client's own. ``timeout`` bounds one attempt, ``deadline`` the whole call, ``max_wait``
    the wait for the call's rate-limit bucket (beyond it the call is refused at once with a
    ``RateLimitWaitError``), ``max_retries`` the retries after the first attempt. For
    ``deadline`` and ``max_wait``, :data:`NO_LIMIT` lifts a limit the client sets."""

    timeout: float | None = None
    deadline: float | None = None
    max_retries: int | None = None
    max_wait: float | None = None


#: ``with_options(deadline=NO_LIMIT)``: no deadline for this view, whatever the client's.
NO_LIMIT = float("inf")
#: A view without overrides (one shared instance: the transport recognises it at a glance).
NO_OPTIONS = RequestOptions()


def check_options(*, timeout: float | None = None, deadline: float | None = None,
                  max_retries: int | None = None, max_wait: float | None = None) -> None:
    """Raise :class:`ConfigurationError` for a value no call could use."""
    if timeout is not None:
        _positive("timeout", timeout)
    if deadline is not None:
        _positive("deadline", deadline)
    if max_retries is not None:
        _positive("max_retries", max_retries, allow_zero=True)
    if max_wait is not None:
        _positive("max_wait", max_wait, allow_zero=True)


def _normalise_host(host: str) -> str:
    host = host.strip().rstrip("/")
    parts = urlsplit(host)
    if "@" in parts.netloc:  # user:password@host: refused, and never shown
        raise ConfigurationError(
            f"host must not hold credentials ({parts.scheme}://<redacted>@"
            f"{parts.netloc.rpartition('@')[2]}): PostHog authenticates with the personal API "
            "key alone; remove the user:password@ part"
        )
    if not host.isprintable() or any(char.isspace() for char in host):
        raise ConfigurationError(f"host must not hold spaces or control characters, got {host!r}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"host must be an absolute http(s) URL such as {C.DEFAULT_HOST!r}, got {host!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError("host must not carry a query string or fragment")
    return host


def _check_key(key: str) -> str:
    """The key as sent in the ``Authorization`` header: printable ASCII, no space inside.

    A key pasted with a line break or a stray character would fail every request in turn
    (aiohttp refuses a header holding a line break); say so at once, without showing it."""
    key = key.strip()
    bad = [char for char in key if not ("!" <= char <= "~")]
    if bad:
        kinds = sorted({"a line break" if char in "\r\n" else "a space" if char.isspace()
                        else "a non-ASCII character" if char.isprintable()
                        else "a control character" for char in bad})
        raise ConfigurationError(
            f"the personal API key holds {' and '.join(kinds)}, which no key does (a copy-paste "
            f"slip?); set {C.ENV_API_KEY} to the key alone"
        )
    return key


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def resolve_config(
    *,
    api_key: str | None,
    host: str | None,
    timeout: float,
    max_connections: int,
    max_concurrency: int,
    max_retries: int,
    max_retry_after: float,
    deadline: float | None = None,
    max_wait: float | None = None,
) -> ClientConfig:
    """Merge arguments with ``POSTHOG_*`` environment variables and validate the result."""
    key = api_key if api_key is not None else os.environ.get(C.ENV_API_KEY)
    if not key or not key.strip():
        raise ConfigurationError(
            "no personal API key: pass api_key=... or set the "
            f"{C.ENV_API_KEY} environment variable (keys start with 'phx_')"
        )
    checked_key = _check_key(key)
    resolved_host = _normalise_host(host or os.environ.get(C.ENV_HOST) or C.DEFAULT_HOST)
    _positive("timeout", timeout)
    _positive("max_connections", max_connections)
    _positive("max_concurrency", max_concurrency)
    _positive("max_retries", max_retries, allow_zero=True)
    _positive("max_retry_after", max_retry_after, allow_zero=True)
    check_options(deadline=deadline, max_wait=max_wait)
    return ClientConfig(
        api_key=Secret(checked_key),
        host=resolved_host,
        timeout=float(timeout),
        max_connections=int(max_connections),
        max_concurrency=int(max_concurrency),
        max_retries=int(max_retries),
        max_retry_after=float(max_retry_after),
        deadline=None if deadline is None else float(deadline),
        max_wait=None if max_wait is None else float(max_wait),
    )


def resolve_project_id(project_id: str | int | None) -> str | None:
    """The default project: the argument, else ``POSTHOG_PROJECT_ID``, else none."""
    pid = project_id if project_id is not None else os.environ.get(C.ENV_PROJECT_ID)
    if pid is None or str(pid).strip() == "":
        return None
    try:
        return require_project_id(pid, "POSTHOG_PROJECT_ID" if project_id is None else "project_id")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
