"""What probe20 found in ``persons verify`` and ``--all-projects`` (issue 20), pinned through the
real CLI against the offline PostHog: a verification looks again every run, looks the erased
distinct ids up, never shrinks the job's report, never says VERIFIED about what it cannot prove,
and an organisation-wide job names every gap in its claim.

Each test failed on the code before its fix (checked by stashing the fix)."""

from __future__ import annotations

import json
import shlex
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from posthog_async.jobs import DeletionJob
from posthog_async.testing import FakePostHog
from posthog_async.testing._projects import MEMBER

from ._cli import run, write_ids
from .conftest import API_KEY

ERASE = [f"user-{i}" for i in range(1, 9)] + ["p2-user-20", "ghost"]
NO_PROJECT = {"POSTHOG_PROJECT_ID": None}


@pytest.fixture
async def org() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, project_ids=(1, 2, 3), rate_limits=None) as server:
        server.seed_persons_across(16, overlap=0.5)
        yield server


async def cli(server: FakePostHog, *args: str, key: str | None = None) -> tuple[int, str]:
    code, _, err = await run(server, "persons", *args, env=NO_PROJECT, key=key)
    return code, err


async def erased_and_proven(server: FakePostHog, tmp_path: Path, *extra: str) -> Path:
    """An --all-projects job with --delete-events, its events verified by PostHog's batch, and
    a first verify that proves it all (exit 0)."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(server, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--delete-events", *extra)
    assert code == 0, err
    for pid in (1, 2, 3):
        server.verify_event_deletions(pid)
    code, err = await cli(server, "verify", "--distinct-ids-file", str(source), "--all-projects")
    assert code == 0 and "VERIFIED" in err, err
    return source


async def test_a_later_verify_finds_a_person_back_under_the_same_uuid(org: FakePostHog,
                                                                      tmp_path: Path) -> None:
    """F1: a person proven gone who is back is found again (exit 1), not "VERIFIED (checked
    now)" from a check made by an earlier run."""
    person = org.persons_with("user-5")[2]
    source = await erased_and_proven(org, tmp_path)
    org.add_person(["user-5"], project_id=2, uuid=person.uuid)
    report = tmp_path / "again.json"
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects",
                          "--report", str(report), "--per-id")
    assert code == 1 and "verification: FAILED" in err and "1 FOUND AGAIN" in err, err
    assert f"project 2 person {person.uuid}: found_again" in err
    rows = json.loads(report.read_text())["ids"]
    assert [(r["project"], r["id"]) for r in rows if r["person_check"] == "found_again"] == [
        (2, "user-5")]
    org.project(2).persons.pop(person.uuid)  # gone again: proven again
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects")
    assert code == 0 and "VERIFIED" in err, err


async def test_an_erased_distinct_id_that_names_a_new_person_fails(org: FakePostHog,
                                                                   tmp_path: Path) -> None:
    """F6: PostHog made a new person under an erased distinct id (events kept coming): the
    subject the DPO asked to erase is identifiable again; verify says so with its own count."""
    source = await erased_and_proven(org, tmp_path)
    newcomer = org.add_person(["user-6"], project_id=3)
    report = tmp_path / "reused.json"
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects",
                          "--report", str(report), "--per-id")
    assert code == 1 and "1 NOW NAME ANOTHER PERSON" in err, err
    assert "1 erased distinct ids now name another person" in err
    assert "project 3 distinct_ids user-6: names another person" in err
    data = json.loads(report.read_text())
    assert data["verification"]["distinct_ids"]["reused"] == 1
    row = next(r for r in data["ids"] if (r["project"], r["id"]) == (3, "user-6"))
    assert row["person_check"] == "id_names_another_person" and row["person"] != newcomer.uuid


async def test_the_verify_hint_keeps_the_jobs_report(org: FakePostHog, tmp_path: Path) -> None:
    """F10: the printed "prove it later" command, run verbatim, writes beside the job's report
    (which keeps its per-id rows and times), with every id and the job's own times."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    job_report = tmp_path / "rep.json"
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--delete-events", "--report", str(job_report), "--per-id")
    assert code == 0, err
    before = job_report.read_text()
    job = json.loads(before)
    hint = err.split("prove it later", 1)[1].splitlines()[1].strip()
    words = shlex.split(hint)
    assert words[0] == "posthog-async" and "--per-id" in words, hint
    code, _, err = await run(org, *words[1:], env=NO_PROJECT)
    assert code == 3, err
    assert job_report.read_text() == before  # the job's proof is untouched
    proof = json.loads((tmp_path / "rep.verify.json").read_text())
    assert len(proof["ids"]) == len(job["ids"]) > 0
    assert job["started_at"] <= proof["started_at"] <= proof["finished_at"] <= job["finished_at"]
    assert proof["verification"]["checked_at"] >= job["finished_at"][:19]


async def test_a_job_with_nothing_verifiable_is_not_verified(org: FakePostHog,
                                                             tmp_path: Path) -> None:
    """F2: --keep-person --delete-recordings: PostHog reports on none of it. Not VERIFIED, exit
    4; no events line for a job that deleted no events; the delete hint promises nothing."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--keep-person", "--delete-recordings")
    assert code == 0, err
    assert "prove it later" not in err and "recording deletions cannot be verified" in err, err
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects")
    assert code == 4 and "verification: UNVERIFIABLE" in err, err
    assert "recording deletions are not verifiable" in err and "VERIFIED" not in err
    assert "events" not in err.split("recordings:")[0].split("verification:")[1]


