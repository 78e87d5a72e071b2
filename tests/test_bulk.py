"""Bulk helpers against the offline PostHog: chunk sizes, accounting, failures, lost answers,
429 storms, fan-out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from posthog_async import (
    AsyncPostHog, AuthenticationError, BadRequestError, NotFoundError, RateLimits, ScopedPostHog,
    UnexpectedResponseError,
)
from posthog_async.testing import FakePostHog

from .conftest import API_KEY, fast_retries

BULK = "POST /api/projects/1/persons/bulk_delete/"
BATCH = "POST /api/projects/1/persons/batch_by_distinct_ids/"


@pytest.fixture
async def recording() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


async def test_2500_ids_become_1000_1000_500(recording: FakePostHog) -> None:
    recording.seed_persons(2500)
    progress: list[tuple[int, int | None]] = []
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=[f"user-{i}" for i in range(1, 2501)], delete_events=True,
            on_progress=lambda done, total: progress.append((done, total)),
        )
    sizes = sorted(len(b["distinct_ids"]) for b in recording.stats.bodies[BULK])
    assert sizes == [500, 1000, 1000]
    assert all(b["delete_events"] is True for b in recording.stats.bodies[BULK])
    assert report.ok and report.chunks == report.delete_calls == 3
    assert report.persons_found == report.persons_deleted == 2500
    assert report.events_queued_for_deletion is True
    assert progress[-1] == (2500, 2500) and len(progress) == 3
    assert len(recording.project().persons) == 0


async def test_uuids_from_a_generator(recording: FakePostHog) -> None:
    recording.seed_persons(1200)
    uuids = list(recording.project().persons)
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(ids=(u.upper() for u in uuids), chunk_size=500)
    assert [len(b["ids"]) for b in recording.stats.bodies[BULK]] == [500, 500, 200]
    assert report.persons_deleted == 1200 and report.input.requested == 1200


async def test_async_iterable_input(recording: FakePostHog) -> None:
    recording.seed_persons(30)

    async def source() -> AsyncIterator[str]:
        for i in range(1, 31):
            yield f"user-{i}"

    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(distinct_ids=source(), chunk_size=7)
    assert report.persons_deleted == 30 and report.chunks == 5


async def test_duplicates_blanks_and_bad_uuids_are_counted(recording: FakePostHog) -> None:
    recording.seed_persons(5)
    good = list(recording.project().persons)
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=["user-1", " user-1 ", "", "   ", "user-2", "user-2", "ghost"])
        assert report.input.requested == 7 and report.input.blank == 2
        assert report.input.duplicates == 2 and report.input.unique == 3
        assert report.persons_found == 2  # "ghost" matched nobody and is simply not counted
        report = await ph.persons.bulk_delete_all(ids=[good[2], "not-a-uuid", good[3]])
    assert report.input.invalid == 1 and not report.ok
    assert [(r.value, r.reason) for r in report.rejected] == [("not-a-uuid", "not a valid UUID")]
    assert report.persons_deleted == 2
    assert all("not-a-uuid" not in b.get("ids", []) for b in recording.stats.bodies[BULK])


async def test_resolve_names_every_outcome(recording: FakePostHog) -> None:
    recording.seed_persons(3)
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=["user-1", "ghost-a", "user-3", "ghost-b"], resolve=True)
    assert sorted(report.not_found) == ["ghost-a", "ghost-b"] and report.persons_deleted == 2
    assert report.outcomes == {"deleted": 2, "not_found": 2} and report.exact


async def test_permanent_chunk_failure_is_reported_and_others_go_on(recording: FakePostHog) -> None:
    recording.seed_persons(3000)
    recording.fail_next(400, path_contains="bulk_delete")
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(distinct_ids=[f"user-{i}" for i in range(1, 3001)])
    assert len(report.failed_chunks) == 1 and not report.ok
    failed = report.failed_chunks[0]
    assert isinstance(failed.error, BadRequestError) and "BadRequestError" in failed.reason
    assert len(failed.ids) == 1000 and report.persons_deleted == 2000
    # exactly the failed ids are still there: nothing lost, nothing double-counted
    remaining = {d for p in recording.project().persons.values() for d in p.distinct_ids
                 if d.startswith("user-")}
    assert remaining == set(failed.ids) == set(report.failed_ids)


async def test_stop_on_error(recording: FakePostHog) -> None:
    recording.seed_persons(50)
    recording.fail_next(400, path_contains="bulk_delete")
    async with recording.client(rate_limits=None, max_concurrency=1) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=[f"user-{i}" for i in range(1, 51)], chunk_size=10, stop_on_error=True)
    assert report.stopped_early and report.chunks == 1 and len(report.failed_chunks) == 1


async def test_retryable_failures_are_retried(recording: FakePostHog) -> None:
    recording.seed_persons(2000)
    recording.fail_next(503, path_contains="bulk_delete", times=2)
    recording.fail_next(drop=True, path_contains="bulk_delete")
    async with recording.client(rate_limits=None, retry_policy=fast_retries()) as ph:
        report = await ph.persons.bulk_delete_all(distinct_ids=[f"user-{i}" for i in range(1, 2001)])
    assert report.ok and report.persons_deleted == 2000 and report.exact


async def test_a_bad_key_stops_everything_at_once(recording: FakePostHog) -> None:
    recording.seed_persons(5000)
    async with AsyncPostHog("phx_wrong", host=recording.url, project_id=1, rate_limits=None,
                            max_concurrency=2) as ph:
        report = await ph.persons.bulk_delete_all(distinct_ids=[f"user-{i}" for i in range(1, 5001)],
                                                  chunk_size=100)
    assert report.stopped_early and isinstance(report.failed_chunks[0].error, AuthenticationError)
    assert recording.stats.requests <= 3  # the chunks already in flight, not 50


async def test_429_storm_slows_the_job_without_losing_a_chunk() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits={"person_deletes": [(4, 1.0)]}) as server:
        server.seed_persons(1000)
        async with server.client(rate_limits=None, retry_policy=fast_retries(max_retries=20)) as ph:
            report = await ph.persons.bulk_delete_all(
                distinct_ids=[f"user-{i}" for i in range(1, 1001)], chunk_size=100)
    assert server.stats.throttled > 0
    assert report.ok and report.chunks == 10 and report.persons_deleted == 1000


async def test_client_throttle_keeps_job_under_server_limit() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits={"person_deletes": [(10, 1.0)]}) as server:
        server.seed_persons(300)
        limits = RateLimits(person_deletes=[(10, 1.0)], safety_margin=0.05)
        async with server.client(rate_limits=limits) as ph:
            report = await ph.persons.bulk_delete_all(
                distinct_ids=[f"user-{i}" for i in range(1, 301)], chunk_size=25)
    assert report.ok and report.persons_deleted == 300
    assert server.stats.throttled == 0


async def test_1000_distinct_ids_become_five_lookups(recording: FakePostHog) -> None:
    recording.seed_persons(900)
    async with recording.client(rate_limits=None) as ph:
        ids = [f"user-{i}" for i in range(1, 1001)]
        report = await ph.persons.batch_by_distinct_ids_all([*ids, "user-1", ""])
    assert [len(b["distinct_ids"]) for b in recording.stats.bodies[BATCH]] == [200] * 5
    assert len(report.found) == 900 and report.found["user-5"].distinct_ids == ["user-5"]
    assert report.not_found == [f"user-{i}" for i in range(901, 1001)]
    assert report.input.duplicates == 1 and report.input.blank == 1


async def test_a_bad_key_stops_a_lookup_at_once(recording: FakePostHog) -> None:
    """A revoked key fails every call: it is raised after the first, not repeated per 200 ids."""
    recording.seed_persons(10)
    async with AsyncPostHog("phx_revoked", host=recording.url, project_id=1,
                            rate_limits=None) as ph:
        with pytest.raises(AuthenticationError):
            await ph.persons.batch_by_distinct_ids_all(
                [f"user-{i}" for i in range(1, 5001)], concurrency=2)
    assert recording.stats.requests <= 3


async def test_batch_by_uuids_all(recording: FakePostHog) -> None:
    recording.seed_persons(1500)
    uuids = list(recording.project().persons)
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.batch_by_uuids_all([*uuids, "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c", "bad"])
    assert len(report.found) == 1500 and report.not_found == ["0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"]
    assert report.input.invalid == 1 and report.rejected[0].value == "bad"
    # PostHog keeps only the first 200 uuids of a call: 1501 uuids take 8 calls
    sizes = [len(b["uuids"]) for b in recording.stats.bodies["POST /api/projects/1/persons/batch_by_uuids/"]]
    assert sizes == [200] * 7 + [101]


async def test_iter_by_distinct_ids_streams(recording: FakePostHog) -> None:
    recording.seed_persons(450)
    seen = 0
    async with recording.client(rate_limits=None) as ph:
        async for chunk, found, error in ph.persons.iter_by_distinct_ids(
                f"user-{i}" for i in range(1, 451)):
            assert error is None and len(found) == len(chunk)
            seen += len(chunk)
            break  # leaving early cancels the rest cleanly
    assert seen in (200, 50)  # chunks complete in any order; one was enough


async def test_bad_bulk_arguments(ph: AsyncPostHog) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await ph.persons.bulk_delete_all()
    with pytest.raises(ValueError, match="chunk_size"):
        await ph.persons.bulk_delete_all(distinct_ids=["a"], chunk_size=1001)
    with pytest.raises(ValueError, match="chunk_size"):
        await ph.persons.bulk_delete_all(distinct_ids=["a"], chunk_size=0)
    with pytest.raises(TypeError):
        await ph.persons.bulk_delete_all(distinct_ids="abc")
    report = await ph.persons.bulk_delete_all(distinct_ids=[])
    assert report.chunks == 0 and report.ok  # nothing to do: no empty chunk is ever sent


async def test_fan_out_collects_per_project_errors(server: FakePostHog, ph: AsyncPostHog) -> None:
    for pid in (1, 2, 3):
        server.seed_persons(pid * 10, project_id=pid)

    async def count(view: ScopedPostHog) -> int:
        return len([p async for p in view.persons.list()])

    result = await ph.fan_out([1, 2, 3, 404], count)
    assert result.results == {1: 10, 2: 20, 3: 30}
    assert isinstance(result.errors[404], NotFoundError) and not result.ok
    with pytest.raises(NotFoundError):
        await ph.fan_out([1, 404], count, fail_fast=True)


@pytest.mark.parametrize("answer", [b"", b"{}", b'{"unexpected": true}'])
async def test_a_lookup_nobody_can_read_never_passes_for_nobody(recording: FakePostHog,
                                                                answer: bytes) -> None:
    """A batch lookup that answers 200 with a body that is not the documented shape must fail
    the chunk (nothing deleted, nothing claimed), not mark every id "not found"."""
    recording.seed_persons(10)

    def odd_lookup(request: web.Request) -> web.StreamResponse | None:
        if request.path.endswith("/batch_by_distinct_ids/"):
            return web.Response(status=200, body=answer, content_type="application/json")
        return None

    recording.add_hook(odd_lookup)
    async with recording.client(rate_limits=None) as ph:
        report = await ph.persons.bulk_delete_all(
            distinct_ids=[f"user-{i}" for i in range(1, 11)], resolve=True)
    assert report.outcomes["not_found"] == 0 and report.not_found == []
    assert len(report.failed_ids) == 10 and not report.ok
    assert isinstance(report.failed_chunks[0].error, UnexpectedResponseError)
    assert len(recording.project().persons) == 10  # nothing was deleted
