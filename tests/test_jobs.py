"""DeletionJob and the CLI: journal, resume after SIGKILL and Ctrl-C, dry runs, reports."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from posthog_async import AsyncPostHog
from posthog_async.cli import main as cli_main
from posthog_async.jobs import DeletionJob, JobProgress
from posthog_async.jobs._journal import Journal
from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY

BULK = "POST /api/projects/1/persons/bulk_delete/"


def write_ids(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
async def rec() -> FakePostHog:  # type: ignore[misc]
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


async def test_job_totals_add_up(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(2500)
    ids = [f"user-{i}" for i in range(1, 2601)] + ["", "  ", "user-5", "user-6"]
    source = write_ids(tmp_path / "erase.txt", ids)
    progress: list[JobProgress] = []
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, delete_events=True,
                                   on_progress=progress.append).run()
    t = report.totals
    assert (t["requested"], t["blank"], t["duplicates"], t["unique"]) == (2604, 2, 2, 2600)
    assert t["requested"] == t["unique"] + t["blank"] + t["duplicates"] + t["invalid"]
    assert t["found"] == t["deleted"] == 2500 and t["not_found"] == 100
    assert t["failed"] == t["pending"] == 0 and report.ok
    assert report.deletion_status == {"pending": 2500}
    assert sorted(len(b["distinct_ids"]) for b in rec.stats.bodies[BULK]) == [600, 1000, 1000]
    assert progress[-1].ids_finished == 2600 and progress[-1].chunks_finished == 3
    assert Path(f"{source}.journal.sqlite").exists()
    out = report.write(tmp_path / "report.json", per_id=True)
    data = json.loads(out.read_text())
    assert data["totals"] == t and len(data["ids"]) == 2600 and API_KEY not in out.read_text()
    rows = list(csv.reader(report.write(tmp_path / "report.csv").read_text().splitlines()))
    assert ["kind", "id", "outcome", "chunk", "reason"] in rows
    assert sum(1 for r in rows if r[:1] == ["distinct_ids"]) == 2600


async def test_resolve_gives_exact_outcomes_and_invalid_uuids(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(10)
    uuids = list(rec.project().persons)[:4]
    source = write_ids(tmp_path / "ids.txt", uuids + ["not-a-uuid", "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"])
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, ids=source, resolve=True).run()
    t = report.totals
    assert t["invalid"] == 1 and t["deleted"] == 4 and t["not_found"] == 1 and report.not_found_is_exact
    assert not report.ok and report.complete
    assert report.rejected == [{"kind": "ids", "value": "not-a-uuid", "reason": "not a valid UUID"}]
    outcomes = {r["id"]: r["outcome"] for r in report.to_dict(per_id=True)["ids"]}
    assert outcomes["0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"] == "not_found"
    assert outcomes["not-a-uuid"] == "invalid" and outcomes[uuids[0]] == "deleted"


async def test_dry_run_sends_no_delete(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(300)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(250, 351)])
    async with rec.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, dry_run=True).run()
    assert BULK not in rec.stats.bodies and len(rec.project().persons) == 300
    assert report.totals["found"] == 51 and report.totals["not_found"] == 50
    assert report.totals["deleted"] == 0
    assert Path(f"{source}.dry-run.sqlite").exists()


async def test_failed_chunk_then_retry_failed(rec: FakePostHog, tmp_path: Path) -> None:
    rec.seed_persons(300)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 301)])
    rec.fail_next(403, path_contains="bulk_delete")
    async with rec.client(rate_limits=None, max_concurrency=1) as ph:
        first = await DeletionJob(ph, distinct_ids=source, chunk_size=100).run()
        assert first.totals["failed"] == 100 and not first.complete
        assert "PermissionDeniedError" in first.failed_chunks[0]["error"]
        again = await DeletionJob(ph, distinct_ids=source, chunk_size=100).run()
        assert again.totals["failed"] == 100  # failed chunks are not re-sent unless asked
        fixed = await DeletionJob(ph, distinct_ids=source, chunk_size=100, retry_failed=True).run()
    assert fixed.complete and fixed.totals["deleted"] == 300
    # one refused send (injected before the server records bodies), then each chunk once:
    # done chunks were never sent again
    assert rec.stats.errors_injected == 1 and len(rec.stats.bodies[BULK]) == 3


async def test_journal_refuses_other_options(rec: FakePostHog, tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", ["a"])
    async with rec.client(rate_limits=None) as ph:
        await DeletionJob(ph, distinct_ids=source).run()
        with pytest.raises(ValueError, match="other options"):
            await DeletionJob(ph, distinct_ids=source, delete_events=True).run()
        with pytest.raises(FileNotFoundError):
            await DeletionJob(ph, distinct_ids=tmp_path / "missing.txt").run()
        with pytest.raises(ValueError, match="journal"):
            DeletionJob(ph, distinct_ids=["a", "b"])


async def spawn(server: FakePostHog, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "POSTHOG_PERSONAL_API_KEY": server.api_key, "POSTHOG_HOST": server.url,
           "POSTHOG_PROJECT_ID": "1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posthog_async.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def wait_for_sends(server: FakePostHog, n: int) -> None:
    for _ in range(1000):
        if len(server.stats.bodies.get(BULK, [])) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the job never got going")


def slow_server() -> FakePostHog:
    return FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                       faults=Faults(latency=0.02))


async def start_job(server: FakePostHog, tmp_path: Path, persons: int,
                    sends: int) -> tuple[asyncio.subprocess.Process, Path, list[str]]:
    """Seed ``persons``, start a CLI deletion of all of them, return once ``sends`` chunks went."""
    server.seed_persons(persons)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, persons + 1)])
    args = ["persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100",
            "--concurrency", "2"]
    proc = await spawn(server, *args)
    await wait_for_sends(server, sends)
    return proc, source, args


async def test_sigkill_half_way_then_resume(tmp_path: Path) -> None:
    async with slow_server() as server:
        proc, source, args = await start_job(server, tmp_path, 6000, sends=20)
        proc.kill()
        await proc.wait()
        sent_before = len(server.stats.bodies[BULK])
        assert sent_before < 60
        journal = Journal(Path(f"{source}.journal.sqlite"))
        done_before = {row for row, in journal._db.execute(
            "SELECT chunk FROM chunks WHERE state = 'done'")}
        journal.close()

        proc = await spawn(server, *args)  # without --resume: refused, journal untouched
        _, err = await proc.communicate()
        assert proc.returncode == 2 and b"--resume" in err

        proc = await spawn(server, *args, "--resume", "--report", str(tmp_path / "r.json"))
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    report = json.loads((tmp_path / "r.json").read_text())
    t = report["totals"]
    assert t["unique"] == 6000 and t["pending"] == 0 and t["failed"] == 0
    assert report["chunk_states"] == {"done": 60}
    assert server.ids_deleted == 6000 and len(server.project().persons) == 0
    # every chunk sent at least once; only chunks whose outcome was unknown were sent twice
    first_ids = Counter(b["distinct_ids"][0] for b in server.stats.bodies[BULK])
    assert len(first_ids) == 60
    twice = [k for k, n in first_ids.items() if n > 1]
    # (a chunk marked sent may have died in the client before reaching the server)
    assert len(twice) <= t["resent_chunks"] <= 2
    assert len(done_before) >= sent_before - 2
    assert API_KEY not in (tmp_path / "r.json").read_text()


async def test_ctrl_c_leaves_a_resumable_journal(tmp_path: Path) -> None:
    async with slow_server() as server:
        proc, source, args = await start_job(server, tmp_path, 5000, sends=10)
        proc.send_signal(signal.SIGINT)
        _, err = await proc.communicate()
        assert proc.returncode == 130, err.decode()
        assert b"Resume with" in err and b"--resume" in err
        journal = Journal(Path(f"{source}.journal.sqlite"))
        states = dict(journal._db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state").fetchall())
        journal.close()
        assert states.get("sent", 0) == 0 and states["pending"] > 0  # in-flight chunks finished
        proc = await spawn(server, *args, "--resume")
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    assert server.ids_deleted == 5000
    first_ids = Counter(b["distinct_ids"][0] for b in server.stats.bodies[BULK])
    assert max(first_ids.values()) == 1  # a clean stop re-sends nothing


@pytest.mark.parametrize("lines,flag,message", [
    (None, "--distinct-ids-file", "input file not found"),
    ([], "--distinct-ids-file", "unique 0"),
    (["not-a-uuid", "  ", "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"], "--ids-file", "invalid 1"),
])
async def test_cli_bad_input_is_a_message_not_a_traceback(
        server: FakePostHog, tmp_path: Path, lines: list[str] | None, flag: str, message: str) -> None:
    path = tmp_path / "in.txt"
    if lines is not None:
        write_ids(path, lines)
    proc = await spawn(server, "persons", "delete", flag, str(path))
    _, err = await proc.communicate()
    assert message in err.decode() and b"Traceback" not in err
    assert proc.returncode in (0, 1, 2)


async def test_cli_list_and_lookup(server: FakePostHog, tmp_path: Path) -> None:
    server.seed_persons(250)
    proc = await spawn(server, "persons", "list", "--format", "csv")
    out, err = await proc.communicate()
    assert proc.returncode == 0 and len(out.decode().splitlines()) == 251 and b"250 persons" in err
    proc = await spawn(server, "persons", "list", "--search", "user7@example.com")
    out, _ = await proc.communicate()
    assert json.loads(out.decode().splitlines()[0])["distinct_ids"] == ["user-7"]
    ids = write_ids(tmp_path / "l.txt", ["user-1", "user-2", "ghost", "user-1"])
    proc = await spawn(server, "persons", "lookup", "--distinct-ids-file", str(ids))
    out, err = await proc.communicate()
    assert len(out.decode().splitlines()) == 2 and b"not found 1" in err and b"duplicates 1" in err


def test_cli_requires_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["persons", "list"]) == 2
    assert "POSTHOG_PERSONAL_API_KEY" in capsys.readouterr().err


def test_demo_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo", "--persons", "3000", "--erase", "2000"]) == 0
    err = capsys.readouterr().err
    assert "deleted 2,000" in err and "server now holds 1,000 persons" in err
