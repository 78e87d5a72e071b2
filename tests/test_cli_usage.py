"""The CLI as a new user meets it: no abbreviated options, the key never echoed, a resume hint
that is safe to paste, exit status 130 for every interruption, a report path that cannot
clobber the job's own files, a report that fails to be written at the end, and the read and
demo commands' usage errors. The CLI runs in a subprocess against the offline PostHog in this
process (or in-process through ``main`` when only argument parsing is involved)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from posthog_async.cli import build_parser
from posthog_async.testing import FakePostHog, Faults

from ._cli import BULK, parse_error, run, spawn, wait_for, write_ids
from .conftest import API_KEY

ODD_KEY = "s3cret-not-prefixed-0123456789"  # a key the phx_ pattern does not catch


def hints(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("posthog-async ")]


def bulk_calls(server: FakePostHog) -> int:
    return len(server.stats.bodies.get(BULK, []))


@pytest.fixture
async def srv() -> Any:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


# -- 1. no abbreviated options --------------------------------------------------------------

def test_every_parser_refuses_abbreviations() -> None:
    seen = 0
    todo = [build_parser()]
    while todo:
        parser = todo.pop()
        seen += 1
        assert parser.allow_abbrev is False, parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    assert seen == 8  # posthog-async, persons, persons delete/verify/list/lookup/export, demo


@pytest.mark.parametrize("argv", [
    ["--api", "phx_abbreviated_0123456789", "persons", "list"],
    ["--proj", "1", "persons", "list"],
    ["persons", "list", "--form", "csv"],
    ["persons", "lookup", "--uuid", "x"],
    ["demo", "--pers", "10"],
])
def test_abbreviations_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = parse_error(argv, capsys)
    assert ("unrecognized arguments" in text or "invalid choice" in text), text
    assert "phx_abbreviated" not in text


async def test_dry_is_not_dry_run(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3)
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source), "--dry")
    assert code == 2 and "unrecognized arguments: --dry" in err, err
    assert srv.stats.requests == 0 and len(srv.project().persons) == 3


# -- 2. the key is never echoed by argparse ---------------------------------------------------

@pytest.mark.parametrize("argv", [
    [API_KEY, "persons", "list"],  # the key where the command goes
    ["--apikey", API_KEY, "persons", "list"],  # a typo'd flag
    [f"--apikey={API_KEY}", "persons", "list"],
    ["persons", "list", API_KEY],
    ["persons", "list", "--format", API_KEY],  # invalid choice
    ["persons", "delete", "--distinct-ids-file", "x", "--concurrency", API_KEY],
    ["--api-key", ODD_KEY, "persons", "list", "--max", ODD_KEY],  # the key given to --api-key
    [f"--api-key={ODD_KEY}", "persons", "list", ODD_KEY],
])
def test_parse_errors_redact_the_key(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = parse_error(argv, capsys)
    assert "error:" in text and "<redacted>" in text, text
    assert API_KEY not in text and ODD_KEY not in text and "phx_" not in text


def test_parse_errors_redact_the_key_from_the_environment(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", ODD_KEY)
    text = parse_error(["persons", "list", "--format", ODD_KEY], capsys)
    assert ODD_KEY not in text and "<redacted>" in text


async def test_redaction_in_a_real_process() -> None:
    code, out, err = await run(None, "persons", "list", ODD_KEY,
                               env={"POSTHOG_PERSONAL_API_KEY": ODD_KEY})
    assert code == 2 and "unrecognized arguments: <redacted>" in err and ODD_KEY not in out + err


# -- 3. the resume hint is rebuilt from the parsed arguments ------------------------------------

async def test_resume_hint_from_standard_input_holds_no_secret(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3000)
    srv.faults = Faults(latency=0.05)
    journal = tmp_path / "my journal.sqlite"
    redis_url = "redis://:hunter2@127.0.0.1:9/0"  # nobody listens: the limiter paces locally
    proc = await spawn(srv, f"--api-key={API_KEY}", "--redis-url", redis_url, "--project-id", "1",
                       "persons", "delete", "--distinct-ids-file=-", "--journal", str(journal),
                       "--chunk-size", "100", "--concurrency", "1", "--delete-events",
                       stdin=asyncio.subprocess.PIPE, env={"POSTHOG_PERSONAL_API_KEY": "unused"})
    assert proc.stdin is not None
    proc.stdin.write("".join(f"user-{i}\n" for i in range(1, 3001)).encode())
    proc.stdin.close()
    await wait_for(lambda: bulk_calls(srv) >= 2)
    proc.send_signal(signal.SIGINT)
    _, raw_err = await proc.communicate()
    err = raw_err.decode()
    found = hints(err)
    assert proc.returncode == 130 and len(found) == 1, err
    hint = found[0]
    assert API_KEY not in err and "--api-key" not in hint and "hunter2" not in err
    assert "redis" not in hint and "--redis-url" in err  # left out, and the user is told
    words = shlex.split(hint)
    assert "-" not in words and "--distinct-ids-file=-" not in words
    assert not any(w.startswith("--distinct-ids-file") for w in words)
    assert words[-1] == "--resume" and words[words.index("--journal") + 1] == str(journal)
    assert shlex.quote(str(journal)) in hint
    assert words[words.index("--chunk-size") + 1] == "100" and "--delete-events" in words
    srv.faults = Faults()
    code, _, err = await run(srv, *words[1:])
    assert code == 0, err
    assert not any(d.startswith("user-") for p in srv.project().persons.values() for d in p.distinct_ids)


async def test_resume_hint_for_files_is_quoted_and_runs(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(2000)
    srv.faults = Faults(latency=0.05)
    folder = tmp_path / "erase 'requests' $HOME"
    folder.mkdir()
    source = folder / "list.csv"
    source.write_text("id,name\n" + "".join(f"user-{i},x\n" for i in range(1, 2001)))
    proc = await spawn(srv, "--api-key", API_KEY, "persons", "delete", "--distinct-ids-file",
                       str(source), "--csv", "--column", "id", "--chunk-size", "100",
                       "--concurrency", "1", "--report", str(folder / "r.csv"))
    await wait_for(lambda: bulk_calls(srv) >= 2)
    proc.send_signal(signal.SIGTERM)
    _, raw_err = await proc.communicate()
    found = hints(raw_err.decode())
    assert proc.returncode == 130 and len(found) == 1 and API_KEY not in raw_err.decode()
    words = shlex.split(found[0])
    assert words[words.index("--distinct-ids-file") + 1] == str(source)
    assert words[words.index("--journal") + 1] == f"{source}.journal.sqlite"
    srv.faults = Faults()
    code, _, err = await run(srv, *words[1:])
    assert code == 0, err
    assert "# pending,0" in (folder / "r.csv").read_text()


# -- 4. every interruption exits 130 and prints the hint ----------------------------------------

async def test_ctrl_c_with_every_chunk_in_flight_is_still_130(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(300)
    srv.faults = Faults(latency=0.3)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 301)])
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", str(source),
                       "--chunk-size", "100", "--concurrency", "8")
    await wait_for(lambda: bulk_calls(srv) >= 1)
    proc.send_signal(signal.SIGINT)
    _, raw_err = await proc.communicate()
    err = raw_err.decode()
    assert proc.returncode == 130, err
    assert len(hints(err)) == 1 and "--resume" in hints(err)[0] and "Traceback" not in err


def big_input(tmp_path: Path, n: int = 1_000_000) -> Path:
    return write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, n + 1)])


async def interrupt_while_loading(srv: FakePostHog, source: Path, *signals: int) -> tuple[int, str]:
    journal = Path(f"{source}.journal.sqlite")
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", str(source))
    await wait_for(journal.exists)  # the job has started: its signal handlers are in place
    for sig in signals:
        proc.send_signal(sig)
        await asyncio.sleep(0.02)
    _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_ctrl_c_while_loading_prints_how_to_run_again(srv: FakePostHog, tmp_path: Path) -> None:
    source = big_input(tmp_path)
    code, err = await interrupt_while_loading(srv, source, signal.SIGINT)
    assert code == 130 and "nothing was sent" in err and "Traceback" not in err, err
    found = hints(err)
    assert len(found) == 1 and "--resume" not in found[0], err
    assert srv.stats.requests == 0
    write_ids(source, ["user-1", "user-2"])  # a smaller list: the hint is run as printed
    srv.seed_persons(2)
    code, _, err = await run(srv, *shlex.split(found[0])[1:])
    assert code == 0, err
    assert not srv.project().persons


async def test_ctrl_c_while_waiting_for_standard_input(srv: FakePostHog, tmp_path: Path) -> None:
    """Standard input left open (a terminal, an idle pipe): one Ctrl-C ends the load at once
    (no line needs to arrive), with status 130 and how to run it again; the interpreter exits
    cleanly although the thread reading standard input is still blocked."""
    journal = tmp_path / "j.sqlite"
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", "-", "--journal",
                       str(journal), stdin=asyncio.subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"user-1\n")
    await proc.stdin.drain()
    await wait_for(journal.exists)
    await asyncio.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    finally:
        proc.stdin.close()
    _, raw_err = await proc.communicate()
    err = raw_err.decode()
    assert proc.returncode == 130 and "nothing was sent" in err, err
    assert "Fatal Python error" not in err
    found = hints(err)
    assert len(found) == 1 and "--resume" not in found[0] and srv.stats.requests == 0
    srv.seed_persons(2)
    code, _, err = await run(srv, *shlex.split(found[0])[1:], stdin_data=b"user-1\nuser-2\n")
    assert code == 0, err
    assert not srv.project().persons


# -- 5. the report cannot clobber the job's own files ---------------------------------------

@pytest.mark.parametrize("target", [
    "input", "journal", "journal-wal", "journal-shm", "journal.lock", "folder", "fifo",
    "link-to-input", "link-to-dev-null",
])
async def test_report_path_that_would_clobber_is_refused(srv: FakePostHog, tmp_path: Path,
                                                        target: str) -> None:
    srv.seed_persons(2)
    source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
    journal = tmp_path / "j.sqlite"
    paths = {"input": source, "journal": journal, "journal-wal": tmp_path / "j.sqlite-wal",
             "journal-shm": tmp_path / "j.sqlite-shm", "journal.lock": tmp_path / "j.sqlite.lock",
             "folder": tmp_path / "a-folder", "fifo": tmp_path / "a-fifo",
             "link-to-input": tmp_path / "link.csv", "link-to-dev-null": tmp_path / "null.csv"}
    report = paths[target]
    if target == "folder":
        report.mkdir()
    elif target == "fifo":
        os.mkfifo(report)
    elif target == "link-to-input":
        report.symlink_to(source)
    elif target == "link-to-dev-null":  # a link, so that a regression replaces the link only
        report.symlink_to(os.devnull)
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--journal", str(journal), "--report", str(report))
    assert code == 2 and "report path" in err and "Traceback" not in err, err
    assert srv.stats.requests == 0 and len(srv.project().persons) == 2
    assert source.read_text() == "user-1\nuser-2\n"


# -- 6. a report that cannot be written at the end ------------------------------------------

async def test_report_that_cannot_be_written_is_an_error(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(1000)
    srv.faults = Faults(latency=0.05)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 1001)])
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    report = out_dir / "r.csv"
    proc = await spawn(srv, "persons", "delete", "--distinct-ids-file", str(source),
                       "--chunk-size", "100", "--concurrency", "1", "--report", str(report))
    await wait_for(lambda: bulk_calls(srv) >= 1)
    shutil.rmtree(out_dir)  # the folder goes away while the job runs (like a full or lost disk)
    raw_out, raw_err = await proc.communicate()
    out, err = raw_out.decode(), raw_err.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "requested 1,000" in out and "deleted 1,000" in out  # the summary, on stdout
    assert f"could not write the report to {report}" in err and "No such file or directory" in err
    assert not srv.project().persons
    out_dir.mkdir()  # the way out: resume, which writes the report from the journal
    code, _, err = await run(srv, *shlex.split(hints(err)[0])[1:])
    assert code == 0, err
    assert "# deleted,1000" in report.read_text()


# -- 7. persons list / lookup -----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["persons", "list", "--max", "0"],
    ["persons", "list", "--max", "-3"],
    ["persons", "list", "--page-size", "0"],
    ["persons", "list", "--page-size", "1001"],
])
def test_list_sizes_are_checked(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert "error: argument" in parse_error(argv, capsys)


async def test_list_max_zero_sends_nothing(srv: FakePostHog) -> None:
    srv.seed_persons(5)
    code, out, err = await run(srv, "persons", "list", "--max", "0")
    assert code == 2 and out == "" and srv.stats.requests == 0, err


async def test_lookup_with_no_ids_is_a_usage_error(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(5)
    code, out, err = await run(srv, "persons", "lookup")
    assert code == 2 and "no ids" in err and out == "", err
    code, out, err = await run(srv, "persons", "lookup", "--distinct-ids-file", "-", stdin_data=b"")
    assert code == 2 and "no ids" in err and out == "", err
    code, out, err = await run(srv, "persons", "lookup", "--ids-file", "-", stdin_data=b"\n\n")
    assert code == 2 and "no ids" in err, err
    assert srv.stats.requests == 0


async def test_lookup_and_list_failures_say_why(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(5)
    wrong = "phx_wrong_key_0123456789abcdef"
    env = {"POSTHOG_PERSONAL_API_KEY": wrong}
    code, out, err = await run(srv, "persons", "lookup", "user-1", "user-2", env=env)
    assert code == 1 and "AuthenticationError" in err and "401" in err, err  # raised at once
    assert wrong not in err + out
    code, out, err = await run(srv, "persons", "list", env=env)
    assert code == 1 and "AuthenticationError" in err and wrong not in err + out, err
    srv.fail_next(400, path_contains="/persons/")
    code, out, err = await run(srv, "persons", "list", "--page-size", "2")
    assert code == 1 and "BadRequestError" in err and "Traceback" not in err, err


async def test_lookup_still_works(srv: FakePostHog) -> None:
    srv.seed_persons(3)
    code, out, err = await run(srv, "persons", "lookup", "user-1", "ghost")
    assert code == 0 and len(out.splitlines()) == 1 and "not found 1" in err, err
    code, out, err = await run(srv, "persons", "list", "--max", "2", "--page-size", "1")
    assert code == 0 and len(out.splitlines()) == 2 and "2 persons" in err, err


# -- 8. demo sizes ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["demo", "--persons", "0"],
    ["demo", "--erase", "0"],
    ["demo", "--persons", "-5"],
    ["demo", "--erase", "ten"],
])
async def test_demo_sizes_are_checked(argv: list[str]) -> None:
    code, _, err = await run(None, *argv)
    assert code == 2 and "error: argument" in err and "starting an offline PostHog" not in err, err
