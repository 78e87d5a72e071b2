"""``persons delete`` on the paths a careful new user and an unlucky operator found (issue 17):
an error page echoing the key, a redirect, a 503 storm, a named pipe with no writer, a CSV cell
holding two ids, UTF-16 without a byte-order mark, a journal on a full disk, no project id, a
symlink loop. The CLI runs in a subprocess against the offline PostHog in this process."""

from __future__ import annotations

import asyncio
import csv
import os
import resource
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from posthog_async.testing import FakePostHog
from posthog_async.testing._request import respond

from ._cli import BULK, run, spawn, wait_for, write_ids
from .conftest import API_KEY

LOOKUP = "batch_by_distinct_ids"


@pytest.fixture
async def srv() -> Any:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


def remaining(server: FakePostHog) -> set[str]:
    return {d for p in server.project().persons.values() for d in p.distinct_ids}


def hint_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("posthog-async ")]


# -- 6. an error page that echoes the Authorization header -------------------------------------

async def test_an_echoed_key_reaches_no_output_journal_or_report(srv: FakePostHog,
                                                                  tmp_path: Path) -> None:
    """A proxy that echoes the request's headers in its 400 and 500 pages (and in a header):
    the key was printed on stderr and written to the journal and the report."""
    srv.seed_persons(6)
    calls = []

    def echo(request: web.Request) -> web.StreamResponse | None:
        # the first chunk's lookup gets a 400; the second chunk's deletes get 500s (a POST the
        # transport does not retry itself, so the test stays quick)
        if LOOKUP in request.path:
            calls.append(request.path)
            if len(calls) > 1:
                return None
            status = 400
        elif "bulk_delete" in request.path:
            status = 500
        else:
            return None
        sent = request.headers["Authorization"]
        return respond(status, {"detail": f"blocked request with Authorization: {sent}"},
                       {"X-Echo": sent})

    srv.add_hook(echo)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 5)])
    code, out, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                               "--chunk-size", "2", "--concurrency", "1", "--patience", "1",
                               "--report", str(tmp_path / "report.csv"))
    assert code == 1 and "blocked request with Authorization" in err, err
    assert "400" in err and "500" in err
    assert API_KEY not in out + err and "<redacted>" in err
    written = [path for path in tmp_path.iterdir() if path.is_file()]
    assert len(written) >= 3  # the input, the journal, the report
    for path in written:
        assert API_KEY.encode() not in path.read_bytes(), path


# -- 20. a redirect stops the job at once, naming its target's host -------------------------------

async def test_a_redirect_stops_the_job_and_names_its_host(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(40)

    def redirect(request: web.Request) -> web.StreamResponse | None:
        if "/persons/" not in request.path:
            return None
        return web.Response(status=302, text="302: Found", headers={
            "Location": "https://sso.example.net:8443/login?next=/api&token=abc"})

    srv.add_hook(redirect)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 41)])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--chunk-size", "2", "--concurrency", "1")
    assert code == 1, err
    assert "https://sso.example.net:8443" in err and "stopped" in err, err
    assert "token=abc" not in err and "302: 302" not in err
    assert srv.stats.requests <= 2  # one chunk's call, not one per chunk (20 chunks)
    assert len(srv.project().persons) == 40


# -- 19. failed chunks: the summary says how to send them again -----------------------------------

async def test_failed_chunks_print_the_retry_failed_command_that_works(srv: FakePostHog,
                                                                      tmp_path: Path) -> None:
    srv.seed_persons(6)
    storm = {"on": True}

    def unavailable(request: web.Request) -> web.StreamResponse | None:
        # A 502 storm: the chunk fails as after a 503 storm, without the transport's own 503
        # retries (about 15 s of backoff per call) that would only make the test slow.
        if storm["on"] and "bulk_delete" in request.path:
            return respond(502, {"type": "server_error", "code": "error",
                                 "detail": "A server error occurred."})
        return None

    srv.add_hook(unavailable)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 5)])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--chunk-size", "2", "--patience", "1")
    assert code == 1 and "failed" in err, err
    found = hint_lines(err)
    assert len(found) == 1 and found[0].endswith("--resume --retry-failed"), err
    storm["on"] = False
    code, _, err = await run(srv, *shlex.split(found[0])[1:])
    assert code == 0, err
    assert remaining(srv) == {"user-5", "user-6", "anon-6"}


# -- 9. a named pipe with no writer stops on SIGTERM and on Ctrl-C --------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_named_pipe_with_no_writer_stops_on_a_signal(srv: FakePostHog, tmp_path: Path,
                                                             sig: signal.Signals) -> None:
    fifo = tmp_path / "erase.fifo"
    os.mkfifo(fifo)
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", str(fifo))
    await wait_for(lambda: (tmp_path / "erase.fifo.journal.sqlite").exists())
    await asyncio.sleep(0.3)  # waiting for a writer now
    proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("the job ignored the signal while the named pipe had no writer")
    _, raw_err = await proc.communicate()
    err = raw_err.decode()
    assert proc.returncode == 130 and "nothing was sent" in err and "Traceback" not in err, err
    assert srv.stats.requests == 0


async def test_a_named_pipe_is_read_when_its_writer_comes(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3)
    fifo = tmp_path / "erase.fifo"
    os.mkfifo(fifo)
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", str(fifo))
    await asyncio.sleep(0.5)
    await asyncio.to_thread(lambda: fifo.write_bytes(b"user-1\nuser-2\n"))
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert remaining(srv) == {"user-3", "anon-3"}


# -- 11. a CSV cell holding two UUIDs on two lines ------------------------------------------------

