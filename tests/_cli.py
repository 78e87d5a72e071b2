"""Running the CLI as a user does: a subprocess against the offline PostHog in this process,
with the key, host and project in its environment (never on its command line)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from posthog_async.cli import main as cli_main
from posthog_async.testing import FakePostHog

from .conftest import API_KEY

BULK = "POST /api/projects/1/persons/bulk_delete/"
#: Where nobody listens: connections are refused.
NOWHERE = "http://127.0.0.1:9"


def write_ids(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


async def spawn(server: FakePostHog | None, *args: str, stdin: int | None = None,
                host: str | None = None, key: str | None = None,
                env: dict[str, str | None] | None = None, pass_fds: tuple[int, ...] = (),
                cwd: Path | None = None,
                preexec_fn: Callable[[], object] | None = None) -> asyncio.subprocess.Process:
    """The CLI in a subprocess; ``env`` values of ``None`` remove the variable."""
    base = {**os.environ, "POSTHOG_PERSONAL_API_KEY": key or (server.api_key if server else API_KEY),
            "POSTHOG_HOST": host or (server.url if server else NOWHERE), "POSTHOG_PROJECT_ID": "1"}
    base.pop("POSTHOG_ASYNC_REDIS_URL", None)
    merged = {name: value for name, value in {**base, **(env or {})}.items() if value is not None}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posthog_async.cli", *args, env=merged,
        stdin=stdin, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        pass_fds=pass_fds, cwd=cwd, preexec_fn=preexec_fn)


async def run(server: FakePostHog | None, *args: str, stdin_data: bytes | None = None,
              **kwargs: Any) -> tuple[int, str, str]:
    """Run to the end: (exit status, stdout, stderr)."""
    if stdin_data is not None:
        kwargs["stdin"] = asyncio.subprocess.PIPE
    proc = await spawn(server, *args, **kwargs)
    out, err = await proc.communicate(stdin_data)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def running(proc: asyncio.subprocess.Process) -> AsyncIterator[asyncio.subprocess.Process]:
    """The CLI process, killed on the way out if the test left it running."""
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stop_with(proc: asyncio.subprocess.Process, sig: int,
                    timeout: float = 20.0) -> tuple[str, float]:
    """Send ``sig`` and read to the end: (standard error, seconds the stop took)."""
    proc.send_signal(sig)
    started = time.monotonic()
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    return err.decode(), time.monotonic() - started


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the job")
        await asyncio.sleep(0.01)


def parse_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)`` in-process; it must be refused by argparse with exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    return captured.out + captured.err
