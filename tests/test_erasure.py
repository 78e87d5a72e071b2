"""One erasure across an organisation's projects (issue 20): the same distinct id is a different
person in each project, every (project, id) is settled and reported, a project the key cannot
reach is named as not covered and the others go on, and a resume never switches projects.

Each test failed on the code before this change (``DeletionJob`` had no ``projects``, the CLI
took one ``--project-id``, and the journal did not record its project)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from posthog_async.jobs import DeletionJob, InputError
from posthog_async.testing import FakePostHog

from ._cli import run, spawn, write_ids
from .conftest import API_KEY

ERASE = ["user-1", "user-3", "anon-3", "user-14", "p2-user-20", "ghost", "user-1", ""]


@pytest.fixture
async def org() -> AsyncIterator[FakePostHog]:
    """Three projects of one organisation: ``user-1``..``user-15`` (and ``anon-3``, ``anon-6``,
    ...) exist in each, as three different persons; ``p<project>-user-16``.. are each one's own."""
    async with FakePostHog(api_key=API_KEY, project_ids=(1, 2, 3), rate_limits=None,
                           record_bodies=True) as server:
        server.seed_persons_across(30, overlap=0.5)
        yield server


def truth(server: FakePostHog, keys: list[str]) -> dict[tuple[int, str], str | None]:
    """Who each distinct id names in each project, before the job."""
    return {(pid, key): (server.persons_with(key).get(pid).uuid  # type: ignore[union-attr]
                         if pid in server.persons_with(key) else None)
            for pid in server.projects for key in keys if key}


def rows(report: Any) -> dict[tuple[int | None, str, str], dict[str, Any]]:
    return {(r["project"], r["kind"], r["id"]): r for r in report.to_dict(per_id=True)["ids"]}


def assert_matches(report: Any, server: FakePostHog, before: dict[tuple[int, str], str | None],
                   projects: list[int]) -> None:
    """Every (project, distinct id) is deleted exactly where it named a person (that person, by
    uuid), not found elsewhere, and PostHog holds none of those persons any more."""
    found = rows(report)
    for (pid, key), person in before.items():
        if pid not in projects:
            continue
        row = found[pid, "distinct_ids", key]
        if person is None:
            assert row["outcome"] == "not_found", row
        else:
            assert row["outcome"] == "deleted" and row["person"] == person, row
            assert person not in server.project(pid).persons


async def test_a_job_across_three_projects_with_overlapping_distinct_ids(
        org: FakePostHog, tmp_path: Path) -> None:
    before = truth(org, ERASE)
    in_two = org.persons_with("user-2")[2].uuid  # a UUID names a person in one project only
    bystanders = {pid: len(p.persons) for pid, p in org.projects.items()}
    source = write_ids(tmp_path / "erase.txt", ERASE)
    uuids = write_ids(tmp_path / "uuids.txt", [in_two.upper()])
    async with org.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, ids=uuids, projects=[1, 2, 3],
                                   chunk_size=2, concurrency=3).run()
    assert report.ok, (report.totals, report.not_covered)
    assert_matches(report, org, before, [1, 2, 3])
    found = rows(report)
    for pid in (1, 2, 3):  # user-3's alias, deleted with it (by lookup, or credited after)
        assert found[pid, "distinct_ids", "anon-3"]["person"] == before[pid, "user-3"]
    assert [found[p, "ids", in_two]["outcome"] for p in (1, 2, 3)] == [
        "not_found", "deleted", "not_found"]
    t = report.totals
    # 6 unique distinct ids + 1 UUID, each in 3 projects; user-1/3/14 and anon-3 (= user-3's
    # person) in all three, p2-user-20 in project 2, the UUID in project 2
    assert (t["unique"], t["ids_in_projects"], t["projects"]) == (7, 21, 3)
    assert (t["deleted"], t["not_found"], t["persons_deleted"]) == (14, 7, 11)
    per_project = {p["id"]: p["totals"] for p in report.projects}
    assert [per_project[p]["persons_deleted"] for p in (1, 2, 3)] == [3, 5, 3]
    assert {p: len(org.project(p).persons) for p in (1, 2, 3)} == {
        p: n - per_project[p]["persons_deleted"] for p, n in bystanders.items()}
    assert org.project(1).persons and "user-2" in org.project(1).by_distinct_id  # untouched
    sent = {path.split("/")[3] for path in org.stats.bodies if "bulk_delete" in path}
    assert sent == {"1", "2", "3"}  # each project's persons through its own URL
    assert report.selection == {"all": False, "ids": [1, 2, 3], "exclude": [], "checked": True}


