"""``persons delete`` given inputs a probe found read wrongly (probe 17, A3, A4, D): a CSV row
whose cells are shifted, inputs without a single id, a rejected id holding a NUL. The CLI runs
in a subprocess against the offline PostHog in this process; each refusal comes before any
request."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from posthog_async.testing import FakePostHog

from ._cli import run, write_ids
from .conftest import API_KEY


@pytest.fixture
async def srv() -> Any:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(50)
        yield server


async def test_a_shifted_csv_row_refuses_the_job_naming_its_line(srv: FakePostHog,
                                                                 tmp_path: Path) -> None:
    source = tmp_path / "shift.csv"
    source.write_text("name,id\nAlice,user-41\nSmith, user-40,user-42\n")
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--csv", "--column", "id", "--report", str(tmp_path / "r.csv"))
    assert code == 2, err
    assert "shift.csv (csv 'id'), line 3: the row has 3 cells and the header 2" in err
    assert "nothing was sent" in err and srv.stats.requests == 0
    assert len(srv.project().persons) == 50 and not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("name,content,fmt,why", [
    ("blank.txt", "\n\n  \n", [], "it holds only blank lines (3)"),
    ("empty.txt", "", [], "it is empty"),
    ("table.csv", "name,id\nAlice,\nBob, \n", ["--csv", "--column", "id"],
     "its column 'id' is empty in every row (2 rows)"),
    ("header.csv", "name,id\n", ["--csv", "--column", "id"], "it has no rows"),
    ("blank.jsonl", '\n{"id": ""}\n', ["--jsonl", "--field", "id"], "only blank"),
])
async def test_an_input_without_ids_is_refused(srv: FakePostHog, tmp_path: Path, name: str,
                                               content: str, fmt: list[str], why: str) -> None:
    """Each exited 0 having done nothing ("unique 0"): not the list the user meant."""
    source = tmp_path / name
    source.write_text(content)
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source), *fmt)
    assert code == 2, err
    assert f"{source}" in err and "holds no ids" in err and why in err, err
    assert srv.stats.requests == 0


async def test_an_empty_input_among_others_is_refused(srv: FakePostHog, tmp_path: Path) -> None:
    """Alone a 0-byte file was refused, beside a file with ids it was taken."""
    ids = write_ids(tmp_path / "ids.txt", ["user-1", "user-2"])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    for order in ([ids, empty], [empty, ids]):
        args = [word for path in order for word in ("--distinct-ids-file", str(path))]
        code, _, err = await run(srv, "persons", "delete", *args,
                                 "--journal", str(tmp_path / f"j{order.index(ids)}.sqlite"))
        assert code == 2 and f"{empty} holds no ids: it is empty" in err, err
    assert srv.stats.requests == 0 and len(srv.project().persons) == 50


async def test_an_id_holding_a_nul_is_written_escaped_in_the_csv_report(
        srv: FakePostHog, tmp_path: Path) -> None:
    """A rejected id holding a NUL (or an escape sequence) was written raw into the CSV report,
    the proof a reader must trust as text."""
    source = tmp_path / "erase.txt"
    source.write_bytes(b"user-1\nbad\x00id\nevil\x1b[2Jid\nC:\\path\n")
    report = tmp_path / "report.csv"
    code, _, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                             "--report", str(report))
    assert code == 1, err  # the invalid ids are named: not all done
    data = report.read_bytes()
    assert b"\x00" not in data and b"\x1b" not in data
    rows = {row[1]: row[2] for row in csv.reader(data.decode().splitlines()) if len(row) > 2}
    assert rows["bad\\x00id"] == rows["evil\\x1b[2Jid"] == "invalid"
    assert rows["user-1"] == "deleted" and rows["C:\\path"] == "not_found"  # printable: as is
    assert "\x00" not in err and "\x1b" not in err
