"""Verification reads: lookups that no longer find persons, ``deletion_status`` rows by the cheaper
road (scan or filter), and the time of PostHog's next event-deletion batch."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from posthog_async import (
    AsyncPostHog,
    DeletionStatus,
    DeletionStatusLookup,
    GoneCheck,
    Page,
    PermissionDeniedError,
    next_event_deletion_batch,
)
from posthog_async._event_deletions import find_deletion_statuses
from posthog_async.testing import FakePostHog

from .conftest import fast_retries

UTC = timezone.utc


# -- the batch time ---------------------------------------------------------------------------

@pytest.mark.parametrize("now, expected", [
    (datetime(2026, 12, 2, 9, 30, tzinfo=UTC), datetime(2026, 12, 6, 5, tzinfo=UTC)),  # Wednesday
    (datetime(2026, 12, 5, 23, 59, tzinfo=UTC), datetime(2026, 12, 6, 5, tzinfo=UTC)),  # Saturday
    (datetime(2026, 12, 6, 4, 59, 59, tzinfo=UTC), datetime(2026, 12, 6, 5, tzinfo=UTC)),
    (datetime(2026, 12, 6, 5, 0, tzinfo=UTC), datetime(2026, 12, 13, 5, tzinfo=UTC)),  # strictly after
    (datetime(2026, 12, 6, 5, 0, 1, tzinfo=UTC), datetime(2026, 12, 13, 5, tzinfo=UTC)),
    (datetime(2026, 12, 6, 4, 30), datetime(2026, 12, 6, 5, tzinfo=UTC)),  # naive = UTC
    # 06:30 in UTC+2 is 04:30 UTC on Sunday: the batch is still ahead that morning
    (datetime(2026, 12, 6, 6, 30, tzinfo=timezone(timedelta(hours=2))), datetime(2026, 12, 6, 5, tzinfo=UTC)),
    (datetime(2026, 12, 31, 12, tzinfo=UTC), datetime(2027, 1, 3, 5, tzinfo=UTC)),  # across a year
])
def test_next_event_deletion_batch_is_the_next_sunday_0500_utc(now: datetime, expected: datetime) -> None:
    got = next_event_deletion_batch(now)
    assert got == expected and got.tzinfo == UTC and got.weekday() == 6


def test_next_event_deletion_batch_other_schedules_and_now() -> None:
    saturday_22 = next_event_deletion_batch(datetime(2026, 12, 5, 21, tzinfo=UTC), weekday=5, hour=22)
    assert saturday_22 == datetime(2026, 12, 5, 22, tzinfo=UTC)
    before = datetime.now(UTC)
    upcoming = next_event_deletion_batch()
    assert before < upcoming <= before + timedelta(days=7)
    with pytest.raises(ValueError):
        next_event_deletion_batch(weekday=7)


# -- scan or filter: the decision, with plain callables -----------------------------------------

def uuid_of(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


class StatusRows:
    """``count`` rows, newest first; records every call."""

    def __init__(self, count: int) -> None:
        self.rows = [DeletionStatus(person_uuid=uuid_of(i), status="completed" if i % 2 else "pending")
                     for i in range(count)]
        self.pages: list[tuple[int, int]] = []
        self.filtered: list[str] = []

    async def page(self, offset: int, limit: int) -> Page[DeletionStatus]:
        self.pages.append((offset, limit))
        window = self.rows[offset: offset + limit]
        more = offset + limit < len(self.rows)
        return Page(results=window, count=len(self.rows), next="http://x/next" if more else None)

    async def one(self, person_uuid: str) -> list[DeletionStatus]:
        self.filtered.append(person_uuid)
        return [r for r in self.rows if r.person_uuid == person_uuid]


async def test_ten_ids_in_a_big_project_are_filtered_one_by_one() -> None:
    rows = StatusRows(50_000)
    wanted = [uuid_of(i) for i in range(40_000, 40_010)]
    found = await find_deletion_statuses(wanted, page=rows.page, rows=rows.one)
    assert found.strategy == "filter" and found.calls == 11  # the first page, then 10 filtered
    assert rows.pages == [(0, 1000)] and rows.filtered == wanted
    assert sorted(found.rows) == wanted and not found.missing
    assert len(found.completed) == 5 and len(found.pending) == 5


async def test_many_ids_are_found_by_paging_every_row() -> None:
    rows = StatusRows(5_000)
    wanted = [uuid_of(i) for i in range(0, 5_000, 2)] + [uuid_of(99_999)]  # one without a row
    found = await find_deletion_statuses(wanted, page=rows.page, rows=rows.one, page_limit=1000)
    assert found.strategy == "scan" and found.calls == 5 + 1  # 5 pages, then the 1 left checked
    assert [offset for offset, _ in rows.pages] == [0, 1000, 2000, 3000, 4000]
    assert rows.filtered == [uuid_of(99_999)] and found.missing == [uuid_of(99_999)]
    assert len(found.rows) == 2_500


async def test_the_scan_stops_once_every_id_is_found_and_uuids_are_canonical() -> None:
    rows = StatusRows(10_000)
    wanted = [uuid_of(i).upper() for i in range(1, 1500)]
    found = await find_deletion_statuses(wanted, page=rows.page, rows=rows.one)
    assert found.strategy == "scan" and found.calls == 2 and not rows.filtered
    assert uuid_of(7) in found.rows and not found.missing
    empty = await find_deletion_statuses([], page=rows.page, rows=rows.one)
    assert empty == DeletionStatusLookup() and len(rows.pages) == 2
    with pytest.raises(ValueError):
        await find_deletion_statuses(["not-a-uuid"], page=rows.page, rows=rows.one)
    assert len(rows.pages) == 2  # refused before any call
    small = StatusRows(3)
    found = await find_deletion_statuses([uuid_of(1), uuid_of(8)], page=small.page, rows=small.one)
    assert found.calls == 1 and found.missing == [uuid_of(8)]  # one page held every row


# -- against the fake PostHog ----------------------------------------------------------------

async def test_deletion_statuses_pending_then_completed_with_delete_verified_at() -> None:
    async with FakePostHog(project_ids=(1, 2), rate_limits=None, event_deletion_delay=0.3) as server:
        server.seed_persons_across(30, overlap=1.0)
        async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
            project = ph.project(2)
            report = await project.persons.bulk_delete_all(
                distinct_ids=[f"user-{i}" for i in range(1, 21)], delete_events=True)
            assert report.ok and report.persons_deleted == 20
            uuids = sorted(r["person_uuid"] for r in server.project(2).deletion_status)
            assert len(uuids) == 20 and not server.project(1).deletion_status  # per project
            found = await project.persons.verification.deletion_statuses([*uuids, uuid_of(1)])
            assert len(found.pending) == 20 and found.missing == [uuid_of(1)]
            assert all(r.delete_verified_at is None for r in found.rows.values())
            assert not (await ph.project(1).persons.verification.deletion_statuses(uuids)).rows
            await asyncio.sleep(0.35)
            found = await project.persons.verification.deletion_statuses(uuids, page_limit=5)
            assert len(found.completed) == 20 and found.strategy == "scan" and found.calls == 4
            assert all(r.delete_verified_at is not None for r in found.rows.values())


async def test_check_gone_sees_queued_persons_disappear() -> None:
    async with FakePostHog(rate_limits=None, queue_person_deletions=True,
                           queued_deletion_delay=0.2) as server:
        server.seed_persons(450)
        uuids = [p.uuid for p in server.project().ordered()]
        async with server.client(rate_limits=None, retry_policy=fast_retries()) as ph:
            report = await ph.persons.bulk_delete_all(ids=uuids[:300])
            assert report.persons_queued_for_deletion == 300
            checks = [c async for c in ph.persons.verification.check_gone(uuids[:300])]
            assert sorted(len(c.ids) for c in checks) == [100, 200]  # 200 a call
            assert sum(len(c.found) for c in checks) == 300 and not any(c.gone for c in checks)
            await server.wait_for_deletions()
            checks = [c async for c in ph.persons.verification.check_gone(uuids[250:])]
            gone = sorted(u for c in checks for u in c.gone)
            still = sorted(u for c in checks for u in c.found)
            assert gone == sorted(uuids[250:300]) and still == sorted(uuids[300:])
            assert all(isinstance(c, GoneCheck) and c.error is None for c in checks)


async def test_check_gone_raises_what_will_not_heal_and_reports_the_rest() -> None:
    async with FakePostHog(project_ids=(1, 2), rate_limits=None) as server:
        server.seed_persons(5)
        server.add_key("phx_one", projects=[1])
        uuids = [p.uuid for p in server.project().ordered()]
        async with AsyncPostHog("phx_one", host=server.url, rate_limits=None,
                                retry_policy=fast_retries(), max_retries=1) as ph:
            with pytest.raises(PermissionDeniedError):
                async for _ in ph.project(2).persons.verification.check_gone(uuids):
                    pass
            server.fail_next(500, times=20, path_contains="batch_by_uuids")  # past every retry
            checks = [c async for c in ph.project(1).persons.verification.check_gone(uuids)]
            assert len(checks) == 1 and checks[0].error is not None
            assert checks[0].gone == [] and checks[0].found == {}  # nothing is known, nothing claimed