async def test_all_projects_from_the_cli_with_one_excluded_and_one_not_covered(
        org: FakePostHog, tmp_path: Path) -> None:
    """``--all-projects``: discovery as PostHog decides it; an organisation refusing members'
    keys is not covered (exit 1, PostHog's message), an excluded project is left alone."""
    legacy = org.add_organization("Legacy", membership_level=1,
                                  members_can_use_personal_api_keys=False)
    org.add_project(7, organization=legacy)
    org.add_person(["user-1"], project_id=7)
    before = truth(org, ERASE)
    source = write_ids(tmp_path / "erase.txt", ERASE)
    report_path = tmp_path / "report.json"
    code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(source),
                             "--all-projects", "--exclude-project", "3", "--report",
                             str(report_path), "--per-id", env={"POSTHOG_PROJECT_ID": None})
    assert code == 1, err
    assert "NOT COVERED: project 7" in err and "does not allow using personal API keys" in err
    assert "excluded on purpose: project 3" in err
    assert "--all-projects --exclude-project 3" in err  # the resume and verify hints
    data = json.loads(report_path.read_text())
    assert [(p["id"], p["state"]) for p in data["projects"]] == [
        (1, "covered"), (2, "covered"), (3, "excluded"), (7, "not_covered")]
    assert data["not_covered"][0]["status_code"] == 403 and data["excluded"] == [3]
    ids = {(r["project"], r["id"]): r for r in data["ids"]}
    assert ids[7, "user-1"]["outcome"] == "not_covered"
    assert "does not allow using personal API keys" in ids[7, "user-1"]["reason"]
    assert not any(p == 3 for p, _ in ids)  # an excluded project holds no ids
    assert "user-1" in org.project(3).by_distinct_id and "user-1" in org.project(7).by_distinct_id
    assert data["totals"]["not_covered"] == 6 and data["totals"]["pending"] == 0
    for (pid, key), person in before.items():
        if pid in (1, 2):
            assert ids[pid, key]["outcome"] == ("not_found" if person is None else "deleted")


async def test_a_project_not_covered_is_named_and_covered_on_resume(org: FakePostHog,
                                                                   tmp_path: Path) -> None:
    """A key limited to projects 1 and 2, asked for 1, 2 and 3: project 3 is not covered with
    PostHog's own words, the others are done; once the key reaches it, a resume covers it."""
    key = "phx_team_scoped_key_0123456789"
    org.add_key(key, projects=[1, 2])
    before = truth(org, ERASE)
    source = write_ids(tmp_path / "erase.txt", ERASE)
    code, _, err = await run(org, "--project-id", "1", "persons", "delete", "--project-id", "2",
                             "--project-id", "3", "--distinct-ids-file", str(source), key=key)
    assert code == 1, err
    assert ("NOT COVERED: project 3: PostHog answered 403: API key does not have access to the "
            "requested project: ID 3.") in err
    assert "--project-id 1 --project-id 2 --project-id 3" in err  # the resume command
    assert len(org.project(3).persons) == 30 and "user-1" not in org.project(1).by_distinct_id
    org.add_key(key, projects=[1, 2, 3])
    code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(source),
                             "--resume", "--project-id", "3", "--project-id", "2",
                             "--project-id", "1", key=key)
    assert code == 0, err
    async with org.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, projects=[1, 2, 3]).report()
    assert_matches(report, org, before, [1, 2, 3])
    assert not report.not_covered


async def test_a_project_refused_during_the_run_leaves_the_others_going(
        org: FakePostHog, tmp_path: Path) -> None:
    before = truth(org, ERASE)
    org.fail_next(404, times=1000, path_contains="/api/projects/2/persons/")
    source = write_ids(tmp_path / "erase.txt", ERASE)
    notes: list[str] = []
    async with org.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, projects=[1, 2, 3], chunk_size=2,
                                   on_notice=notes.append).run()
    assert not report.ok and not report.stopped
    assert [(p["id"], p["state"], p["status_code"]) for p in report.not_covered] == [
        (2, "not_covered", 404)]
    assert any("project 2 is not covered" in note for note in notes)
    assert_matches(report, org, before, [1, 3])
    assert {r["outcome"] for (p, _, _), r in rows(report).items() if p == 2} == {"not_covered"}
    assert len(org.project(2).persons) == 30


