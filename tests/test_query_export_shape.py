"""The JSONL export writes every field of every person, empty or not, so a loader that infers a
schema from the first lines sees one shape (the CSV always has every column). Against the
offline PostHog, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posthog_async.testing import FakePostHog

from ._cli import run
from .conftest import API_KEY

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


async def test_every_jsonl_record_has_every_field(tmp_path: Path) -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(2)
        server.add_person(["no-props"], {})  # no properties
        out = tmp_path / "persons.jsonl"
        status, _, err = await run(server, "persons", "export", "--format", "jsonl",
                                   "--output", str(out))
        assert status == 0, err
        records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3
    keys = {"id", "distinct_ids", "properties", "created_at", "is_identified"}
    assert all(set(record) == keys for record in records), records
    assert any(record["properties"] == {} for record in records)
