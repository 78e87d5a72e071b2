"""The host a job runs against, and the commands the CLI prints to resume (probe 17, A2, E):
a resume or a verification against another host is refused; a hint pasted into a shell that
has neither ``POSTHOG_HOST`` nor ``POSTHOG_PROJECT_ID`` reaches the same PostHog and project,
also for file names starting with ``-`` or that are not UTF-8. The CLI runs in a subprocess
against offline PostHogs in this process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from aiohttp import web

from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions
from posthog_async.testing._request import respond

from ._cli import run, spawn, write_ids
from .conftest import API_KEY

#: The environment of "another shell": the key only.
BARE = {"POSTHOG_HOST": None, "POSTHOG_PROJECT_ID": None}


async def in_bash(hint: str, cwd: Path) -> tuple[int, str]:
    """Run a printed hint as a user pastes it into bash (the key in the environment only)."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("POSTHOG_HOST", "POSTHOG_PROJECT_ID", "POSTHOG_ASYNC_REDIS_URL")}
    env.update(POSTHOG_PERSONAL_API_KEY=API_KEY, PY=sys.executable)
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", 'posthog-async() { "$PY" -m posthog_async.cli "$@"; }\n' + hint,
        env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def hints(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("posthog-async ")]


async def test_a_job_is_resumed_and_verified_only_against_its_host(tmp_path: Path) -> None:
    """A resume against another host finished the job there: its persons are not there, so
    every id was "not found", a false proof."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as first, \
            FakePostHog(api_key=API_KEY, rate_limits=None) as other:
        first.seed_persons(5)
        other.seed_persons(5)
        source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2"])
        code, _, err = await run(first, "persons", "delete", "--distinct-ids-file", str(source))
        assert code == 0, err
        for action in (["delete", "--resume"], ["verify"]):
            code, _, err = await run(other, "persons", *action, "--distinct-ids-file", str(source))
            assert code == 2, err
            assert f"was started against {first.url.rstrip('/')}, not {other.url.rstrip('/')}" \
                in err and f"--host {first.url.rstrip('/')}" in err
        assert other.stats.requests == 0 and len(other.project().persons) == 5
        journal = Path(f"{source}.journal.sqlite")
        with sqlite3.connect(journal) as db:  # a journal of an older version: no host
            db.execute("DELETE FROM meta WHERE key = 'host'")
        db.close()
        code, _, err = await run(first, "persons", "delete", "--resume",
                                 "--distinct-ids-file", str(source))
        assert code == 0, err
        code, _, err = await run(other, "persons", "delete", "--resume",
                                 "--distinct-ids-file", str(source))
        assert code == 2 and "was started against" in err, err  # recorded by that resume


async def test_a_delete_hint_survives_copy_paste_into_another_shell(tmp_path: Path) -> None:
    """Inputs named ``-ids.txt`` and ``bad<0xff>.txt`` (not UTF-8), a journal ``-j.sqlite``,
    the host and project from the environment: the hint named ``--distinct-ids-file -ids.txt``
    (an option, pasted), ``bad\\udcff.txt`` (no such file), and no host."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as srv:
        srv.seed_persons(6)
        write_ids(tmp_path / "-ids.txt", ["user-1", "user-2"])
        (tmp_path / os.fsdecode(b"bad\xff.txt")).write_text("user-3\n")
        broken = True

        def fail(request: web.Request) -> web.StreamResponse | None:
            return respond(500, {"detail": "boom"}) if broken and "bulk_delete" in request.path \
                else None

        srv.add_hook(fail)
        code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file=-ids.txt",
                                 "--distinct-ids-file", os.fsdecode(b"bad\xff.txt"),
                                 "--journal=-j.sqlite", "--patience", "1", cwd=tmp_path)
        assert code == 1 and "failed" in err, err
        [hint] = hints(err)
        assert f"--host {srv.url.rstrip('/')}" in hint and "--project-id 1" in hint, hint
        assert "--distinct-ids-file=-ids.txt" in hint and "$'bad\\xff.txt'" in hint, hint
        assert "--journal=-j.sqlite" in hint and API_KEY not in hint
        broken = False
        code, err = await in_bash(hint, tmp_path)
        assert code == 0, err
        assert {d for p in srv.project().persons.values() for d in p.distinct_ids}.isdisjoint(
            {"user-1", "user-2", "user-3"})


async def test_an_export_hint_keeps_its_host_project_and_plan(tmp_path: Path) -> None:
    """The export's hint dropped ``--api-queries-plan`` (the resumed export then paced queries
    30 s apart), the host and a project from the environment."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.2)) as srv:
        srv.seed_persons(600)
        proc = await spawn(srv, "persons", "export", "--output=-persons.jsonl", "--page-size",
                           "100", "--api-queries-plan", cwd=tmp_path)
        try:
            while srv.stats.by_endpoint["POST query/"] < 2:
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            _, raw = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        err = raw.decode()
        assert proc.returncode == 130, err
        hint = err[err.index("posthog-async "):].splitlines()[0]
        assert "--api-queries-plan" in hint and "--output=-persons.jsonl" in hint, hint
        assert f"--host {srv.url.rstrip('/')}" in hint and "--project-id 1" in hint, hint
        code, err = await in_bash(hint, tmp_path)
        assert code == 0, err
        assert len((tmp_path / "-persons.jsonl").read_text().splitlines()) == 600
