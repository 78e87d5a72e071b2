"""Where a shared rate limiter's Redis is, said without its password, and why it failed.

Kept apart from ``RedisRateLimiter`` because these are what its logs and errors print: the one
place to check that no credential of the Redis URL is ever shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["client_location", "failure_reason", "redis_location"]


def redis_location(url: str) -> str:
    """``redis://user:secret@host:6379/0`` -> ``redis://host:6379/0``: no password in logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable Redis URL>"
    if not parts.scheme:
        return "<unparsable Redis URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def client_location(client: Any) -> str:
    """Where a ready-made redis-py client connects (host, port, db), or its type."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "host" in kwargs:
        return f"redis://{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return type(client).__name__


def failure_reason(exc: BaseException, timeout: float) -> str:
    """What went wrong, in words (a bare timeout says how long it waited)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g}s"
    return f"{type(exc).__name__}: {exc}"
