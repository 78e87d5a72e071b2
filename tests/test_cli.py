"""``posthog-async persons delete`` as a user runs it: bad usage caught before any request,
signals, SIGKILL at random moments with lost answers, and a report that matches PostHog's state
id by id. The CLI runs in a subprocess against the offline PostHog in this process."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import shlex
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from posthog_async.cli import main as cli_main
from posthog_async.testing import FakePostHog, Faults

from ._cli import BULK, run, spawn, wait_for, write_ids
from .conftest import API_KEY



@pytest.fixture
async def srv() -> Any:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


@pytest.mark.parametrize("extra,message", [
    (["--concurrency", "0"], "must be at least 1"),
    (["--chunk-size", "1001"], "at most 1000"),
    (["--retry-failed"], "--retry-failed only goes with --resume"),
    (["--column", "id"], "--column goes with --csv"),
    (["--csv"], "--csv needs --column"),
    (["--report", "/nonexistent-folder/r.json"], "does not exist"),
    (["--journal", "/proc/forbidden/j.sqlite"], "cannot write the journal"),
    (["--resume"], "no journal"),
    (["--keep-person"], "deletes nothing"),
])
async def test_bad_usage_is_exit_2_before_any_request(srv: FakePostHog, tmp_path: Path,
                                                      extra: list[str], message: str) -> None:
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source), *extra)
    assert code == 2 and message in err, err
    assert "Traceback" not in err and srv.stats.requests == 0


async def test_missing_and_odd_inputs(srv: FakePostHog, tmp_path: Path) -> None:
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(tmp_path / "nope.txt"))
    assert code == 2 and "not found" in err and "Traceback" not in err
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(tmp_path))
    assert code == 2 and "directory" in err
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", "-")
    assert code == 2 and "--journal" in err
    assert srv.stats.requests == 0


async def test_standard_input_and_pipes(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(4)
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", "-", "--journal",
                       str(tmp_path / "j.sqlite"), stdin=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(b"user-1\nuser-2\n")
    assert proc.returncode == 0, err.decode()
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"user-3\nghost\n")
    os.close(write_fd)
    try:
        code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", f"/dev/fd/{read_fd}",
                                 "--journal", str(tmp_path / "k.sqlite"), pass_fds=(read_fd,))
    finally:
        os.close(read_fd)
    assert code == 0, err
    assert {d for p in srv.project().persons.values() for d in p.distinct_ids} == {"user-4"}


async def test_a_job_read_from_standard_input_resumes_from_its_journal(srv: FakePostHog,
                                                                       tmp_path: Path) -> None:
    srv.seed_persons(3000)
    srv.faults = Faults(latency=0.05)
    journal = tmp_path / "j.sqlite"
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", "-", "--journal", str(journal),
                       "--chunk-size", "100", "--concurrency", "1", stdin=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write("".join(f"user-{i}\n" for i in range(1, 3001)).encode())
    proc.stdin.close()
    await wait_for(lambda: len(srv.stats.bodies.get(BULK, [])) >= 2)
    proc.send_signal(signal.SIGINT)
    _, err = await proc.communicate()
    hint = [line.strip() for line in err.decode().splitlines() if line.strip().startswith("posthog-async ")]
    assert proc.returncode == 130 and hint and " - " not in hint[0] + " " and "--journal" in hint[0]
    srv.faults = Faults()
    code, _, err = await run(srv, *shlex.split(hint[0])[1:])
    assert code == 0, err
    assert not any(d.startswith("user-") for p in srv.project().persons.values() for d in p.distinct_ids)


async def test_the_key_is_never_printed(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3000)
    srv.faults = Faults(latency=0.05)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 3001)])
    proc = await spawn(srv, "--api-key", API_KEY, "persons", "delete", "--distinct-ids-file",
                       str(source), "--chunk-size", "100", "--concurrency", "1")
    await wait_for(lambda: len(srv.stats.bodies.get(BULK, [])) >= 2)
    proc.send_signal(signal.SIGINT)
    out, err = await proc.communicate()
    text = out.decode() + err.decode()
    resume = [line for line in text.splitlines() if line.strip().startswith("posthog-async ")]
    assert proc.returncode == 130 and len(resume) == 1 and "--resume" in resume[0]
    assert "--api-key" not in resume[0]
    assert API_KEY not in text and "POSTHOG_PERSONAL_API_KEY" in text
    for path in tmp_path.iterdir():
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


async def test_two_runs_at_once_the_second_is_refused(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3000)
    srv.faults = Faults(latency=0.05)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 3001)])
    args = ("persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100",
            "--concurrency", "1")
    first = await spawn(srv, *args)
    await wait_for(lambda: len(srv.stats.bodies.get(BULK, [])) >= 1)
    code, _, err = await run(srv, *args, "--resume")
    assert code == 2 and "in use by pid" in err and str(first.pid) in err
    first.send_signal(signal.SIGTERM)  # a graceful stop, like the first Ctrl-C
    _, err1 = await first.communicate()
    assert first.returncode == 130 and "--resume" in err1.decode()
    code, _, err = await run(srv, *args, "--resume")
    assert code == 0, err
    counts: dict[str, int] = {}
    for body in srv.stats.bodies[BULK]:
        counts[body["distinct_ids"][0]] = counts.get(body["distinct_ids"][0], 0) + 1
    assert max(counts.values()) == 1  # no chunk went out twice


async def test_what_will_not_heal_stops_the_job_at_once(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(5000)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 5001)])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--chunk-size", "100", key="phx_revoked_key")
    assert code == 1 and "stopped" in err and "--resume" in err and "Traceback" not in err
    assert srv.stats.requests <= 8  # not 50 chunks × 401
    started = time.monotonic()
    # a new job (a resume against another host is refused: the journal records its host)
    code, _, err = await run(None, "persons", "delete", "--distinct-ids-file", str(source),
                             "--chunk-size", "100", "--journal", str(tmp_path / "j2.sqlite"),
                             host="http://127.0.0.1:9")  # nobody listens: refused
    # the transport retries a refused connection for ~15 s before the job sees it (measured
    # 18-20 s on 2 busy cores, before and after issue 17): 30 s still tells a stop from a hang
    assert code == 1 and "stopped" in err and time.monotonic() - started < 30


async def test_ctrl_c_twice_aborts_at_once_and_resume_is_exact(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(4000)
    srv.faults = Faults(latency=0.3)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 4001)])
    args = ("persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100")
    proc = await spawn(srv, *args)
    await wait_for(lambda: len(srv.stats.bodies.get(BULK, [])) >= 1)
    proc.send_signal(signal.SIGINT)
    await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = await proc.communicate()
    assert proc.returncode == 130 and "Resume with" in err.decode() and b"Traceback" not in err
    srv.faults = Faults()
    code, _, err = await run(srv, *args, "--resume", "--report", str(tmp_path / "r.csv"))
    assert code == 0, err
    assert_report_matches_server(tmp_path / "r.csv", srv, existed=range(1, 4001), asked=range(1, 4001))


async def test_ctrl_c_during_start_up_is_clean(srv: FakePostHog, tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 400_001)])
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", str(source))
    journal = Path(f"{source}.journal.sqlite")
    # Interrupt while it loads four hundred thousand ids: once the journal exists, not after a
    # fixed time (on a busy machine the interpreter may not even have started by then).
    for _ in range(3000):
        if journal.exists() or proc.returncode is not None:
            break
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = await proc.communicate()
    assert proc.returncode == 130 and b"Traceback" not in err
    assert srv.stats.requests == 0
    if journal.exists():  # the load is one transaction: nothing half-done is left behind
        db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
        try:
            assert db.execute("SELECT COUNT(*) FROM ids").fetchone()[0] == 0
            assert db.execute("SELECT value FROM meta WHERE key = 'loaded'").fetchone() is None
        finally:
            db.close()


def assert_report_matches_server(report: Path, server: FakePostHog, *, existed: range,
                                 asked: range) -> None:
    """Every asked id's outcome is what PostHog did: deleted iff a person had it, and it is gone."""
    rows = list(csv.reader(report.read_text().splitlines()))
    totals = {r[0][2:]: int(r[1]) for r in rows if r[0].startswith("# ") and r[1].isdigit()}
    header = next(i for i, row in enumerate(rows) if row[:6] == ["kind", "id", "outcome",
                                                                  "reason", "person", "chunk"])
    outcomes = {r[1]: r[2] for r in rows[header + 1:]}
    remaining = {d for p in server.project().persons.values() for d in p.distinct_ids}
    for n in asked:
        key = f"user-{n}"
        expected = "deleted" if n in existed else "not_found"
        assert outcomes[key] == expected, (key, outcomes[key])
        assert key not in remaining
    assert totals["deleted"] == len(existed) and totals["pending"] == totals["failed"] == 0
    assert totals["persons_deleted"] == server.ids_deleted == len(existed)


