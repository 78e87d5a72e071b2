"""A 2xx to ``bulk_delete`` that is not PostHog's answer (a proxy's or a login page, an empty
200, a 204, ``{"ok": true}``) is never taken for "deleted": the call raises
``UnexpectedResponseError``, the job stops, and no id of it is claimed. PostHog's own answers
(counts; the oldest version's empty 202) still settle their chunks. Against the offline PostHog.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from posthog_async import UnexpectedResponseError
from posthog_async.jobs import DeletionJob
from posthog_async.testing import FakePostHog

from ._cli import run
from .conftest import API_KEY

#: Answers a proxy or a misconfigured gateway gives in PostHog's place (the persons stay).
NOT_POSTHOGS: dict[str, Callable[[], web.Response]] = {
    "html": lambda: web.Response(status=200, text=f"<html>Please log in ({API_KEY})</html>",
                                 content_type="text/html"),
    "ok-json": lambda: web.json_response({"ok": True}),
    "empty-200": lambda: web.Response(status=200),
    "204": lambda: web.Response(status=204),
    "empty-202-json-list": lambda: web.json_response([], status=202),
}


def write_ids(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def per_id(report: Any) -> dict[str, tuple[str, str | None]]:
    return {r["id"]: (r["outcome"], r["reason"]) for r in report.to_dict(per_id=True)["ids"]}


def answering(answer: Callable[[], web.Response]) -> Callable[[web.Request], Any]:
    def hook(request: web.Request) -> web.StreamResponse | None:
        return answer() if "bulk_delete" in request.path else None
    return hook


@pytest.fixture
async def srv() -> AsyncIterator[FakePostHog]:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        yield server


@pytest.mark.parametrize("name", sorted(NOT_POSTHOGS))
async def test_the_low_level_call_raises_on_a_2xx_that_is_not_posthogs(
        srv: FakePostHog, name: str) -> None:
    srv.seed_persons(2)
    srv.add_hook(answering(NOT_POSTHOGS[name]))
    async with srv.client(rate_limits=None) as ph:
        with pytest.raises(UnexpectedResponseError) as info:
            await ph.persons.bulk_delete(distinct_ids=["user-1"])
    assert info.value.maybe_processed and info.value.body is None
    assert "not PostHog's" in str(info.value) and API_KEY not in str(info.value)
    assert srv.stats.requests == 1  # not re-sent


@pytest.mark.parametrize("resolve", [True, False])
@pytest.mark.parametrize("name", sorted(NOT_POSTHOGS))
async def test_a_job_given_an_answer_that_is_not_posthogs_stops_and_claims_nothing(
        srv: FakePostHog, tmp_path: Path, name: str, resolve: bool) -> None:
    srv.seed_persons(20)
    srv.add_hook(answering(NOT_POSTHOGS[name]))
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 21)])
    async with srv.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, chunk_size=10, concurrency=1,
                                   resolve=resolve, delete_events=True).run()
    assert len(srv.project().persons) == 20
    outcomes = per_id(report)
    assert not any(o in ("deleted", "queued", "not_found") for o, _ in outcomes.values()), outcomes
    assert not report.ok and report.stopped and "not PostHog's" in report.stopped
    assert report.totals["persons_deleted"] == 0 and report.totals["deleted"] == 0
    assert API_KEY not in str(report.to_dict(per_id=True))


async def test_the_cli_stops_on_an_html_200_and_exits_non_zero(srv: FakePostHog,
                                                               tmp_path: Path) -> None:
    """The probe's case: "deleted 20 ... exact per id: yes", exit 0, all 20 persons still there."""
    srv.seed_persons(20)
    srv.add_hook(answering(NOT_POSTHOGS["html"]))
    source = write_ids(tmp_path / "in.txt", [f"user-{i}" for i in range(1, 21)])
    report = tmp_path / "r.csv"
    code, out, err = await run(srv, "persons", "delete", "--distinct-ids-file", str(source),
                               "--delete-events", "--report", str(report))
    assert code == 1, (out, err)
    assert "not PostHog's" in err and API_KEY not in out + err
    assert "exact per id: yes" not in out + err
    assert len(srv.project().persons) == 20