async def test_a_resume_never_switches_projects(org: FakePostHog, tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    org.fail_next(502, times=10_000, path_contains="bulk_delete")
    code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(source),
                             "--project-id", "1", "--project-id", "2", "--patience", "1")
    assert code == 1, err
    org.injector.failures.clear()
    for other in (["--project-id", "1"], ["--project-id", "3", "--project-id", "2"],
                  ["--all-projects"]):
        code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(source),
                                 "--resume", "--retry-failed", *other,
                                 env={"POSTHOG_PROJECT_ID": None})
        assert code == 2 and "was started for projects 1, 2" in err, err
    assert len(org.project(1).persons) == 30  # nothing sent by a refused resume
    code, _, err = await run(org, "persons", "delete", "--distinct-ids-file", str(source),
                             "--resume", "--retry-failed", env={"POSTHOG_PROJECT_ID": None})
    assert code == 0, err  # no project given: the journal's
    assert "user-1" not in org.project(1).by_distinct_id
    assert "user-1" not in org.project(2).by_distinct_id and "user-1" in org.project(3).by_distinct_id


async def test_the_python_api_refuses_what_makes_no_sense(org: FakePostHog, tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ERASE)
    async with org.client(rate_limits=None) as ph:
        with pytest.raises(ValueError, match="exclude_projects"):
            DeletionJob(ph, distinct_ids=source, projects=[1, 2], exclude_projects=[2])
        with pytest.raises(ValueError, match="project number"):
            DeletionJob(ph, distinct_ids=source, projects=["@current"])
        with pytest.raises(InputError, match="no project to work in"):
            await DeletionJob(ph, distinct_ids=source, projects="all",
                              exclude_projects=[1, 2, 3]).run()
        reach = await ph.reachable_projects()
        report = await DeletionJob(ph, distinct_ids=source, projects=reach,
                                   journal=tmp_path / "j.sqlite").run()
        assert report.ok and report.selection["all"] and report.totals["projects"] == 3


# -- SIGKILL in the middle of a job across projects -------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("kills", [[(3, True), (5, False)]])
async def test_sigkill_during_a_job_across_projects_resumes_exactly(
        org: FakePostHog, tmp_path: Path, kills: list[tuple[int, bool]]) -> None:
    """The CLI is killed at the N-th bulk_delete (after PostHog did the work, or before it saw
    it), twice, then resumed to the end: every (project, id) is what PostHog did."""
    erase = [f"user-{i}" for i in range(1, 16)] + ["anon-3", "anon-9", "p1-user-20",
                                                   "p3-user-25", "ghost"]
    before = truth(org, erase)
    source = write_ids(tmp_path / "erase.txt", erase)
    args = ["persons", "delete", "--distinct-ids-file", str(source), "--all-projects",
            "--chunk-size", "4", "--concurrency", "2", "--delete-events"]
    for n, (at, processed) in enumerate(kills):
        proc = await spawn(org, *args, *(["--resume"] if n else []))
        seen = {"n": 0}

        def kill(request: web.Request, proc: Any = proc, at: int = at,
                 processed: bool = processed, seen: dict[str, int] = seen) -> str | None:
            if "bulk_delete" not in request.path:
                return None
            seen["n"] += 1
            if seen["n"] == at and proc.returncode is None:
                os.kill(proc.pid, signal.SIGKILL)
                if processed:
                    org.fail_next(None, lose_answer=True, path_contains=request.path)
                    return None
                return "drop"
            return None

        org.injector.hooks[:] = [kill]
        await proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        org.injector.hooks.clear()
    report_path = tmp_path / "report.json"
    code, _, err = await run(org, *args, "--resume", "--report", str(report_path), "--per-id")
    assert code == 0, err
    async with org.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, projects="all").report()
    assert_matches(report, org, before, [1, 2, 3])
    data = json.loads(report_path.read_text())
    assert data["totals"]["lost_answers"] >= 1
    rows_by_project = {(r["project"], r["id"]) for r in data["ids"]}
    assert len(rows_by_project) == 3 * len(set(erase))
    events = {pid: {row["person_uuid"] for row in org.project(pid).deletion_status}
              for pid in (1, 2, 3)}
    for (pid, _), person in before.items():
        assert (person in events[pid]) == (person is not None)
