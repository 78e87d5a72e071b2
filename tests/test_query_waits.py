"""Readers of many pages wait out the long rate-limit waits one call refuses to sleep through
(PostHog's 120 HogQL queries an hour): ``ph.persons.export()``, ``ph.query.keyset()`` and
``ph.query.actors()`` iteration, and ``posthog-async persons export``, which stops at once on
SIGTERM or Ctrl-C during such a wait and stays resumable. Test-sized windows stand in for the hour."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from posthog_async import RateLimitError, RateLimits, RateLimitWaitError
from posthog_async.testing import FakePostHog

from ._cli import run, running, spawn, stop_with, wait_for
from .conftest import API_KEY, fast_retries

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

TREND = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


def recorder() -> tuple[list[tuple[float, RateLimitError]], Any]:
    waits: list[tuple[float, RateLimitError]] = []
    return waits, lambda seconds, error: waits.append((seconds, error))


async def test_the_export_waits_out_a_spent_window_the_client_counts() -> None:
    """The client's own pacing: the third page's wait (~2 s) is past max_retry_after, so the
    call raises RateLimitWaitError; the export waits it out and goes on."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(5)
        limits = RateLimits(hogql=[(2, 2.0)], safety_margin=0)
        async with server.client(rate_limits=limits, max_retry_after=0.3) as ph:
            waits, on_wait = recorder()
            started = time.monotonic()
            got = [p.id async for p in ph.persons.export(page_size=2, on_wait=on_wait)]
            took = time.monotonic() - started
        assert sorted(got) == sorted(p.uuid for p in server.project().ordered())
        assert len(got) == len(set(got)) == 5
        assert waits and all(isinstance(e, RateLimitWaitError) and e.bound == "max_retry_after"
                             for _, e in waits)
        assert 0.3 < max(s for s, _ in waits) <= 2.0 and 1.5 < took < 5
        assert server.stats.throttled == 0


async def test_the_export_waits_out_posthogs_long_retry_after() -> None:
    """PostHog's own 429 (a window the client was not told of): its Retry-After is past
    max_retry_after, the call raises it, and the export waits it out."""
    async with FakePostHog(api_key=API_KEY, rate_limits={"hogql": [(2, 2.0)]}) as server:
        server.seed_persons(5)
        async with server.client(rate_limits=RateLimits(hogql=()),
                                 retry_policy=fast_retries(max_retry_after=0.5)) as ph:
            waits, on_wait = recorder()
            got = [p.id async for p in ph.persons.export(page_size=2, on_wait=on_wait)]
        assert len(got) == len(set(got)) == 5
        assert server.stats.throttled >= 1
        assert waits and all(not isinstance(e, RateLimitWaitError) and s > 0.5 for s, e in waits)


async def test_the_keyset_reader_and_the_actors_iteration_wait_too() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(5)
        limits = RateLimits(hogql=[(2, 1.5)], queries=[(2, 1.5)], safety_margin=0)
        async with server.client(rate_limits=limits, max_retry_after=0.3) as ph:
            waits, on_wait = recorder()
            reader = ph.query.keyset(select="id", from_="persons", page_size=2, on_wait=on_wait)
            rows = [row async for row in reader]
            assert len(rows) == 5 and waits and waits[-1][1].bucket == "hogql"  # type: ignore[attr-defined]
            waits.clear()
            actors = [a.id async for a in ph.query.actors(TREND, day="2026-01-10", limit=2,
                                                          on_wait=on_wait)]
            assert len(actors) == 5 and waits and waits[-1][1].bucket == "queries"  # type: ignore[attr-defined]
            with pytest.raises(RateLimitWaitError):  # awaited, one page is one call: it raises
                await ph.query.actors(TREND, day="2026-01-10", limit=2)


