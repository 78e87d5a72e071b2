"""Options given twice, and options given where users type them (issue 17, items 1 and 7).

Every input file given is part of the job (``--distinct-ids-file a --distinct-ids-file b``
deletes both lists, and the journal records each one's identity); every other option given
twice with two values is refused with exit status 2 before anything is sent, wherever each
was given (before or after the command). The global options are accepted after the command,
and no usage error shows a URL's credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from posthog_async.cli import build_parser
from posthog_async.cli._args import BooleanOption, redact
from posthog_async.cli._delete import validate_delete_args
from posthog_async.cli._hint import job_command
from posthog_async.testing import FakePostHog

from ._cli import BULK, parse_error, run, write_ids
from .conftest import API_KEY

REDIS_URL = "redis://:hunter2@127.0.0.1:9/0"


@pytest.fixture
async def srv() -> Any:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        yield server


def _parsers() -> list[argparse.ArgumentParser]:
    found, todo = [], [build_parser()]
    while todo:
        parser = todo.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(dict.fromkeys(action.choices.values()))
    return found


# -- a repeat never silently discards a value ---------------------------------------------------

#: Actions whose repeat discards nothing: flags, counters, lists, help. Any other action must
#: be the once-only store or BooleanOption (a new option with another action fails here).
_REPEAT_SAFE = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._AppendAction,
                argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def test_every_option_either_keeps_every_value_or_refuses_a_second() -> None:
    from posthog_async.cli._args import _StoreOnce

    for parser in _parsers():
        for action in parser._actions:
            if not action.option_strings:
                continue  # positionals are given once by argparse itself
            assert isinstance(action, (*_REPEAT_SAFE, _StoreOnce, BooleanOption)), (
                parser.prog, action.option_strings, type(action).__name__)


_DELETE = ["persons", "delete", "--distinct-ids-file", "erase.txt"]


@pytest.mark.parametrize("argv", [
    [*_DELETE, "--report", "a.json", "--report", "b.json"],
    [*_DELETE, "--journal", "a.sqlite", "--journal", "b.sqlite"],
    [*_DELETE, "--csv", "--column", "id", "--column", "uuid"],
    [*_DELETE, "--jsonl", "--field", "id", "--field", "uuid"],
    [*_DELETE, "--chunk-size", "10", "--chunk-size", "20"],
    [*_DELETE, "--concurrency", "1", "--concurrency", "2"],
    [*_DELETE, "--patience", "1", "--patience", "2"],
    [*_DELETE, "--resolve", "--no-resolve"],
    [*_DELETE, "--no-resolve", "--resolve"],
    ["--host", "http://127.0.0.1:1", *_DELETE, "--host", "http://127.0.0.1:2"],
    ["--project-id", "1", "--project-id", "2", "persons", "list"],
    ["--project-id", "1", "persons", "list", "--project-id", "2"],
    ["persons", "list", "--format", "csv", "--format", "jsonl"],
    ["persons", "list", "--max", "1", "--max", "2"],
    ["persons", "list", "--email", "a@example.com", "--email", "b@example.com"],
    ["persons", "lookup", "--distinct-ids-file", "a.txt", "--distinct-ids-file", "b.txt"],
    ["persons", "lookup", "--ids-file", "a.txt", "--ids-file", "b.txt"],
    ["demo", "--persons", "10", "--persons", "20"],
])
def test_an_option_given_twice_with_two_values_is_refused(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = parse_error(argv, capsys)
    assert "conflict" in text, text


@pytest.mark.parametrize("argv,secret", [
    (["--api-key", API_KEY, "persons", "list", "--api-key", "phx_other_key_0123456789"], API_KEY),
    (["--redis-url", REDIS_URL, "persons", "list", "--redis-url", "redis://:other@h/0"],
     "hunter2"),
])
def test_a_secret_given_twice_is_refused_without_showing_it(
        argv: list[str], secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = parse_error(argv, capsys)
    assert "conflict" in text and secret not in text and "other" not in text, text


def test_the_same_value_twice_is_no_conflict() -> None:
    args = build_parser().parse_args(["--host", "http://h", "persons", "list", "--host", "http://h",
                                      "--max", "3", "--max", "3"])
    assert args.host == "http://h" and args.max == 3


# -- every input file is part of the job --------------------------------------------------------

async def test_repeated_input_files_are_all_deleted(srv: FakePostHog, tmp_path: Path) -> None:
    """The issue's case: ``--distinct-ids-file a --distinct-ids-file b`` kept only ``b`` and
    exited 0 with the persons of ``a`` still there."""
    srv.seed_persons(12)
    uuids = {d: p.uuid for p in srv.project().persons.values() for d in p.distinct_ids}
    first = write_ids(tmp_path / "a.txt", ["user-1", "user-2"])
    second = write_ids(tmp_path / "b.txt", ["user-4", "user-5"])
    by_uuid = [write_ids(tmp_path / "c.txt", [uuids["user-7"]]),
               write_ids(tmp_path / "d.txt", [uuids["user-8"]])]
    journal = tmp_path / "j.sqlite"
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(first),
                             "--ids-file", str(by_uuid[0]), "--distinct-ids-file", str(second),
                             "--ids-file", str(by_uuid[1]), "--journal", str(journal))
    assert code == 0, err
    left = {d for p in srv.project().persons.values() for d in p.distinct_ids}
    for gone in ("user-1", "user-2", "user-4", "user-5", "user-7", "user-8"):
        assert gone not in left
    assert "user-3" in left and "user-6" in left
    db = sqlite3.connect(journal)
    try:
        inputs = json.loads(db.execute("SELECT value FROM meta WHERE key = 'inputs'").fetchone()[0])
    finally:
        db.close()
    assert [(i["kind"], Path(i["path"]).name) for i in inputs] == [
        ("distinct_ids", "a.txt"), ("distinct_ids", "b.txt"), ("ids", "c.txt"), ("ids", "d.txt")]
    assert all(len(i["sha256"]) == 64 and i["size"] > 0 for i in inputs)
    # the resume hint names every file, in the order the journal checks them
    args = build_parser().parse_args(["persons", "delete", "--ids-file", "c.txt",
                                      "--distinct-ids-file", "a.txt", "--ids-file", "d.txt",
                                      "--distinct-ids-file", "b.txt"])
    hint = job_command(args, journal)
    assert hint.index("a.txt") < hint.index("b.txt") < hint.index("c.txt") < hint.index("d.txt")
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(second),
                             "--journal", str(journal), "--resume")
    assert code == 2 and "other inputs" in err  # a resume must give every file again


@pytest.mark.parametrize("how", ["same name", "symlink", "hard link"])
def test_one_file_given_twice_is_refused(tmp_path: Path, how: str) -> None:
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    other = tmp_path / "other.txt"
    if how == "same name":
        other = source
    elif how == "symlink":
        other.symlink_to(source)
    else:
        os.link(source, other)
    args = build_parser().parse_args(["persons", "delete", "--distinct-ids-file", str(source),
                                      "--distinct-ids-file", str(other)])
    with pytest.raises(ValueError, match="given twice"):
        validate_delete_args(args)


async def test_refusals_send_nothing_and_exit_2(srv: FakePostHog, tmp_path: Path) -> None:
    srv.seed_persons(3)
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    for extra in (["--distinct-ids-file", str(source)], ["--report", "a.json", "--report", "b.json"],
                  ["--dry-run", "--no-resolve"]):
        code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source), *extra)
        assert code == 2 and "Traceback" not in err, err
    assert srv.stats.requests == 0 and len(srv.project().persons) == 3
    assert not list(tmp_path.glob("*.sqlite"))


# -- global options after the command; no credentials in a usage error ---------------------------

def test_global_options_are_accepted_after_the_command() -> None:
    argv = ["persons", "list", "--host", "http://h", "--project-id", "7", "--api-key", API_KEY,
            "--redis-url", REDIS_URL, "-v"]
    args = build_parser().parse_args(argv)
    assert (args.host, args.project_id, args.api_key, args.redis_url, args.verbose) == (
        "http://h", "7", API_KEY, REDIS_URL, True)
    before = build_parser().parse_args(["--host", "http://h", "persons", "delete",
                                        "--distinct-ids-file", "x", "--project-id", "7"])
    assert (before.host, before.project_id, before.redis_url, before.verbose) == (
        "http://h", "7", None, False)
    demo = build_parser().parse_args(["demo", "-v"])
    assert demo.verbose is True


async def test_redis_url_after_the_command_works(srv: FakePostHog) -> None:
    """The issue's case: ``persons list --redis-url URL`` was an unknown argument, and the
    usage error printed the URL with its password."""
    srv.seed_persons(2)
    code, out, err = await run(srv, "persons", "list", "--redis-url", REDIS_URL, "--max", "1")
    assert code == 0 and len(out.splitlines()) == 1, err
    assert "hunter2" not in out + err


@pytest.mark.parametrize("argv", [
    ["persons", "list", "--redis-url", REDIS_URL, "--bogus"],
    ["persons", "list", "--bogus", "--redis-url", REDIS_URL],
    ["--bogus", "--redis-url", REDIS_URL, "persons", "list"],
    ["persons", "list", "--format", REDIS_URL],
    ["persons", "list", "--max", "redis://user:hunter2@host/0"],
    ["persons", "list", "--max", "https://host/?password=hunter2&x=1"],
    ["persons", "nope", "http://admin:hunter2@eu.posthog.com"],
])
def test_usage_errors_never_show_url_credentials(argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = parse_error(argv, capsys)
    assert "error:" in text and "hunter2" not in text, text


def test_redaction_keeps_what_is_not_secret() -> None:
    assert redact("keys start with 'phx_'") == "keys start with 'phx_'"
    assert redact("pass api_key=... or set it") == "pass api_key=... or set it"
    assert redact("redis://:pw@host:6379/0") == "redis://<redacted>@host:6379/0"
    assert redact("http://u:p@ss@host/x") == "http://<redacted>@host/x"
    assert redact("got phx_abc123") == "got <redacted>"
    assert API_KEY not in redact(f"x {API_KEY} y")


async def test_written_flags_still_count_in_a_job(srv: FakePostHog, tmp_path: Path) -> None:
    """A global option after ``persons delete`` reaches the client: the project given there is
    the one the job deletes in (a wrong one is PostHog's 404, which stops the job)."""
    srv.seed_persons(2)
    source = write_ids(tmp_path / "erase.txt", ["user-1"])
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--project-id", "1", "-v", env={"POSTHOG_PROJECT_ID": None})
    assert code == 0, err
    assert len(srv.stats.bodies[BULK]) == 1