async def test_an_unknown_excluded_project_is_refused_before_deleting(org: FakePostHog,
                                                                      tmp_path: Path) -> None:
    """F8 (and F9): --exclude-project 9 when there is no project 9 (a typo for 2) would erase the
    project meant to be kept out: exit 2, nothing sent; a malformed one names the option."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--exclude-project", "9")
    assert code == 2 and "9: the key reaches no such project (it reaches 1, 2, 3)" in err, err
    assert not any("bulk_delete" in name for name in org.stats.by_endpoint)
    assert org.persons_with("user-1").keys() == {1, 2, 3}
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--exclude-project", "abc", "--dry-run")
    assert code == 2 and "--exclude-project" in err, err


async def test_dry_run_lines_say_found_per_project(org: FakePostHog, tmp_path: Path) -> None:
    """F9: a dry run deletes nothing; its per-project lines say what was found."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--dry-run")
    assert code == 0, err
    assert "project 2 (Project 2): found 8, not found 2" in err, err


@pytest.fixture
async def two_orgs() -> AsyncIterator[FakePostHog]:
    """The user is in Example (1, 2) and Acme (3); a key scoped to Acme."""
    async with FakePostHog(api_key=API_KEY, project_ids=(1, 2), rate_limits=None) as server:
        acme = server.add_organization("Acme", membership_level=MEMBER)
        server.add_project(3, organization=acme, name="Acme web")
        server.seed_persons_across(8, overlap=1.0)
        server.add_key("phx_acme_scoped_key_0123456789", organizations=[acme.id])
        yield server


async def test_an_organisation_scoped_key_names_the_organisations_left_out(
        two_orgs: FakePostHog, tmp_path: Path) -> None:
    """F7: the user's other organisation (where the same ids are persons) is not covered: named
    in the summary and the report, exit 1; the one project covered has its line."""
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
    report = tmp_path / "dry.json"
    code, err = await cli(two_orgs, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--dry-run", "--report", str(report),
                          key="phx_acme_scoped_key_0123456789")
    assert code == 1, err
    assert "project 3 (Acme web): found 2, not found 0" in err
    example = two_orgs.default_organization.id
    assert f"NOT COVERED: organization 'Example' ({example})" in err, err
    gaps = json.loads(report.read_text())["not_covered"]
    assert [(g.get("id"), g["organization"]) for g in gaps] == [(None, example)]


async def test_a_project_created_after_an_all_projects_job_is_a_gap(org: FakePostHog,
                                                                     tmp_path: Path) -> None:
    """F3: "every project the key reaches" with a project it now reaches outside the job is not
    an organisation done: verify fails (exit 1) naming it."""
    source = await erased_and_proven(org, tmp_path)
    org.add_project(4, name="New app")
    org.add_person(["user-1"], project_id=4)
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects")
    assert code == 1 and "NOT COVERED: project 4 (New app): appeared after this job" in err, err
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--delete-events", "--resume")
    assert code == 1 and "not covered: project 4: appeared after this job" in err, err
    assert "the key cannot reach" not in err


async def test_a_failing_status_read_is_reported_not_raised(org: FakePostHog,
                                                            tmp_path: Path) -> None:
    """F11: deletion_status answers 503 past the patience: the events are "not checked", the
    report is written, the hint says to verify again; the next verify proves it."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--delete-events")
    assert code == 0, err
    for pid in (1, 2, 3):
        org.verify_event_deletions(pid)
    org.fail_next(503, times=10_000, path_contains="deletion_status")
    report = tmp_path / "v.json"
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects",
                          "--patience", "1", "--report", str(report))
    assert code == 1 and "NOT CHECKED (status read failed)" in err, err
    assert "could not be read (PostHog 503" in err and "Verify again with" in err
    data: dict[str, Any] = json.loads(report.read_text())
    assert data["verification"]["events"]["check_failed"] > 0
    org.injector.failures.clear()  # PostHog recovers
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects")
    assert code == 0 and "VERIFIED" in err, err


async def test_the_hint_after_until_keeps_waiting(org: FakePostHog, tmp_path: Path) -> None:
    """F5: --wait --until ran out: the hint says so and keeps --wait."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--all-projects",
                          "--delete-events")
    assert code == 0, err
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--all-projects",
                          "--wait", "--until", "0.3s", "--interval", "0.2")
    assert code == 3 and "stopped waiting at" in err and "(or add --wait)" not in err, err
    assert "persons verify" in err and "--wait --interval 0.2 --until TIME" in err