async def test_a_bound_the_caller_set_is_raised_not_waited_out() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(5)
        limits = RateLimits(hogql=[(2, 30.0)], safety_margin=0)
        async with server.client(rate_limits=limits, max_retry_after=0.3) as ph:
            export = ph.with_options(max_wait=0.5).persons.export(page_size=2)
            got: list[str] = []
            with pytest.raises(RateLimitWaitError) as info:
                async for person in export:
                    got.append(person.id)
            assert info.value.bound == "max_wait" and len(got) == 2  # the second page: shed
            assert export.last_key == got[-1]  # where to resume


async def test_cancelling_during_the_wait_stops_at_once_and_keeps_the_position() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(5)
        limits = RateLimits(hogql=[(2, 3600.0)], safety_margin=0)
        async with server.client(rate_limits=limits) as ph:
            waits, on_wait = recorder()
            export = ph.persons.export(page_size=2, on_wait=on_wait)
            got: list[str] = []

            async def read() -> None:
                async for person in export:
                    got.append(person.id)

            task = asyncio.ensure_future(read())
            await wait_for(lambda: bool(waits))
            assert waits[0][0] > 1000  # two an hour: the second is half an hour away
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < 0.5
            assert len(got) == 2 and export.last_key == got[-1]
            assert server.stats.by_endpoint["POST query/"] == 1  # nothing sent for page two


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_the_cli_export_says_when_it_resumes_and_stops_at_once_during_the_wait(
        tmp_path: Path, stop: int) -> None:
    """PostHog's HogQL budget runs out after two pages (Retry-After ~1 h): the export says when
    it resumes, a SIGTERM or one Ctrl-C stops it at once (exit 130, the resume command), and
    ``--resume`` then finishes it, every person once."""
    async with FakePostHog(api_key=API_KEY, rate_limits={"hogql": [(2, 3600.0)]}) as server:
        server.seed_persons(500)
        out = tmp_path / "persons.jsonl"
        async with running(await spawn(server, "persons", "export", "--output", str(out),
                                       "--page-size", "100", "--api-queries-plan")) as proc:
            await wait_for(lambda: server.stats.throttled >= 1)
            await asyncio.sleep(0.3)  # the export is in its wait now
            sent = server.stats.requests
            err, stopped_in = await stop_with(proc, stop)
        assert proc.returncode == 130, err
        assert "waiting 59m" in err or "waiting 1h00m" in err, err
        assert "resuming at" in err and "while waiting for the rate limit" in err, err
        assert "resume with: posthog-async" in err and API_KEY not in err
        assert stopped_in < 3, f"the stop took {stopped_in:.1f}s"
        assert server.stats.requests == sent  # nothing more was sent
        assert len([json.loads(line) for line in out.read_text().splitlines()]) == 200
        server.set_rate_limits(None)  # the hour has passed
        status, _, err2 = await run(server, "persons", "export", "--output", str(out), "--resume",
                                    "--page-size", "100", "--api-queries-plan")
        assert status == 0, err2
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert len(ids) == len(set(ids)) == 500


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_the_cli_export_stops_at_once_while_a_page_waits_for_the_clients_pacing(
        tmp_path: Path, stop: int) -> None:
    """The client paces HogQL at one query every 30 s (PostHog's 120 an hour): the second page's
    query waits inside the transport. A SIGTERM or one Ctrl-C then stops at once (exit 130,
    nothing more sent, the resume command) instead of after the pacing wait."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(300)
        out = tmp_path / "persons.jsonl"
        async with running(await spawn(server, "persons", "export", "--output", str(out),
                                       "--page-size", "100")) as proc:
            await wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 100)
            await asyncio.sleep(0.3)  # the second page's query waits for its turn
            sent = server.stats.requests
            err, stopped_in = await stop_with(proc, stop)
        assert proc.returncode == 130, err
        assert "while waiting for the rate limit" in err and "resume with: posthog-async" in err
        assert stopped_in < 3, f"the stop took {stopped_in:.1f}s"
        assert server.stats.requests == sent  # the waiting query was not sent
        status, _, err2 = await run(server, "persons", "export", "--output", str(out), "--resume",
                                    "--page-size", "1000")
        assert status == 0, err2
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert len(ids) == len(set(ids)) == 300
