"""A stop reaches the waits inside the transport: SIGTERM or one Ctrl-C ends a deletion job
whose chunks wait out a ``Retry-After`` the client sleeps through (at most ``max_retry_after``,
120 s) at once, leaving them unsent; a second SIGTERM aborts like a second Ctrl-C. The real CLI
against the offline PostHog (probe17 B1)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from posthog_async.testing import FakePostHog
from posthog_async.testing._faults import Faults

from ._cli import running, spawn, stop_with, wait_for, write_ids
from .conftest import API_KEY


@pytest.fixture
async def srv() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        yield server


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(("path", "resolve"), [("bulk_delete", False),
                                               ("batch_by_distinct_ids", True)])
async def test_a_stop_ends_a_retry_after_the_transport_sleeps_through(
        srv: FakePostHog, tmp_path: Path, stop: int, path: str, resolve: bool) -> None:
    """The probe's s8: three 429s with Retry-After: 30 took 91 s to stop; now at once."""
    srv.seed_persons(300)
    srv.fail_next(429, times=3, retry_after=30, path_contains=path)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 301)])
    args = ["persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100"]
    async with running(await spawn(srv, *args, *([] if resolve else ["--no-resolve"]))) as proc:
        await wait_for(lambda: srv.stats.errors_injected >= 1)
        await asyncio.sleep(0.5)  # the chunks meet the hold and wait in the transport
        sent = srv.stats.requests
        err, stopped_in = await stop_with(proc, stop)
    assert proc.returncode == 130 and "--resume" in err, err[-2000:]
    assert stopped_in < 3, f"the stop took {stopped_in:.1f}s"
    assert srv.stats.requests == sent  # the waiting chunks were left unsent
    assert len(srv.project().persons) + srv.ids_deleted == 300


async def test_a_resume_after_such_a_stop_finishes_the_job(srv: FakePostHog,
                                                           tmp_path: Path) -> None:
    srv.seed_persons(200)
    srv.fail_next(429, times=2, retry_after=30, path_contains="bulk_delete")
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 201)])
    args = ["persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100"]
    async with running(await spawn(srv, *args)) as proc:
        await wait_for(lambda: srv.stats.errors_injected >= 1)
        await asyncio.sleep(0.5)
        await stop_with(proc, signal.SIGTERM)
    assert proc.returncode == 130
    srv.injector.failures.clear()  # PostHog lets us in again
    resumed = await spawn(srv, *args, "--resume")
    _, err = await resumed.communicate()
    assert resumed.returncode == 0, err.decode()[-2000:]
    assert not srv.project().persons


async def test_a_second_sigterm_aborts_like_a_second_ctrl_c(srv: FakePostHog,
                                                            tmp_path: Path) -> None:
    """The first SIGTERM waits for the call in flight (6 s of latency here); the second aborts."""
    srv.seed_persons(10)
    srv.faults = Faults(latency=6)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 11)])
    async with running(await spawn(srv, "persons", "delete", "--distinct-ids-file", str(source),
                                   "--no-resolve")) as proc:
        await wait_for(lambda: srv.stats.requests >= 1)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert proc.returncode is None  # still waiting for the call in flight
        err, stopped_in = await stop_with(proc, signal.SIGTERM, timeout=10)
    assert proc.returncode == 130 and "aborting" in err, err[-2000:]
    assert stopped_in < 3, f"the abort took {stopped_in:.1f}s"
