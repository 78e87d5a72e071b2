"""The report files: the CSV (the per-id proof) carries everything the JSON says besides the
ids, as ``#`` lines; a per-id JSON report is streamed from the journal, so its memory does not
grow with the ids. Against the offline PostHog."""

from __future__ import annotations

import csv
import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from posthog_async.jobs import DeletionJob
from posthog_async.testing import FakePostHog

from .conftest import API_KEY


@pytest.fixture
async def srv() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        yield server


def write_ids(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_the_csv_report_carries_the_whole_proof(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3)
    srv.add_person([f"dev-{i:02d}" for i in range(12)])
    source = write_ids(tmp_path / "erase.txt", ["user-1", "dev-00", "dev-11", "bad\x01id"])
    async with srv.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, chunk_size=1, concurrency=1,
                                   delete_events=True).run()
    path = report.write(tmp_path / "r.csv")
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    comments = [row for row in rows if row[0].startswith("#")]
    named = {row[0] for row in comments}
    assert {"# exactness per_id_outcomes_exact", "# exactness person_totals_exact",
            "# exactness why", "# option delete_events", "# option resolve", "# input",
            "# project 1", "# stopped", "# started_at", "# finished_at", "# journal",
            "# deleted", "# unresolved"} <= named, named
    values = {row[0]: row[1] for row in comments}
    assert values["# exactness per_id_outcomes_exact"] == "no"  # dev-11 is unresolved
    assert values["# option delete_events"] == "true" and values["# stopped"] == ""
    assert json.loads(values["# input"])["path"] == str(source)
    assert json.loads(values["# project 1"])["state"]
    whys = [row[1] for row in comments if row[0] == "# exactness why"]
    assert whys == report.exactness["why"]
    # the per-id rows follow, with the header, as before
    header = rows.index(["kind", "id", "outcome", "reason", "person", "chunk", "project",
                         "person_check", "gone_at", "events", "delete_verified_at"])
    assert all(not row[0].startswith("#") for row in rows[header:])
    assert {row[1]: row[2] for row in rows[header + 1:]}["dev-11"] == "unresolved"


async def test_a_stopped_jobs_csv_says_why(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(2)
    srv.fail_next(403, path_contains="bulk_delete")
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
    async with srv.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, concurrency=1).run()
    assert report.stopped
    rows = list(csv.reader(report.write(tmp_path / "r.csv").read_text().splitlines()))
    assert ["# stopped", report.stopped] in rows


async def test_a_per_id_json_report_is_streamed(srv: FakePostHog, tmp_path: Path) -> None:
    """20,000 ids: the JSON equals to_dict(per_id=True), and writing it allocates little (a
    list of every id's row, then one string of it, took ~25 MB here)."""
    source = write_ids(tmp_path / "erase.txt", [f"ghost-{i:06d}" for i in range(20_000)])
    async with srv.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, chunk_size=1000, concurrency=4,
                                   dry_run=True).run()
    tracemalloc.start()
    try:
        path = report.write(tmp_path / "r.json", per_id=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, peak
    assert json.loads(path.read_text()) == report.to_dict(per_id=True)
    small = report.write(tmp_path / "small.json")
    assert json.loads(small.read_text()) == report.to_dict()


async def test_a_per_id_json_report_of_one_id_is_valid_json(srv: FakePostHog,
                                                            tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ["ghost"])
    async with srv.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, dry_run=True).run()
    path = report.write(tmp_path / "r.json", per_id=True)
    assert json.loads(path.read_text())["ids"][0]["id"] == "ghost"