async def test_an_earlier_erasures_row_is_not_this_jobs_proof(org: FakePostHog,
                                                               tmp_path: Path) -> None:
    """F12: the person was erased two days ago (row completed), came back under the same uuid
    (PostHog derives it from the distinct id), and is erased again: PostHog (the version whose
    row is unique per person) writes no new row. The old row proves nothing about this request:
    pending before the next batch, wrong after it; never VERIFIED."""
    before = {key: org.persons_with(key)[1].uuid for key in ("user-1", "user-2")}
    first = write_ids(tmp_path / "first.txt", list(before))
    code, err = await cli(org, "delete", "--distinct-ids-file", str(first), "--project-id", "1",
                          "--delete-events")
    assert code == 0, err
    org.verify_event_deletions(1)
    two_days_ago = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    for row in org.project(1).deletion_rows.values():
        row["created_at"] = row["delete_verified_at"] = two_days_ago
    for key, uuid in before.items():  # back, under the same uuids
        org.add_person([key], project_id=1, uuid=uuid)
    again = write_ids(tmp_path / "again.txt", ["user-1", "user-2"])
    code, err = await cli(org, "delete", "--distinct-ids-file", str(again), "--project-id", "1",
                          "--delete-events")
    assert code == 0, err
    code, err = await cli(org, "verify", "--distinct-ids-file", str(again), "--project-id", "1")
    assert code == 3 and "2 only an earlier erasure's row yet" in err and "VERIFIED" not in err, err
    async with org.client(rate_limits=None) as ph:
        job = DeletionJob(ph, distinct_ids=again, projects=[1])
        next_week = datetime.now(timezone.utc) + timedelta(days=8)
        report = await job.verify(clock=lambda: next_week)
    assert report.verification is not None and report.verification["state"] == "failed"
    assert report.verification["events"] == {"old_row_after_batch": 2}


async def test_verify_options_say_what_is_wrong(org: FakePostHog, tmp_path: Path) -> None:
    """F9: --until in the past, an hour of 25, a negative grace: exit 2 in the option's words."""
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--project-id", "1")
    assert code == 0, err
    base = ("verify", "--distinct-ids-file", str(source), "--project-id", "1")
    code, err = await cli(org, *base, "--wait", "--until", "2020-01-01T00:00")
    assert code == 2 and "is in the past" in err, err
    code, err = await cli(org, *base, "--batch-schedule", "sun 25:00")
    assert code == 2 and "00:00 to 23:59" in err and "Monday 0" not in err, err
    code, err = await cli(org, *base, "--queued-grace", "-1")
    assert code == 2 and "0 seconds or more" in err, err
    code, err = await cli(org, *base, "--queued-grace", "0")
    assert code == 0, err


async def test_a_fresh_pending_row_beside_an_old_completed_one_is_pending(
        org: FakePostHog, tmp_path: Path) -> None:
    """F12, newer PostHog: a verified row no longer blocks a new request, so the person has two
    rows, this job's pending one (newest first) and the earlier erasure's completed one. The
    older row never wins: pending, not VERIFIED."""
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
    code, err = await cli(org, "delete", "--distinct-ids-file", str(source), "--project-id", "1",
                          "--delete-events")
    assert code == 0, err
    two_days_ago = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()
    rows: list[dict[str, Any]] = []
    for row in sorted(org.project(1).deletion_rows.values(), key=lambda r: r["person_uuid"]):
        rows += [dict(row), {**row, "created_at": two_days_ago, "status": "completed",
                             "delete_verified_at": two_days_ago}]

    def two_rows_each(request: web.Request) -> web.Response | None:
        if "deletion_status" not in request.path:
            return None
        wanted = request.query.get("person_uuid")
        mine = [r for r in rows if wanted in (None, r["person_uuid"])]
        return web.json_response({"count": len(mine), "next": None, "previous": None,
                                  "results": mine})

    org.add_hook(two_rows_each)
    code, err = await cli(org, "verify", "--distinct-ids-file", str(source), "--project-id", "1")
    assert code == 3 and "2 pending at PostHog" in err and "VERIFIED" not in err, err