@pytest.mark.parametrize("resolve", [True, False])
async def test_the_oldest_posthogs_empty_202_is_settled_by_lookups(tmp_path: Path,
                                                                  resolve: bool) -> None:
    """P-A answers an empty 202 after deleting: a lookup after the send names who went; with
    a lookup before it too, each id is exact; without, ids gone are unresolved."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           bulk_delete_version="P-A") as server:
        server.seed_persons(4)
        source = write_ids(tmp_path / "erase.txt", ["user-1", "ghost", "user-2"])
        async with server.client(rate_limits=None) as ph:
            report = await DeletionJob(ph, distinct_ids=source, concurrency=1,
                                       resolve=resolve).run()
        assert set(server.project().persons) == {
            server.project().by_distinct_id[f"user-{i}"].uuid for i in (3, 4)}
    outcomes = per_id(report)
    assert report.ok and not report.stopped
    if resolve:
        assert outcomes["user-1"][0] == outcomes["user-2"][0] == "deleted"
        assert outcomes["ghost"] == ("not_found", None)
        assert report.exactness["per_id_outcomes_exact"]
    else:
        assert {o for o, _ in outcomes.values()} == {"unresolved"}
        assert not report.exactness["per_id_outcomes_exact"]


async def test_the_oldest_posthog_failing_midway_is_never_reported_deleted(tmp_path: Path) -> None:
    """P-A deletes one by one inside the request; a person it cannot delete ends it with a 500,
    those before it deleted, it and those after it not (posthog/api/person.py@a8b2677e). The
    job says exactly that: deleted before, failed (with the 500) from it on; never "deleted"
    for a person still there."""
    async with FakePostHog(api_key=API_KEY, rate_limits=None,
                           bulk_delete_version="P-A") as server:
        server.seed_persons(4)
        doomed = server.project().by_distinct_id["user-2"].uuid
        server.fail_deletion_of(doomed)
        source = write_ids(tmp_path / "erase.txt", ["user-1", "user-2", "user-3"])
        async with server.client(rate_limits=None) as ph:
            report = await DeletionJob(ph, distinct_ids=source, concurrency=1,
                                       patience=0.3).run()
        alive = set(server.project().persons)
    outcomes = per_id(report)
    assert outcomes["user-1"][0] == "deleted"
    assert outcomes["user-2"][0] == outcomes["user-3"][0] == "failed"
    assert "500" in str(outcomes["user-2"][1]) and doomed in alive and not report.ok
    assert {k for k, (o, _) in outcomes.items() if o == "deleted"} == {"user-1"}


# -- the calls counted: what PostHog may have acted on, and chunks really re-sent -----------------

def bulk_arrivals(server: FakePostHog) -> list[int]:
    """The status of each bulk_delete PostHog received, recorded by a hook (in order)."""
    seen: list[int] = []

    def hook(request: web.Request) -> None:
        if "bulk_delete" in request.path:
            seen.append(1)
        return None

    server.add_hook(hook)
    return seen


@pytest.mark.parametrize(("fault", "expected"), [
    ({"lose_answer": True}, (1, 1, 0)),  # processed, answer lost: the lookup settles it
    ({"drop": True}, (2, 1, 1)),  # dropped before PostHog acts: the lookup finds all, re-sent
])
async def test_resent_chunks_are_chunks_sent_again(srv: FakePostHog, tmp_path: Path,
                                                  fault: dict[str, bool],
                                                  expected: tuple[int, int, int]) -> None:
    """The probe's s3: "delete_calls 1, resent_chunks 1" though nothing was re-sent."""
    srv.seed_persons(5)
    srv.fail_next(None, path_contains="bulk_delete", **fault)
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 6)])
    async with srv.client(rate_limits=None) as ph:
        report = await DeletionJob(ph, distinct_ids=source, concurrency=1).run()
    t = report.totals
    assert (t["delete_calls"], t["lost_answers"], t["resent_chunks"]) == expected, t
    assert t["deleted"] == 5 and report.ok


async def test_calls_refused_with_a_429_are_not_delete_calls(srv: FakePostHog,
                                                           tmp_path: Path) -> None:
    """Refused calls reached the server but PostHog did nothing with them: the report's
    delete_calls are the calls it may have acted on (probe: 48 reported for 40 received)."""
    srv.seed_persons(4)
    arrivals = bulk_arrivals(srv)
    srv.fail_next(429, times=4, retry_after=0, path_contains="bulk_delete")
    source = write_ids(tmp_path / "erase.txt", [f"user-{i}" for i in range(1, 5)])
    async with srv.client(rate_limits=None, max_retries=1) as ph:
        report = await DeletionJob(ph, distinct_ids=source, chunk_size=2, concurrency=1,
                                   resolve=False).run()
    t = report.totals
    assert len(arrivals) == 6 and srv.stats.errors_injected == 4
    assert (t["delete_calls"], t["lost_answers"], t["resent_chunks"]) == (2, 0, 0), t
    assert t["deleted"] == 4 and report.ok
