"""Person deletion in the fake server: DELETE and bulk_delete, answer versions, the queued path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from posthog_async.testing import FakePostHog

from .test_fake_server import PERSONS, call, error

BULK = PERSONS + "bulk_delete/"


@pytest_asyncio.fixture
async def queued() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(rate_limits=None, queue_person_deletions=True,
                           queued_deletion_delay=0.05) as srv:
        yield srv


async def bulk(server: FakePostHog, payload: object) -> tuple[int, Any]:
    status, body, _ = await call(server, "POST", BULK, key=server.api_key, json=payload)
    return status, body


async def test_row03_row04_sync_answer_is_pd_shape(server: FakePostHog) -> None:
    server.seed_persons(5)
    status, body = await bulk(server, {"distinct_ids": ["user-1", "anon-3", "user-3", "ghost"],
                                       "delete_events": True})
    assert status == 202
    assert body == {"persons_found": 2, "persons_deleted": 2, "persons_queued_for_deletion": 0,
                    "events_queued_for_deletion": True, "recordings_queued_for_deletion": False,
                    "deletion_errors": []}
    _, body = await bulk(server, {"distinct_ids": ["ghost"], "delete_events": True})
    assert body["persons_found"] == 0 and body["events_queued_for_deletion"] is False  # none found
    _, body = await bulk(server, {"ids": [server.project().ordered()[0].uuid], "keep_person": True,
                                  "delete_recordings": True})
    assert body["persons_deleted"] == 0 and body["recordings_queued_for_deletion"] is True
    assert server.ids_deleted == 2


async def test_row05_deletion_errors_carry_the_failed_step() -> None:
    for version, entry in (("P-D", {"step": "tombstone_clickhouse"}), ("P-C", {})):
        async with FakePostHog(rate_limits=None, bulk_delete_version=version) as server:
            server.seed_persons(2)
            doomed, fine = server.project().ordered()[:2]
            server.fail_deletion_of(doomed.uuid, step="tombstone_clickhouse")
            _, body = await bulk(server, {"ids": [doomed.uuid, fine.uuid]})
            assert body["persons_deleted"] == 1
            assert body["deletion_errors"] == [{"person_uuid": doomed.uuid, **entry}]
            assert (await call(server, "GET", f"{PERSONS}{doomed.uuid}/", key=server.api_key))[0] == 200
    with pytest.raises(ValueError):
        FakePostHog().fail_deletion_of("x", step="nap")


async def test_row06_older_answer_shapes() -> None:
    async with FakePostHog(rate_limits=None, bulk_delete_version="P-A") as server:
        server.seed_persons(1)
        assert await bulk(server, {"distinct_ids": ["user-1"], "ids": ["x"]}) == (202, None)
    async with FakePostHog(rate_limits=None, bulk_delete_version="P-B") as server:
        server.seed_persons(1)
        _, body = await bulk(server, {"distinct_ids": ["user-1"]})
        assert set(body) == {"persons_found", "persons_deleted", "events_queued_for_deletion",
                             "recordings_queued_for_deletion", "deletion_errors"}
    with pytest.raises(ValueError):
        FakePostHog(bulk_delete_version="P-B", queue_person_deletions=True)


async def test_p_a_deletes_one_by_one_and_a_failure_is_a_500_midway() -> None:
    """PostHog's P-A (posthog/api/person.py@a8b2677e): a loop of delete_person and
    perform_destroy inside the request, events queued after each; nothing catches a failure,
    so the persons before it are deleted, it and those after it stay, and the answer is a 500.
    It reads distinct_ids (else ids) and delete_events only: keep_person and delete_recordings
    do not exist there."""
    async with FakePostHog(rate_limits=None, bulk_delete_version="P-A") as server:
        server.seed_persons(4)
        first, doomed, last = (server.project().by_distinct_id[f"user-{i}"] for i in (1, 2, 3))
        server.fail_deletion_of(doomed.uuid)
        status, body = await bulk(server, {"distinct_ids": ["user-1", "user-2", "user-3"],
                                           "delete_events": True})
        assert status == 500 and body["type"] == "server_error"
        alive = server.project().persons
        assert first.uuid not in alive and doomed.uuid in alive and last.uuid in alive
        assert set(server.project().deletion_rows) == {first.uuid}
        assert await bulk(server, {"distinct_ids": ["user-3"], "ids": [doomed.uuid],
                                   "keep_person": True, "delete_recordings": True}) == (202, None)
        assert last.uuid not in server.project().persons and doomed.uuid in server.project().persons
        assert not server.project().recording_deletions


async def test_row07_validation_messages_in_order(server: FakePostHog) -> None:
    many = [f"d{i}" for i in range(1001)]
    cases = [({"ids": many, "distinct_ids": many}, "You must provide either distinct_ids or ids, not both"),
             ({"distinct_ids": many}, "You can only pass 1000 distinct_ids in one call"),
             ({"ids": many}, "You can only pass 1000 ids in one call"),
             ({}, "You need to specify either distinct_ids or ids"),
             ({"ids": [], "distinct_ids": []}, "You need to specify either distinct_ids or ids")]
    for payload, detail in cases:
        status, body = await bulk(server, payload)
        assert status == 400 and error(body, "validation_error", "invalid_input", detail)
    assert (await bulk(server, {"distinct_ids": many[:1000]}))[0] == 202


async def test_row08_json_body_only_and_truthy_flags(server: FakePostHog) -> None:
    server.seed_persons(3)
    status, body, _ = await call(server, "POST", BULK + "?distinct_ids=user-1&delete_events=true",
                                 json={"distinct_ids": ["user-2"], "delete_events": "false"})
    assert status == 202 and body["persons_found"] == 1 and body["events_queued_for_deletion"] is True
    assert "user-1" in server.project().by_distinct_id
    status, body, _ = await call(server, "POST", BULK + "?distinct_ids=user-1")
    assert status == 400 and body["detail"] == "You need to specify either distinct_ids or ids"
    _, body = await bulk(server, {"ids": [server.project().ordered()[0].uuid], "keep_person": 0})
    assert body["persons_deleted"] == 1


async def test_row09_queued_deletions_happen_later_in_chunks(queued: FakePostHog) -> None:
    queued.seed_persons(250)
    ids = [f"user-{i}" for i in range(1, 251)]
    _, body = await bulk(queued, {"distinct_ids": ids})
    assert body == {"persons_found": 250, "persons_deleted": 0, "persons_queued_for_deletion": 250,
                    "events_queued_for_deletion": False, "recordings_queued_for_deletion": False,
                    "deletion_errors": []}
    assert (await call(queued, "GET", PERSONS, key=queued.api_key,
                       params={"distinct_id": "user-7"}))[1]["results"]  # still there
    assert len(queued.deletions._tasks) == 3  # 100 + 100 + 50
    await queued.wait_for_deletions()
    assert queued.ids_deleted == 250 and not queued.project().persons
    _, body = await bulk(queued, {"distinct_ids": ["nobody"], "keep_person": True})
    assert body["persons_queued_for_deletion"] == 0


async def test_row09_queued_failures_are_silent(queued: FakePostHog) -> None:
    queued.seed_persons(2)
    doomed = queued.project().ordered()[0]
    queued.fail_deletion_of(doomed.uuid)
    _, body = await bulk(queued, {"distinct_ids": ["user-1", "user-2"]})
    assert body["deletion_errors"] == [] and body["persons_queued_for_deletion"] == 2
    await queued.wait_for_deletions()
    assert list(queued.project().persons) == [doomed.uuid]


async def test_row10_delete_flags_are_presence_based(server: FakePostHog) -> None:
    server.seed_persons(3)
    first, second, third = server.project().ordered()[:3]
    status, body, _ = await call(server, "DELETE", f"{PERSONS}{first.uuid}/",
                                 params={"delete_events": "false"})
    assert (status, body) == (202, None)
    _, rows, _ = await call(server, "GET", PERSONS + "deletion_status/")
    assert [r["person_uuid"] for r in rows["results"]] == [first.uuid]  # false still deletes events
    await call(server, "DELETE", f"{PERSONS}{second.id}/", params={"keep_person": "0"})
    assert second.uuid in server.project().persons  # kept: the flag was present
    await call(server, "DELETE", f"{PERSONS}{third.uuid}/")
    assert third.uuid not in server.project().persons and server.ids_deleted == 2
    assert (await call(server, "DELETE", f"{PERSONS}{third.uuid}/"))[0] == 404


async def test_row10_delete_is_queued_too_in_queue_mode(queued: FakePostHog) -> None:
    queued.seed_persons(1)
    person = queued.project().ordered()[0]
    assert (await call(queued, "DELETE", f"{PERSONS}{person.uuid}/", key=queued.api_key))[0] == 202
    assert person.uuid in queued.project().persons
    await asyncio.wait_for(queued.wait_for_deletions(), 5)
    assert person.uuid not in queued.project().persons


async def test_event_deletions_complete_after_the_batch_delay() -> None:
    """deletion_status rows: pending until the (short) batch has run, then completed with
    delete_verified_at; one row per person, however often its events are asked deleted."""
    async with FakePostHog(rate_limits=None, event_deletion_delay=0.2) as server:
        server.seed_persons(3)
        _, body = await bulk(server, {"distinct_ids": ["user-1", "user-2"], "delete_events": True})
        assert body["events_queued_for_deletion"] is True
        _, page, _ = await call(server, "GET", PERSONS + "deletion_status/", key=server.api_key)
        assert page["count"] == 2 and {r["status"] for r in page["results"]} == {"pending"}
        assert all(r["delete_verified_at"] is None for r in page["results"])
        await asyncio.sleep(0.25)
        _, page, _ = await call(server, "GET", PERSONS + "deletion_status/", key=server.api_key,
                                params={"status": "completed"})
        assert page["count"] == 2 and all(r["delete_verified_at"] for r in page["results"])
        assert all(r["delete_verified_at"] > r["created_at"] for r in page["results"])
        person = server.project().ordered()[0]  # user-3, still there
        await call(server, "DELETE", f"{PERSONS}{person.uuid}/", key=server.api_key,
                   params={"delete_events": "true", "keep_person": "true"})
        await call(server, "DELETE", f"{PERSONS}{person.uuid}/", key=server.api_key,
                   params={"delete_events": "true"})
        _, page, _ = await call(server, "GET", PERSONS + "deletion_status/", key=server.api_key,
                                params={"person_uuid": person.uuid.upper()})
        assert page["count"] == 1 and page["results"][0]["status"] == "pending"
    async with FakePostHog(rate_limits=None) as server:  # no delay: only the explicit batch
        server.seed_persons(1)
        await bulk(server, {"distinct_ids": ["user-1"], "delete_events": True})
        await asyncio.sleep(0.05)
        assert server.project().deletion_status[0]["status"] == "pending"
        assert server.verify_event_deletions() == 1
        assert server.project().deletion_status[0]["status"] == "completed"
        server.event_deletion_delay = 0.0  # a knob that can change while running
        assert server.project(1).event_deletion_delay == 0.0


async def test_queued_persons_disappear_only_after_the_delay() -> None:
    async with FakePostHog(rate_limits=None, queue_person_deletions=True,
                           queued_deletion_delay=0.3) as server:
        server.seed_persons(2)
        uuids = [p.uuid for p in server.project().ordered()]
        _, body = await bulk(server, {"ids": uuids})
        assert body["persons_queued_for_deletion"] == 2
        await asyncio.sleep(0.1)
        _, found, _ = await call(server, "POST", PERSONS + "batch_by_uuids/", key=server.api_key,
                                 json={"uuids": uuids})
        assert sorted(found["results"]) == sorted(uuids)  # not yet
        await asyncio.wait_for(server.wait_for_deletions(), 5)
        _, found, _ = await call(server, "POST", PERSONS + "batch_by_uuids/", key=server.api_key,
                                 json={"uuids": uuids})
        assert found["results"] == {}
