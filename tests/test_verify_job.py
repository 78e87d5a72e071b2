"""``persons verify`` / ``DeletionJob.verify`` (issue 20): a deletion is proven when lookups no longer
find its persons and, with ``--delete-events``, PostHog's ``deletion_status`` rows are
``completed``. Exit status 0 verified, 3 pending at PostHog, 1 wrong. Journaled and resumable
(SIGKILL included), across projects, against the offline PostHog's truth.

Each test failed on the code before this change (there was no ``verify``)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from posthog_async import next_event_deletion_batch
from posthog_async.jobs import DeletionJob, EventBatchSchedule
from posthog_async.testing import FakePostHog

from ._cli import run, spawn, write_ids
from .conftest import API_KEY

ERASE = [f"user-{i}" for i in range(1, 13)] + ["anon-3", "p2-user-20", "ghost"]


async def _server(**kwargs: Any) -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, project_ids=(1, 2, 3), rate_limits=None,
                           record_bodies=True, **kwargs) as server:
        server.seed_persons_across(24, overlap=0.5)
        yield server


@pytest.fixture
async def org() -> AsyncIterator[FakePostHog]:
    """Synchronous deletions; event rows stay pending until ``verify_event_deletions()``."""
    async for server in _server():
        yield server


async def delete(server: FakePostHog, source: Path, *extra: str) -> None:
    code, _, err = await run(server, "persons", "delete", "--distinct-ids-file", str(source),
                             "--all-projects", "--delete-events", *extra,
                             env={"POSTHOG_PROJECT_ID": None})
    assert code == 0, err


async def verify(server: FakePostHog, source: Path, *extra: str) -> tuple[int, str]:
    code, _, err = await run(server, "persons", "verify", "--distinct-ids-file", str(source),
                             "--all-projects", *extra, env={"POSTHOG_PROJECT_ID": None})
    return code, err


def csv_rows(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("# ")]
    return list(csv.DictReader(lines))


def truth(server: FakePostHog, keys: list[str]) -> dict[tuple[int, str], str]:
    return {(pid, key): person.uuid for key in keys
            for pid, person in server.persons_with(key).items()}


def assert_verified_against_truth(report: Path, server: FakePostHog,
                                  before: dict[tuple[int, str], str]) -> None:
    """Every id that named a person: gone (and really gone), its events' row completed, with
    PostHog's delete_verified_at; every other id: not found, nothing claimed."""
    for row in csv_rows(report):
        pid, key = int(row["project"]), row["id"]
        person = before.get((pid, key))
        if person is None:
            assert row["outcome"] == "not_found" and not row["person_check"], row
            continue
        assert row["outcome"] in ("deleted", "queued") and row["person"] == person, row
        assert row["person_check"] == "gone" and row["gone_at"], row
        assert person not in server.project(pid).persons
        fake_row = server.project(pid).deletion_rows[person]
        assert row["events"] == "completed" and fake_row["status"] == "completed"
        assert row["delete_verified_at"].startswith(fake_row["delete_verified_at"][:19]), row


async def test_verify_before_and_after_posthogs_batch(org: FakePostHog, tmp_path: Path) -> None:
    before = truth(org, ERASE)
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(org, source)
    code, err = await verify(org, source)
    batch = next_event_deletion_batch().isoformat().replace("+00:00", "Z")
    assert code == 3, err
    assert "verification: PENDING" in err and f"{len(set(before.values()))} pending at PostHog" in err
    assert f"next event-deletion batch: {batch}" in err and "PostHog's default" in err
    assert "Check again later (or add --wait)" in err and "persons verify" in err
    code, err = await verify(org, source, "--batch-schedule", "sat 22:00")
    saturday = next_event_deletion_batch(weekday=5, hour=22).isoformat().replace("+00:00", "Z")
    assert code == 3 and f"{saturday} (assuming Sat 22:00 UTC weekly)" in err, err
    for pid in (1, 2, 3):
        org.verify_event_deletions(pid)  # PostHog's batch ran and verified the deletions
    report = tmp_path / "proof.csv"
    code, err = await verify(org, source, "--report", str(report))
    assert code == 0 and "verification: VERIFIED" in err, err
    assert_verified_against_truth(report, org, before)


@pytest.fixture
async def queued_by_hand() -> AsyncIterator[FakePostHog]:
    """Queued deletions; event rows pending until the test runs PostHog's batch."""
    async for server in _server(queue_person_deletions=True, queued_deletion_delay=0.2):
        yield server