async def test_a_csv_cell_with_two_uuids_is_rejected_alone(srv: FakePostHog, tmp_path: Path) -> None:
    """The batch fast path split on line breaks, so the cell passed as two valid UUIDs and the
    whole chunk failed with PostHog's 400."""
    srv.seed_persons(5)
    uuids = sorted(p.uuid for p in srv.project().persons.values())
    rows = ["id", f'"{uuids[0]}\n{uuids[1]}"', *uuids[2:]]
    source = tmp_path / "erase.csv"
    source.write_text("\n".join(rows) + "\n")
    code, _, err = await run(srv, "persons", "delete", "--ids-file", str(source), "--csv",
                             "--column", "id", "--report", str(tmp_path / "r.csv"))
    assert code == 1 and "line break" in err and "failed" not in err.split("ids:")[1].split("\n")[0]
    assert len(srv.project().persons) == 2  # the three others were deleted
    with open(tmp_path / "r.csv", newline="") as report:
        rows = [row for row in csv.reader(report) if row and not row[0].startswith("#")]
    outcomes = sorted(row[2] for row in rows[1:])
    assert outcomes == ["deleted", "deleted", "deleted", "invalid"], rows


# -- 16. UTF-16 without a byte-order mark ---------------------------------------------------------

async def test_utf16_without_a_mark_is_refused_before_anything_is_sent(srv: FakePostHog,
                                                                       tmp_path: Path) -> None:
    """Its first bytes hold no NUL ("䅁䅁" is 41 41 41 41), so the old 4-byte check let it
    through and sent the garbage id "AAAA"."""
    srv.seed_persons(2)
    source = tmp_path / "erase.txt"
    source.write_bytes("\u4141\u4141\nuser-1\n".encode("utf-16-le"))
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source))
    # line 2 as a UTF-8 reader counts: the NUL follows the first b"\n" (U+000A is 0A 00)
    assert code == 2 and "line 2" in err and "UTF-16 LE" in err and "Traceback" not in err, err
    assert srv.stats.requests == 0


# -- 14. a journal that cannot be written while loading ------------------------------------------

def _file_limit(size: int) -> Any:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


async def test_a_file_size_limit_while_loading_names_the_cause(srv: FakePostHog,
                                                               tmp_path: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(60_000)])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             preexec_fn=_file_limit(256 * 1024))
    assert code == 1, err
    assert "the journal could not be written" in err and "ulimit -f" in err, err
    assert "Traceback" not in err and "cannot rollback" not in err
    assert srv.stats.requests == 0


@pytest.fixture
def full_disk(tmp_path: Path) -> Any:
    """A 1 MiB tmpfs (root only: skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


async def test_a_full_disk_while_loading_says_disk_full(srv: FakePostHog, tmp_path: Path,
                                                        full_disk: Path) -> None:
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(60_000)])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--journal", str(full_disk / "j.sqlite"))
    assert code == 1 and "the journal could not be written: disk full" in err, err
    assert "Traceback" not in err and srv.stats.requests == 0


# -- 17. no project id: nothing is created --------------------------------------------------------

async def test_no_project_id_is_exit_2_before_the_journal_exists(srv: FakePostHog,
                                                                 tmp_path: Path) -> None:
    srv.seed_persons(2)
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             env={"POSTHOG_PROJECT_ID": None})
    assert code == 2 and "--project-id" in err and "POSTHOG_PROJECT_ID" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erase.txt"]
    assert srv.stats.requests == 0


async def test_the_resume_hint_names_the_project_from_the_environment(srv: FakePostHog,
                                                                      tmp_path: Path) -> None:
    srv.seed_persons(2)
    srv.fail_next(502, times=50, path_contains="bulk_delete")
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--patience", "1")
    found = hint_lines(err)
    assert code == 1 and len(found) == 1 and "--project-id 1" in found[0], err


# -- 21. the real cause of an unreadable input ----------------------------------------------------

async def test_a_symlink_loop_and_an_unclosed_quote_name_their_cause(srv: FakePostHog,
                                                                     tmp_path: Path) -> None:
    loop_a, loop_b = tmp_path / "a.txt", tmp_path / "b.txt"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(loop_a))
    assert code == 2 and "loop of symbolic links" in err and "not found" not in err, err
    quoted = tmp_path / "erase.csv"
    quoted.write_text('id\nuser-1\n"user-2\nuser-3\nuser-4\n')
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(quoted),
                             "--csv", "--column", "id")
    assert code == 2 and "line 3" in err and "never closed" in err, err
    assert "control or invisible" not in err and srv.stats.requests == 0


# -- 12. a hard link to the journal is the same journal -------------------------------------------

async def test_a_second_run_through_a_hard_link_is_refused(srv: FakePostHog, tmp_path: Path) -> None:
    """The lock was keyed on the path: both runs sent every id, both reports claimed them."""
    from posthog_async.testing import Faults

    srv.seed_persons(2000)
    srv.faults = Faults(latency=0.05)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 2001)])
    journal, link = tmp_path / "j.sqlite", tmp_path / "elsewhere" / "link.sqlite"
    link.parent.mkdir()
    args = ("persons", "delete", "--distinct-ids-file", str(source), "--chunk-size", "100",
            "--concurrency", "1")
    first = await spawn(srv, *args, "--journal", str(journal))
    await wait_for(lambda: len(srv.stats.bodies.get(BULK, [])) >= 1)
    os.link(journal, link)
    code, _, err = await run(srv, *args, "--journal", str(link), "--resume")
    assert code == 2 and f"in use by pid {first.pid}" in err, err
    first.send_signal(signal.SIGTERM)
    await first.communicate()
    assert first.returncode == 130
    sent = [body["distinct_ids"][0] for body in srv.stats.bodies[BULK]]
    assert len(sent) == len(set(sent))  # no chunk went out twice
