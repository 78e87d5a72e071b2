"""Rate limits in the fake server, counted per key and per bucket the way PostHog's DRF throttles count."""

from __future__ import annotations

import asyncio

import pytest

from posthog_async.testing import PRODUCTION_LIMITS, FakePostHog

from .test_fake_server import PERSONS, call


async def statuses(server: FakePostHog, requests: list[tuple[str, str]], key: str | None = None) -> list[int]:
    return [(await call(server, method, path, key=key or server.api_key,
                        json={} if method in ("POST", "PATCH") else None))[0]
            for method, path in requests]


def test_production_buckets() -> None:
    assert PRODUCTION_LIMITS == {"persons": ((240, 60.0),),
                                 "person_deletes": ((480, 60.0), (4800, 3600.0)),
                                 "general": ((480, 60.0), (4800, 3600.0)),
                                 "hogql": ((120, 3600.0),), "queries": ((1200, 3600.0),)}
    with pytest.raises(ValueError, match="crud"):
        FakePostHog(rate_limits={"crud": [(60, 10)]})


async def test_row26_every_non_delete_persons_call_shares_one_bucket() -> None:
    async with FakePostHog(rate_limits={"persons": [(4, 60)]}, project_ids=(1, 2)) as server:
        person = server.add_person(["x"])
        got = await statuses(server, [
            ("GET", PERSONS), ("GET", f"{PERSONS}{person.uuid}/"),
            ("POST", PERSONS + "batch_by_distinct_ids/"), ("GET", "/api/projects/2/persons/"),
            ("PATCH", f"{PERSONS}{person.uuid}/"), ("GET", PERSONS + "values/")])
        assert got == [200, 200, 200, 200, 429, 429]  # one bucket per key, across projects
        assert await statuses(server, [("DELETE", f"{PERSONS}{person.uuid}/")]) == [202]
        server.add_key("phx_other")
        assert await statuses(server, [("GET", PERSONS)], key="phx_other") == [200]  # per key


async def test_row27_deletes_have_their_own_bucket() -> None:
    async with FakePostHog(rate_limits={"person_deletes": [(2, 60)]}) as server:
        server.seed_persons(5)
        uuids = list(server.project().persons)
        got = await statuses(server, [("DELETE", f"{PERSONS}{uuids[0]}/"),
                                      ("POST", PERSONS + "bulk_delete/"),
                                      ("DELETE", f"{PERSONS}{uuids[1]}/"),
                                      ("GET", PERSONS), ("GET", "/api/projects/1/property_definitions/")])
        assert got == [202, 400, 429, 200, 200]


async def test_row28_general_bucket_and_unthrottled_users() -> None:
    limits = {"general": [(2, 60)], "persons": [(1, 60)], "person_deletes": [(1, 60)]}
    async with FakePostHog(rate_limits=limits) as server:
        got = await statuses(server, [("GET", "/api/projects/1/subscriptions/"),
                                      ("GET", "/api/projects/1/property_definitions/"),
                                      ("GET", "/api/projects/1/session_recordings/r1/sharing/")])
        assert got == [200, 200, 429]
        assert await statuses(server, [("GET", "/api/users/@me/")] * 5) == [200] * 5


async def test_row30_each_window_records_what_it_allowed() -> None:
    """DRF runs every throttle: the short window refuses the 3rd call, the long one still records
    it, so after the short window clears the long one refuses, waiting for its oldest request."""
    async with FakePostHog(rate_limits={"persons": [(2, 0.3), (3, 60)]}) as server:
        assert await statuses(server, [("GET", PERSONS)] * 3) == [200, 200, 429]
        await asyncio.sleep(0.35)
        status, body, headers = await call(server, "GET", PERSONS, key=server.api_key)
        assert status == 429 and 59 <= int(headers["Retry-After"]) <= 60
        assert body == {"type": "throttled_error", "code": "throttled", "attr": None,
                        "detail": f"Request was throttled. Expected available in {headers['Retry-After']} seconds."}
        assert server.stats.throttled == 2


async def test_row30_singular_second_and_optional_header() -> None:
    async with FakePostHog(rate_limits={"persons": [(1, 1.0)]}) as server:
        await call(server, "GET", PERSONS, key=server.api_key)
        _, body, headers = await call(server, "GET", PERSONS, key=server.api_key)
        assert body["detail"] == "Request was throttled. Expected available in 1 second."
        assert headers["Retry-After"] == "1"
    async with FakePostHog(rate_limits={"persons": [(1, 60)]}, retry_after_header=False) as server:
        await call(server, "GET", PERSONS, key=server.api_key)
        status, body, headers = await call(server, "GET", PERSONS, key=server.api_key)
        assert status == 429 and "Retry-After" not in headers and "60 seconds" in body["detail"]


async def test_set_rate_limits_replaces_the_configuration() -> None:
    async with FakePostHog(rate_limits=None) as server:
        server.set_rate_limits({"persons": [(1, 60)]})
        assert await statuses(server, [("GET", PERSONS)] * 2) == [200, 429]
        server.set_rate_limits(None)
        assert await statuses(server, [("GET", PERSONS)] * 3) == [200] * 3


async def test_refused_and_forbidden_calls_are_not_counted() -> None:
    """Scopes are checked before throttles, as DRF's ``initial`` does."""
    async with FakePostHog(rate_limits={"persons": [(1, 60)]}) as server:
        server.add_key("phx_ro", scopes={"person:read"})
        person = server.add_person(["x"])
        assert await statuses(server, [("POST", f"{PERSONS}{person.uuid}/split/"),
                                       ("GET", PERSONS + "funnel/")], key="phx_ro") == [403, 403]
        assert await statuses(server, [("GET", PERSONS)], key="phx_ro") == [200]