async def test_verify_waits_until_posthog_has_done_it(queued_by_hand: FakePostHog,
                                                      tmp_path: Path) -> None:
    """PostHog's batch runs while verify waits: half a second after its first status read."""
    server = queued_by_hand
    before = truth(server, ERASE)
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(server, source)
    loop, ran = asyncio.get_running_loop(), []

    def batch() -> None:
        for pid in (1, 2, 3):
            server.verify_event_deletions(pid)

    def batch_soon(request: web.Request) -> None:
        if "deletion_status" in request.path and not ran:
            ran.append(loop.call_later(0.5, batch))

    server.add_hook(batch_soon)
    report = tmp_path / "proof.csv"
    code, err = await verify(server, source, "--wait", "--interval", "0.2", "--report",
                             str(report))
    assert code == 0, err
    assert "pending at PostHog" in err and "checking again in" in err  # it waited, and said so
    assert_verified_against_truth(report, server, before)


async def test_verify_stops_waiting_at_until(org: FakePostHog, tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(org, source)
    started = asyncio.get_running_loop().time()
    code, err = await verify(org, source, "--wait", "--until", "0.5s", "--interval", "0.2")
    assert code == 3 and "pending at PostHog" in err, err
    assert asyncio.get_running_loop().time() - started < 15


async def test_a_person_found_again_fails_verification(org: FakePostHog, tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    person = org.persons_with("user-5")[2]
    await delete(org, source)
    for pid in (1, 2, 3):
        org.verify_event_deletions(pid)
    org.add_person(["user-5"], project_id=2, uuid=person.uuid)  # back, under the same uuid
    report = tmp_path / "proof.json"
    code, err = await verify(org, source, "--report", str(report), "--per-id")
    assert code == 1 and "verification: FAILED" in err and "FOUND AGAIN" in err, err
    assert f"project 2 person {person.uuid}: found_again" in err
    data = json.loads(report.read_text())
    assert data["verification"]["state"] == "failed"
    again = [r for r in data["ids"] if r["person_check"] == "found_again"]
    assert [(r["project"], r["id"]) for r in again] == [(2, "user-5")]


async def test_a_queued_deletion_that_never_happens(queued_by_hand: FakePostHog,
                                                   tmp_path: Path) -> None:
    """PostHog queued the deletion and its task gave up: pending during the grace period,
    wrong after it."""
    queued = queued_by_hand
    stuck = queued.persons_with("user-7")[1]
    queued.fail_deletion_of(stuck.uuid)
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(queued, source)
    await queued.wait_for_deletions()
    for pid in (1, 2, 3):
        queued.verify_event_deletions(pid)
    code, err = await verify(queued, source)
    assert code == 3 and "1 still queued at PostHog" in err, err
    await asyncio.sleep(0.05)
    code, err = await verify(queued, source, "--queued-grace", "0.01")
    assert code == 1 and f"project 1 person {stuck.uuid}: not_deleted" in err, err
    assert "PostHog's deletion task did not run or failed" in err and "FOUND AGAIN" not in err


async def test_a_missing_event_row_is_wrong_only_after_the_batch_ran(org: FakePostHog,
                                                                     tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(org, source)
    for pid in (1, 2, 3):
        org.verify_event_deletions(pid)
    lost = org.persons_with("user-2")  # gone now; find its uuid in the rows instead
    assert not lost
    uuid = next(iter(org.project(3).deletion_rows))
    del org.project(3).deletion_rows[uuid]
    async with org.client(rate_limits=None) as ph:
        job = DeletionJob(ph, distinct_ids=source, projects="all")
        report = await job.verify()
        assert report.verification is not None
        assert report.verification["state"] == "pending"
        assert report.verification["events"]["missing"] == 1
        next_week = datetime.now(timezone.utc) + timedelta(days=8)
        report = await job.verify(clock=lambda: next_week)
        assert report.verification["state"] == "failed"  # type: ignore[index]
        assert report.verification["events"]["missing_after_batch"] == 1  # type: ignore[index]
        assert report.verification["wrong"][0]["target"] == uuid  # type: ignore[index]
        # a Saturday schedule: eight days on, that batch has run too
        report = await job.verify(clock=lambda: next_week, schedule=EventBatchSchedule(5, 22))
        assert report.verification["state"] == "failed"  # type: ignore[index]


async def test_without_lookups_event_deletion_cannot_be_verified(org: FakePostHog,
                                                                 tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(org, source, "--no-resolve")
    for pid in (1, 2, 3):
        org.verify_event_deletions(pid)
    code, err = await verify(org, source)
    assert code == 1 and "UNVERIFIABLE" in err and "--no-resolve" in err, err
    assert "gone" in err  # what can be proven is: nobody holds those ids any more


async def test_verify_fails_on_a_project_not_covered_and_on_nothing_to_verify(
        org: FakePostHog, tmp_path: Path) -> None:
    key = "phx_team_scoped_key_0123456789"
    org.add_key(key, projects=[1, 2])
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(source),
                             "--project-id", "1", "--project-id", "3", key=key)
    assert code == 1, err
    code, _, err = await run(org, "persons", "verify", "--distinct-ids-file", str(source), key=key)
    assert code == 1 and "not covered (the key cannot reach it): project 3" in err, err
    dry = write_ids(tmp_path / "dry.txt", ERASE)
    code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(dry),
                             "--dry-run", "--journal", str(tmp_path / "dry.sqlite"))
    assert code == 0, err
    code, _, err = await run(org, "persons", "verify", "--journal", str(tmp_path / "dry.sqlite"))
    assert code == 2 and "a dry run deleted nothing" in err, err
    code, _, err = await run(org, "persons", "verify", "--journal", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no deletion job to verify" in err, err
    code, _, err = await run(org, "persons", "verify", "--journal", str(tmp_path / "dry.sqlite"),
                             "--until", "1h")
    assert code == 2 and "--until goes with --wait" in err, err


# -- killed while verifying ---------------------------------------------------------------------

def gone_targets(journal: Path) -> set[str]:
    db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute(
            "SELECT target FROM checks WHERE person_state = 'gone'")}
    finally:
        db.close()


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("at", [4])
async def test_sigkill_during_verify_resumes_exactly(queued_by_hand: FakePostHog, tmp_path: Path,
                                                     at: int) -> None:
    """Killed at the N-th lookup or status read; the resumed verify looks every person up once
    more (a run never trusts an earlier run's "gone") and ends with the fake's truth, id by id."""
    queued = queued_by_hand
    before = truth(queued, ERASE)
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(queued, source)
    await queued.wait_for_deletions()
    proc = await spawn(queued, "persons", "verify", "--distinct-ids-file", str(source),
                       "--all-projects", "--wait", "--interval", "0.2",
                       env={"POSTHOG_PROJECT_ID": None})
    seen = {"n": 0}

    def kill(request: web.Request) -> str | None:
        if "batch_by_uuids" in request.path or "deletion_status" in request.path:
            seen["n"] += 1
            if seen["n"] == at and proc.returncode is None:
                os.kill(proc.pid, signal.SIGKILL)
                return "drop"
        return None

    queued.add_hook(kill)
    await proc.communicate()
    queued.injector.hooks.clear()
    assert proc.returncode == -signal.SIGKILL
    journal = Path(f"{source}.journal.sqlite")
    proven = gone_targets(journal)
    queued.stats.bodies.clear()
    for pid in (1, 2, 3):
        queued.verify_event_deletions(pid)
    report = tmp_path / "proof.csv"
    code, err = await verify(queued, source, "--report", str(report))
    assert code == 0, err
    asked = [u for path, bodies in queued.stats.bodies.items() if "batch_by_uuids" in path
             for body in bodies for u in body["uuids"]]
    # every run looks every person up again (one proven gone may be back), each once
    assert proven and len(asked) == len(set(asked)) and set(asked) == set(before.values())
    assert_verified_against_truth(report, queued, before)


async def test_sigterm_while_waiting_is_130_and_verify_resumes(org: FakePostHog,
                                                               tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    await delete(org, source)
    proc = await spawn(org, "persons", "verify", "--distinct-ids-file", str(source),
                       "--all-projects", "--wait", "--interval", "30",
                       env={"POSTHOG_PROJECT_ID": None})
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 20)
    while b"checking again in" not in line:
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
    proc.send_signal(signal.SIGTERM)
    _, err = await proc.communicate()
    assert proc.returncode == 130 and b"Verify again with" in err, err
    for pid in (1, 2, 3):
        org.verify_event_deletions(pid)
    code, err = await verify(org, source)
    assert code == 0, err


async def test_persons_the_oldest_posthog_deleted_despite_keep_person_are_verified_gone(
        tmp_path: Path) -> None:
    """PostHog's oldest ``bulk_delete`` (P-A) has no ``keep_person``: it deletes the persons, and
    the job says so ("deleted"). The verification must look them up like any deleted person,
    not skip them as kept, before it calls anything verified (found by the state machine)."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None, bulk_delete_version="P-A") as server:
        server.seed_persons(3)
        source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
        async with server.client(rate_limits=None) as ph:
            job = DeletionJob(ph, distinct_ids=source, keep_person=True, delete_events=True)
            report = await job.run()
            assert report.totals["deleted"] == 2, report.totals
            server.verify_event_deletions()
            report = await job.verify()
            assert report.verification is not None
            assert report.verification["state"] == "verified", report.verification
            rows = {row["id"]: row for row in (await job.report()).to_dict(per_id=True)["ids"]}
            assert all(rows[key]["person_check"] == "gone" for key in ("user-1", "user-2")), rows
