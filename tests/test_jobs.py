"""DeletionJob against the offline PostHog: exact accounting, input you can trust, one job at a
time, stopping on what will not heal, waiting out long rate limits, reports that are proof."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from posthog_async import AsyncPostHog
from posthog_async.jobs import (
    DeletionJob,
    InputError,
    InputSpec,
    JobInterrupted,
    JobProgress,
    JournalBusy,
)
from posthog_async.testing import FakePostHog

from .conftest import API_KEY

BULK = "POST /api/projects/1/persons/bulk_delete/"


def write_ids(path: Path, lines: list[str], *, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    path.write_bytes(bom + ("\n".join(lines) + "\n").encode(encoding))
    return path


def ids_of(server: FakePostHog) -> set[str]:
    return {d for p in server.project().persons.values() for d in p.distinct_ids}


@pytest.fixture
async def rec() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


async def test_totals_add_up_and_every_id_is_named(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(2500)
    ids = [f"user-{i}" for i in range(1, 2601)] + ["", "  ", "user-5", "user-6", "bad\tid"]
    source = write_ids(tmp_path / "erase.txt", ids)
    progress: list[JobProgress] = []
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, delete_events=True,
                                   on_progress=progress.append).run()
    t = report.totals
    assert (t["requested"], t["blank"], t["duplicates"], t["invalid"], t["unique"]) == (2605, 2, 2, 1, 2600)
    assert t["requested"] == t["unique"] + t["blank"] + t["duplicates"] + t["invalid"]
    assert t["deleted"] == t["persons_deleted"] == t["persons_found"] == 2500
    assert t["not_found"] == 100 and t["failed"] == t["pending"] == t["unresolved"] == 0
    assert t["events_queued_for_persons"] == 2500
    assert report.complete and not report.ok  # one invalid id: exit status 1, and it is named
    assert report.rejected == [{"kind": "distinct_ids", "line": 2605, "value": "bad\\x09id",
                                "reason": "contains control or invisible characters (shown "
                                          "here with \\x escapes)"}]
    assert report.exactness["per_id_outcomes_exact"] and report.exactness["person_totals_exact"]
    assert report.deletion_status is None  # only on request
    assert sorted(len(b["distinct_ids"]) for b in rec.stats.bodies[BULK]) == [600, 1000, 1000]
    assert progress[-1].ids_finished == 2600 and progress[-1].chunks_finished == 3
    out = report.write(tmp_path / "report.json", per_id=True)
    data = json.loads(out.read_text())
    assert data["totals"] == t and len(data["ids"]) == 2601 and API_KEY not in out.read_text()
    rows = list(csv.reader(report.write(tmp_path / "report.csv").read_text().splitlines()))
    header = rows.index(["kind", "id", "outcome", "reason", "person", "chunk", "project",
                         "person_check", "gone_at", "events", "delete_verified_at"])
    outcomes = {r[1]: r[2] for r in rows[header + 1:]}
    assert outcomes["user-1"] == "deleted" and outcomes["user-2600"] == "not_found"
    assert outcomes["bad\\x09id"] == "invalid" and len(outcomes) == 2601


async def test_without_lookups_totals_stay_exact_and_say_what_is_not(rec: FakePostHog,
                                                                     tmp_path: Path) -> None:
    rec.seed_persons(250)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(101, 301)])
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, resolve=False, chunk_size=100).run()
    t = report.totals
    # chunk 1 matched all 100 ids, chunk 2 only 50: those are named "unresolved"
    assert t["deleted"] == 100 and t["unresolved"] == 100 and t["persons_deleted"] == 150
    assert not report.exactness["per_id_outcomes_exact"]
    assert report.exactness["person_totals_exact"] and report.ok
    assert not any("batch_by" in key for key in rec.stats.bodies)


async def test_dry_run_sends_no_delete(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(300)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(250, 351)])
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, dry_run=True).run()
    assert BULK not in rec.stats.bodies and len(rec.project().persons) == 300
    assert report.totals["found"] == 51 and report.totals["not_found"] == 50
    assert report.totals["deleted"] == 0
    assert Path(f"{source}.dry-run.sqlite").exists()


@pytest.mark.parametrize("encoding,bom", [
    ("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-32-le", codecs.BOM_UTF32_LE),
])
async def test_encodings_with_a_mark_are_read(rec: FakePostHog, tmp_path: Path, encoding: str,
                                              bom: bytes) -> None:
    rec.seed_persons(3)
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2", "ghöst"], encoding=encoding, bom=bom)
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source).run()
    assert report.totals["deleted"] == 2 and report.totals["not_found"] == 1 and report.ok
    sent = rec.stats.bodies[BULK][0]["distinct_ids"]
    assert sorted(sent) == ["ghöst", "user-1", "user-2"]  # no mark glued to the first id


@pytest.mark.parametrize("content,message", [
    ("user-1\nuser-2\n".encode("utf-16-le"), "NUL bytes"),
    (b"user-1\nbr\xe9sil\n", "not valid utf-8"),
])
async def test_other_encodings_are_refused_before_anything_is_sent(
        rec: FakePostHog, tmp_path: Path, content: bytes, message: str) -> None:
    rec.seed_persons(3)
    source = tmp_path / "erase.txt"
    source.write_bytes(content)
    async with rec.client(rate_limits=None) as ph:
        with pytest.raises(InputError, match=message):
            await DeletionJob(ph, distinct_ids=source).run()
    assert rec.stats.requests == 0 and len(rec.project().persons) == 3


async def test_values_that_cannot_be_ids_are_rejected_and_listed(rec: FakePostHog,
                                                                tmp_path: Path) -> None:
    rec.seed_persons(3)
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2,user-3", "x" * 10_000_000, "a\x00b"])
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source).run()
    reasons = {r["line"]: r["reason"] for r in report.rejected}
    assert "CSV" in reasons[2] and "400 characters" in reasons[3] and "control" in reasons[4]
    assert report.totals["invalid"] == 3 and report.totals["deleted"] == 1 and not report.ok
    assert rec.stats.bodies[BULK] == [{"distinct_ids": ["user-1"], "delete_events": False,
                                       "delete_recordings": False, "keep_person": False}]


async def test_csv_and_json_lines_exports(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(5)
    table = tmp_path / "export.csv"
    table.write_text('email,distinct_id,note\na@x.io,user-1,"has, comma"\nb@x.io,user-2,\n,,\n')
    lines = tmp_path / "export.jsonl"
    lines.write_text('{"distinct_id": "user-3"}\n{"distinct_id": 4}\nnot json\n{"other": 1}\n'
                     '{"distinct_id": null}\n')
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, inputs=[InputSpec("distinct_ids", str(table), "csv", "distinct_id")],
                                   journal=tmp_path / "a.sqlite").run()
        assert report.totals["deleted"] == 2 and report.totals["blank"] == 1 and report.ok
        report = await DeletionJob(ph, inputs=[InputSpec("distinct_ids", str(lines), "jsonl", "distinct_id")],
                                   journal=tmp_path / "b.sqlite").run()
        assert report.totals["deleted"] == 1 and report.totals["not_found"] == 1  # "4" is nobody
        assert sorted(r["reason"] for r in report.rejected) == [
            "field 'distinct_id' is null, not a string", "has no 'distinct_id' field",
            "not valid JSON"]
        with pytest.raises(InputError, match="no column 'user'"):
            await DeletionJob(ph, inputs=[InputSpec("distinct_ids", str(table), "csv", "user")],
                              journal=tmp_path / "c.sqlite").run()


async def test_resume_refuses_other_input_and_loads_appended_lines(rec: FakePostHog,
                                                                   tmp_path: Path) -> None:
    rec.seed_persons(30)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 11)])
    notices: list[str] = []
    async with rec.client(rate_limits=None) as ph:
        first = await DeletionJob(ph, distinct_ids=source).run()
        assert first.totals["deleted"] == 10
        other = write_ids(tmp_path / "other.txt", ["user-20"])
        with pytest.raises(InputError, match=r"other inputs|not the input"):
            await DeletionJob(ph, distinct_ids=other, journal=Path(f"{source}.journal.sqlite")).run()
        write_ids(source, [f"user-{i}" for i in range(2, 12)])  # changed, not grown
        with pytest.raises(InputError, match="not the input this journal was started with"):
            await DeletionJob(ph, distinct_ids=source).run()
        write_ids(source, [f"user-{i}" for i in range(1, 16)])  # the same lines, and five more
        grown = await DeletionJob(ph, distinct_ids=source, on_notice=notices.append).run()
        with pytest.raises(InputError, match="other options"):
            await DeletionJob(ph, distinct_ids=source, delete_events=True).run()
    assert grown.totals["deleted"] == 15 and grown.totals["unique"] == 15 and grown.ok
    assert any("appended" in n for n in notices)
    assert len(rec.stats.bodies[BULK]) == 2  # the first ten were not sent again


async def test_one_job_at_a_time(rec: FakePostHog, tmp_path: Path) -> None:
    from posthog_async.jobs._journal import Journal

    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    holder = Journal(Path(f"{source}.journal.sqlite"))
    try:
        async with rec.client(rate_limits=None) as ph:
            with pytest.raises(JournalBusy, match=r"in use by pid \d+"):
                await DeletionJob(ph, distinct_ids=source).run()
    finally:
        holder.close()
    assert rec.stats.requests == 0


async def test_a_bad_key_stops_at_once_and_the_job_resumes(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(5000)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 5001)])
    async with AsyncPostHog("phx_revoked", host=rec.url, project_id=1, rate_limits=None) as ph:
        stopped = await DeletionJob(ph, distinct_ids=source, chunk_size=100, concurrency=2).run()
    assert stopped.stopped and "AuthenticationError" in stopped.stopped
    assert rec.stats.requests <= 3 and stopped.totals["pending"] == 5000 and not stopped.complete
    async with rec.client(rate_limits=None) as ph:
        done = await DeletionJob(ph, distinct_ids=source, chunk_size=100).run()
    assert done.ok and done.totals["deleted"] == 5000


async def test_a_long_retry_after_makes_the_job_wait(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(20)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 21)])
    rec.fail_next(429, retry_after=2, path_contains="bulk_delete")
    notices: list[str] = []
    async with rec.client(max_retry_after=0.5) as ph:  # the client itself sleeps through 0.5 s
        report = await DeletionJob(ph, distinct_ids=source, on_notice=notices.append).run()
    assert report.ok and report.totals["deleted"] == 20 and report.totals["failed"] == 0
    assert any("resuming at" in n for n in notices)


async def test_deletion_status_only_for_this_jobs_persons(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(40)
    async with rec.client(rate_limits=None) as ph:
        await ph.persons.bulk_delete_all(distinct_ids=[f"user-{i}" for i in range(30, 41)],
                                         delete_events=True)  # someone else's deletions
        source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 11)])
        report = await DeletionJob(ph, distinct_ids=source, delete_events=True,
                                   check_deletion_status=True).run()
    assert report.deletion_status == {"persons_matched": 10, "pending": 10}


async def test_a_stop_while_loading_sends_nothing_and_loads_again(rec: FakePostHog,
                                                                  tmp_path: Path) -> None:
    rec.seed_persons(5)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 6)])
    async with rec.client(rate_limits=None) as ph:
        job = DeletionJob(ph, distinct_ids=source)
        job.request_stop()
        with pytest.raises(JobInterrupted):
            await job.run()
        assert rec.stats.requests == 0
        report = await DeletionJob(ph, distinct_ids=source).run()
    assert report.ok and report.totals["deleted"] == 5


async def test_iterables_and_their_checks(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(3)
    async with rec.client(rate_limits=None) as ph:
        with pytest.raises(ValueError, match="journal"):
            DeletionJob(ph, distinct_ids=["user-1"])
        with pytest.raises(ValueError, match="concurrency"):
            DeletionJob(ph, distinct_ids=["user-1"], journal=tmp_path / "j", concurrency=0)
        report = await DeletionJob(ph, distinct_ids=["user-1", "user-2"], journal=tmp_path / "j").run()
        assert report.totals["deleted"] == 2
        with pytest.raises(InputError, match="differ"):
            await DeletionJob(ph, distinct_ids=["user-3"], journal=tmp_path / "j").run()


def per_id(report: Any) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in report.to_dict(per_id=True)["ids"]}
