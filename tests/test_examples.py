"""Every example keeps its promise: it runs against the offline PostHog when no key is set, and
against *your* PostHog when ``POSTHOG_PERSONAL_API_KEY`` is (here a ``FakePostHog`` stands in for
it, reached only through ``POSTHOG_HOST``, so the test sees which server the example talked to).

The FastAPI example is run under uvicorn, against a PostHog given the same way, in
``test_web_apps.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from posthog_async.testing import FakePostHog

from .conftest import API_KEY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
OFFLINE_BANNER = "no POSTHOG_PERSONAL_API_KEY: using the offline PostHog"
RUNS = [
    ("quickstart.py", []), ("gdpr_bulk_delete.py", []), ("fan_out_projects.py", []),
    ("aiohttp_web_app.py", ["--check"]), ("query_export.py", ["--api-queries-plan"]),
    ("erase_across_projects.py", []),
]
#: Examples that delete: on your PostHog only the ids of a file you name (tested below).
DELETING = ("gdpr_bulk_delete.py", "erase_across_projects.py")


async def run_example(script: str, args: list[str], **env: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error::ResourceWarning", str(EXAMPLES / script), *args, cwd=EXAMPLES,
        env={**clean, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("script,args", RUNS)
async def test_example_runs_offline_without_a_key(script: str, args: list[str]) -> None:
    code, out, err = await run_example(script, args)
    assert code == 0, err
    assert "Traceback" not in err and "Unclosed" not in err, err
    assert OFFLINE_BANNER in out


async def your_posthog() -> FakePostHog:
    """A server standing in for the user's PostHog: only the environment leads to it."""
    server = FakePostHog(api_key=API_KEY, project_ids=(7, 8), rate_limits=None)
    server.seed_persons(30, project_id=7)
    server.seed_persons(10, project_id=8, prefix="other-")
    return server


def key_env(server: FakePostHog, **extra: str) -> dict[str, str]:
    return {"POSTHOG_PERSONAL_API_KEY": API_KEY, "POSTHOG_HOST": server.url, "POSTHOG_PROJECT_ID": "7",
            **extra}


@pytest.mark.parametrize("script,args", [run for run in RUNS if run[0] not in DELETING])
async def test_example_talks_to_your_posthog_when_the_key_is_set(script: str, args: list[str]) -> None:
    async with await your_posthog() as server:
        code, out, err = await run_example(script, args, **key_env(server, POSTHOG_PROJECT_IDS="7,8"))
        assert code == 0, err
        assert OFFLINE_BANNER not in out
        assert server.stats.requests > 0  # it came here, with the key from the environment
        if script == "quickstart.py":  # only reads your data
            assert not [e for e in server.stats.by_endpoint if not e.startswith("GET ")
                        and "batch_by_distinct_ids" not in e]
        if script == "fan_out_projects.py":
            assert "project 7:" in out and "project 8:" in out and "failed" not in out
        if script == "aiohttp_web_app.py":
            assert out.startswith("200 ")
        if script == "query_export.py":  # only reads: queries and GETs
            assert not [e for e in server.stats.by_endpoint if not e.startswith("GET ")
                        and not e.startswith("POST query/")], server.stats.by_endpoint
            assert "persons by plan: {" in out and "first page: 30 persons" in out


async def test_erasure_example_on_your_posthog_deletes_only_the_ids_you_name(tmp_path: Path) -> None:
    async with await your_posthog() as server:
        code, _, err = await run_example("gdpr_bulk_delete.py", [], **key_env(server))
        assert code == 2 and "a file you name" in err
        assert server.ids_deleted == 0  # refused before any request that deletes

        erase = tmp_path / "erase.txt"
        erase.write_text("user-1\nuser-2\nuser-3\nuser-4\nnobody\n", encoding="utf-8")
        code, out, err = await run_example("gdpr_bulk_delete.py", [str(erase)], **key_env(server))
        assert code == 0, err
        assert server.ids_deleted == 4
        left = {d for d in server.project(7).by_distinct_id if d.startswith("user-")}
        assert left == {f"user-{i}" for i in range(5, 31)}
        assert "not_found': 1" in out  # "nobody", accounted for


async def test_erase_across_projects_on_your_posthog_deletes_only_named_ids_in_named_projects(
        tmp_path: Path) -> None:
    async with await your_posthog() as server:
        code, _, err = await run_example("erase_across_projects.py", [],
                                         **key_env(server, POSTHOG_PROJECT_IDS="7,8"))
        assert code == 2 and "a file you name" in err
        assert server.ids_deleted == 0  # refused before any request that deletes

        erase = tmp_path / "erase.txt"
        erase.write_text("user-1\nuser-2\nother-1\nnobody\n", encoding="utf-8")
        code, out, err = await run_example("erase_across_projects.py", [str(erase)],
                                           **key_env(server, POSTHOG_PROJECT_IDS="7,8"))
        # PostHog's weekly batch has not run: the persons are gone, their events pending (3).
        assert code == 3, err
        assert "verification: pending" in out
        assert {d for d in server.project(7).by_distinct_id if d.startswith("user-")} == {
            f"user-{i}" for i in range(3, 31)}
        assert {d for d in server.project(8).by_distinct_id if d.startswith("other-")} == {
            f"other-{i}" for i in range(2, 11)}
        assert "project 7: covered, 2 deleted" in out and "project 8: covered, 1 deleted" in out