async def test_sigkill_at_random_moments_with_lost_answers(tmp_path: Path) -> None:
    """Answers lost after PostHog did the work, and the CLI killed without warning, again and
    again: the final report still says exactly what PostHog did, id by id."""
    rng = random.Random(7)
    faults = Faults(latency=0.01, lose_answer_rate=0.15, seed=3)
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True,
                           faults=faults) as server:
        server.seed_persons(6000)
        asked = range(1, 7001)  # user-6001... never existed
        source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in asked])
        args = ["persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100",
                "--concurrency", "4"]
        kills = 0
        journal = Path(f"{source}.journal.sqlite")
        for _ in range(5):
            # --resume once a journal exists: on two busy cores a kill may come before the
            # first run even created it
            proc = await spawn(server, *args, *(["--resume"] if journal.exists() else []))
            try:
                await asyncio.wait_for(proc.wait(), rng.uniform(0.8, 2.0))
            except asyncio.TimeoutError:
                proc.kill()
                kills += 1
            await proc.communicate()
        code, _, err = await run(server, *args, "--resume", "--report", str(tmp_path / "r.csv"))
        assert code == 0, err
        assert kills >= 2 and server.stats.dropped > 0
        assert_report_matches_server(tmp_path / "r.csv", server, existed=range(1, 6001), asked=asked)


def test_cli_requires_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["persons", "list"]) == 2
    assert "POSTHOG_PERSONAL_API_KEY" in capsys.readouterr().err


async def test_cli_list_and_lookup(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(250)
    code, out, err = await run(srv, "persons", "list", "--format", "csv")
    assert code == 0 and len(out.splitlines()) == 251 and "250 persons" in err
    code, out, _ = await run(srv, "persons", "list", "--search", "user7@example.com")
    assert json.loads(out.splitlines()[0])["distinct_ids"] == ["user-7"]
    ids = write_ids(tmp_path / "l.txt", ["user-1", "user-2", "ghost", "user-1"])
    code, out, err = await run(srv, "persons", "lookup", "--distinct-ids-file", str(ids))
    assert len(out.splitlines()) == 2 and "not found 1" in err and "duplicates 1" in err


def test_demo_runs_across_projects_and_ends_verified(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo", "--persons", "600", "--erase", "300", "--batch-seconds", "1"]) == 0
    err = capsys.readouterr().err
    assert "in 3 projects: 903 (project, id) pairs" in err and "excluded on purpose: project 4" in err
    assert "verification: VERIFIED" in err and "the sandbox still has 600" in err
