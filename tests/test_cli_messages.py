"""Stops, refusals and messages a probe found wrong (probe 17, B3, B4, F): ``persons lookup``
waiting on a silent input stops on one signal; a named pipe given as the journal is refused;
``persons list | head -1`` ends quietly; ``demo`` refuses options it would ignore; a project
key gets a hint; a resume with other options names them. The CLI runs in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from posthog_async.testing import FakePostHog

from ._cli import run, running, spawn, stop_with, write_ids
from .conftest import API_KEY


@pytest.fixture
async def srv() -> Any:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        yield server


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("source", ["fifo", "stdin"])
async def test_a_lookup_waiting_for_input_stops_on_one_signal(srv: FakePostHog, tmp_path: Path,
                                                              sig: signal.Signals,
                                                              source: str) -> None:
    """It read its input inside the event loop: one Ctrl-C was ignored (two were needed) and
    SIGTERM killed it without a word (exit 143)."""
    if source == "fifo":
        fifo = tmp_path / "ids.fifo"
        os.mkfifo(fifo)
        proc = await spawn(srv, "persons", "lookup", "--distinct-ids-file", str(fifo))
    else:  # a pipe nobody writes to (and nobody closes)
        proc = await spawn(srv, "persons", "lookup", "--distinct-ids-file", "-",
                           stdin=asyncio.subprocess.PIPE)
    async with running(proc):
        await asyncio.sleep(1.5)  # started, and waiting for its input
        err, took = await stop_with(proc, sig, timeout=10)
    assert proc.returncode == 130, err
    name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    assert f"{name}: stopping the lookup" in err and "interrupted" in err, err
    assert "Traceback" not in err and took < 5 and srv.stats.requests == 0


async def test_a_lookup_reads_a_named_pipe_when_its_writer_comes(srv: FakePostHog,
                                                                 tmp_path: Path) -> None:
    srv.seed_persons(3)
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    proc = await spawn(srv, "persons", "lookup", "--distinct-ids-file", str(fifo))
    async with running(proc):
        await asyncio.sleep(0.5)
        await asyncio.to_thread(lambda: fifo.write_bytes(b"user-1\nuser-9\n"))
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0 and out.decode().count("\n") == 1, err.decode()
    assert "found 1, not found 1" in err.decode()


@pytest.mark.parametrize("action", ["delete", "verify"])
async def test_a_named_pipe_as_the_journal_is_refused(srv: FakePostHog, tmp_path: Path,
                                                      action: str) -> None:
    """SQLite opening a named pipe waited for a writer forever, silently."""
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    fifo = tmp_path / "journal.fifo"
    os.mkfifo(fifo)
    proc = await spawn(srv, "persons", action, "--distinct-ids-file", str(source),
                       "--journal", str(fifo))
    async with running(proc):  # killed if it hangs
        _, raw_err = await asyncio.wait_for(proc.communicate(), 30)
    code, err = proc.returncode, raw_err.decode()
    assert code == 2 and f"the journal {fifo} is a named pipe (FIFO), not a regular file" in err
    assert srv.stats.requests == 0


async def test_a_listing_cut_by_its_reader_ends_quietly(srv: FakePostHog) -> None:
    """``persons list | head -1`` ended with "error: [Errno 32] Broken pipe" and exit 2."""
    srv.seed_persons(3000)  # far more than a pipe's buffer
    env = {**os.environ, "POSTHOG_PERSONAL_API_KEY": API_KEY, "POSTHOG_HOST": srv.url,
           "POSTHOG_PROJECT_ID": "1", "PY": sys.executable}
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", '"$PY" -m posthog_async.cli persons list --page-size 500 | head -1; '
        'echo "status ${PIPESTATUS[0]}" >&2', env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, raw_err = await asyncio.wait_for(proc.communicate(), 60)
    err = raw_err.decode()
    assert out.decode().count("\n") == 1 and out.startswith(b"{")
    assert "status 141" in err and "Broken pipe" not in err and "Traceback" not in err, err
    assert "error" not in err, err


@pytest.mark.parametrize("flags,named", [
    (["--host", "https://eu.posthog.com"], "--host"),
    (["--project-id", "5", "--redis-url", "redis://:pw@127.0.0.1:6390/0"],
     "--project-id, --redis-url"),
])
async def test_demo_refuses_options_it_would_ignore(flags: list[str], named: str) -> None:
    code, _, err = await run(None, "demo", *flags, "--persons", "10", "--erase", "2")
    assert code == 2 and f"{named} would be ignored" in err and "starting" not in err, err
    assert "pw@" not in err


async def test_a_project_key_is_refused_with_a_hint(srv: FakePostHog) -> None:
    """A ``phc_`` key got PostHog's bare 401 on every call."""
    code, _, err = await run(srv, "persons", "list", key="phc_abcdefghijklmnop")
    assert code == 2 and "project API key" in err and "personal API key" in err, err
    assert "phx_" in err and "phc_abcdefghijklmnop" not in err and srv.stats.requests == 0


async def test_a_resume_with_other_options_names_them(srv: FakePostHog, tmp_path: Path) -> None:
    """It printed the journal's options as a Python dict."""
    srv.seed_persons(3)
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--delete-events", "--chunk-size", "100")
    assert code == 0, err
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--resume", "--no-resolve")
    assert code == 2 and "{" not in err, err
    assert "--delete-events (delete_events): the journal's run had it, this one does not" in err
    assert "--no-resolve (resolve): this run has it, the journal's did not" in err
    assert "--chunk-size (chunk_size): 100 in the journal, 1000 in this run" in err
