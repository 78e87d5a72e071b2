"""Every person once: ``ph.persons.export()`` and ``posthog-async persons export``, resumable."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from posthog_async.testing import FakePostHog
from posthog_async.testing._query import QueryOptions

from ._cli import run, spawn
from .conftest import API_KEY

PLAN = "--api-queries-plan"  # 240 HogQL queries a minute: pages 0.25 s apart, not 30 s


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def everyone(server: FakePostHog) -> dict[str, tuple[list[str], dict[str, Any]]]:
    return {p.uuid: (sorted(p.distinct_ids), p.properties) for p in server.project().ordered()}


async def test_export_gives_every_person_once_with_ids_and_properties() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None, record_bodies=True) as server:
        server.seed_persons(1_205)
        server.add_person(["solo", "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"],
                          {"email": "solo@acme.com", "nested": {"a": [1, "two"]}, "n": 3})
        server.project().ordered()[5].mutable_properties()["plan"] = "changed"
        async with server.client(rate_limits=None) as ph:
            export = ph.persons.export(page_size=300)
            got = [p async for p in export]
            assert {p.id: (sorted(p.distinct_ids), p.properties) for p in got} == everyone(server)
            assert len(got) == len(everyone(server)) and export.rows_read == len(got)
            assert all(p.created_at and p.created_at.endswith("Z") for p in got)
            queries = [b["query"]["query"] for b in server.stats.bodies["POST /api/projects/1/query/"]]
            assert len(queries) == 5 and all("OFFSET" not in q.upper() for q in queries)
            resumed = [p async for p in ph.persons.export(page_size=500, after=got[699].id)]
            assert [p.id for p in resumed] == [p.id for p in got[700:]]
            with pytest.raises(ValueError, match="50,000"):
                ph.persons.export(page_size=60_000)


async def test_cli_export_jsonl_and_csv_to_files(tmp_path: Path) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(649)
        server.add_person(["bare"], {})  # no properties: the record keeps every field
        out = tmp_path / "persons.jsonl"
        status, stdout, err = await run(server, "persons", "export", "--format", "jsonl",
                                        "--output", str(out), "--page-size", "200", PLAN)
        assert status == 0, err
        assert "650 persons exported" in err and "paced" in err and stdout == ""
        rows = lines(out)
        fields = {"id", "distinct_ids", "properties", "created_at", "is_identified"}
        assert all(set(r) == fields for r in rows)  # one shape for loaders that infer a schema
        assert {r["id"]: (sorted(r["distinct_ids"]), r["properties"]) for r in rows} == everyone(server)
        table = tmp_path / "persons.csv"
        status, _, err = await run(server, "persons", "export", "--format", "csv",
                                   "--output", str(table), "--page-size", "400", PLAN)
        assert status == 0, err
        with table.open(newline="") as f:
            records = list(csv.DictReader(f))
        assert [r["id"] for r in records] == [r["id"] for r in rows]
        assert json.loads(records[0]["properties"]) == rows[0]["properties"]
        assert json.loads(records[0]["distinct_ids"]) == rows[0]["distinct_ids"]
        assert len(table.read_text().splitlines()) == 651  # one line a person, and the header


async def test_cli_resumes_from_the_last_whole_line_after_a_crash(tmp_path: Path) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(500)
        for fmt in ("jsonl", "csv"):
            out = tmp_path / f"persons.{fmt}"
            status, _, err = await run(server, "persons", "export", "--format", fmt,
                                       "--output", str(out), "--page-size", "150", PLAN)
            assert status == 0, err
            whole = out.read_bytes()
            out.write_bytes(whole[: len(whole) * 3 // 5] + b"cut mid-line by a cra")  # a crash
            status, _, err = await run(server, "persons", "export", "--format", fmt,
                                       "--output", str(out), "--resume", "--page-size", "150", PLAN)
            assert status == 0, err
            assert out.read_bytes() == whole, fmt  # every person once, in order, nothing torn


async def test_cli_refuses_to_overwrite_or_resume_nothing(tmp_path: Path) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        out = tmp_path / "persons.jsonl"
        out.write_text('{"id": "x"}\n')
        status, _, err = await run(server, "persons", "export", "--output", str(out))
        assert status == 2 and "--resume" in err and "--overwrite" in err
        status, _, err = await run(server, "persons", "export", "--resume")
        assert status == 2 and "needs --output" in err
        status, _, err = await run(server, "persons", "export", "--format", "csv",
                                   "--output", str(out), "--resume")
        assert status == 2 and "does not end with a csv person record" in err
        assert server.stats.by_endpoint["POST query/"] == 0  # bad usage costs no request


async def test_cli_ctrl_c_stops_after_the_page_and_resumes(tmp_path: Path) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           query_options=QueryOptions(latency=0.2)) as server:
        server.seed_persons(1_000)
        out = tmp_path / "persons.jsonl"
        proc = await spawn(server, "persons", "export", "--output", str(out),
                           "--page-size", "100", PLAN)
        while server.stats.by_endpoint["POST query/"] < 3:
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = await proc.communicate()
        assert proc.returncode == 130, err.decode()
        assert "resume with: posthog-async" in err.decode() and API_KEY not in err.decode()
        written = lines(out)
        assert 0 < len(written) < 1000 and len(written) % 100 == 0  # whole pages only
        status, _, err2 = await run(server, "persons", "export", "--output", str(out), "--resume",
                                    "--page-size", "100", PLAN)
        assert status == 0, err2
        ids = [r["id"] for r in lines(out)]
        assert len(ids) == len(set(ids)) == 1_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_new_user_exports_everyone_from_the_standalone_fake(tmp_path: Path) -> None:
    """The issue's bar: ``posthog-async persons export --format jsonl`` against
    ``python -m posthog_async.testing``, default options on both sides."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "posthog_async.testing", "--port", str(port),
                               "--persons", "2500"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(f"{url}/api/users/@me/", headers={
                    "Authorization": "Bearer phx_fake_personal_api_key"})
                await asyncio.to_thread(urllib.request.urlopen, req, timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                await asyncio.sleep(0.1)
        status, stdout, err = await run(None, "persons", "export", "--format", "jsonl",
                                        host=url, key="phx_fake_personal_api_key")
        assert status == 0, err
        ids = [json.loads(line)["id"] for line in stdout.splitlines()]
        assert len(ids) == len(set(ids)) == 2500
    finally:
        server.terminate()
        server.wait(timeout=10)
