"""Junk input never crashes the fake server: every route, odd ids, odd bodies, odd query strings.

The only 500s allowed are the ones PostHog itself answers (delete_property on an unknown or
malformed person, cohorts without ``person_id``, properties_at_time failing on a ``person_id``).
"""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from posthog_async.testing import FakePostHog, Faults

from .conftest import API_KEY

IDS = ("abc", "³", "-1", "0", "99999999999999999999999", "1", "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c",
       "%20", "@me")
BODIES = (b"", b"null", b"[]", b"[1,2]", b'"text"', b"123", b"{}", b'{"ids": 5, "distinct_ids": {"a": 1}}',
          b'{"properties": [1], "key": {"x": 1}, "value": null, "$unset": 7}',
          b'{"distinct_ids_to_split": [1], "main_distinct_id": [1], "uuids": [null, 5], "distinct_id": []}',
          b'{"interval": "9e999", "insight": true, "dashboard": -1, "byweekday": "monday", '
          b'"start_date": 5, "raw_password": {"a": 1}, "note": [], "enabled": "maybe", "settings": 3}',
          b'{"insight": ' + b"9" * 4000 + b', "interval": 1e400, "count": 1e308}',
          b"[" * 5000)
QUERIES: tuple[dict[str, str], ...] = ({}, {"limit": "abc", "offset": "-5"}, {"limit": "0", "offset": "9" * 30},
           {"type": "group", "group_type_index": "x", "is_numerical": "maybe"},
           {"properties": "{", "search": "\x00", "format": "csv", "include_total": ""},
           {"person_id": "abc", "distinct_id": "", "timestamp": "2023-02-30T99:00:00"},
           {"status": "", "person_uuid": "", "deleted": "", "insight": "x", "target_type": "webhook"},
           {"event_names": '{"a": 1}', "excluded_properties": "[1", "property_name": ""})
ALLOWED_500 = (re.compile(r"/persons/[^/]+/delete_property/?$"), re.compile(r"/persons/cohorts/?$"),
               re.compile(r"/persons/properties_at_time/?$"))


def paths() -> list[str]:
    out = []
    for template in (
        "persons/", "persons/{}/", "persons/{}/activity/", "persons/{}/update_property/",
        "persons/{}/delete_property/", "persons/{}/split/", "persons/{}/delete_events/",
        "persons/{}/delete_recordings/", "persons/activity/", "persons/bulk_delete/",
        "persons/batch_by_distinct_ids/", "persons/batch_by_uuids/", "persons/cohorts/",
        "persons/values/", "persons/deletion_status/", "persons/reset_person_distinct_id/",
        "persons/properties_at_time/", "property_definitions/", "property_definitions/{}/",
        "property_definitions/seen_together/", "subscriptions/", "subscriptions/{}/",
        "session_recordings/{}/sharing/", "session_recordings/{}/sharing/passwords/",
        "session_recordings/r/sharing/passwords/{}/", "session_recordings/{}/sharing/refresh/",
    ):
        for ident in (IDS if "{}" in template else ("",)):
            out.append("/api/projects/1/" + template.format(ident))
    return out + [f"/api/users/{i}/" for i in IDS] + ["/api/users/", "/api/projects/³/persons/"]


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "PUT", "DELETE"])
async def test_junk_never_crashes(server: FakePostHog, method: str) -> None:
    server.seed_persons(3)
    server.add_person(["x"], {"deep": {"a": [1, 2]}, "n": 10**30})
    crashes = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:
        for i, path in enumerate(paths()):
            body = BODIES[i % len(BODIES)] if method != "GET" else b""
            query = QUERIES[i % len(QUERIES)]
            for content_type in ("application/json", "application/x-www-form-urlencoded"):
                async with session.request(method, server.url + path, params=query, data=body,
                                           headers={"Content-Type": content_type}) as resp:
                    await resp.read()
                    if resp.status >= 500 and not any(p.search(path) for p in ALLOWED_500):
                        crashes.append((method, path, body[:60], query, content_type, resp.status))
    assert crashes == []


async def test_every_body_on_every_persons_write(server: FakePostHog) -> None:
    person = server.add_person(["y"])
    crashes = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}",
                                              "Content-Type": "application/json"}) as session:
        for suffix in ("", "update_property/", "split/", "delete_property/"):
            for body in BODIES:
                method = "PATCH" if not suffix else "POST"
                path = f"{server.url}/api/projects/1/persons/{person.uuid}/{suffix}"
                async with session.request(method, path, data=body) as resp:
                    await resp.read()
                    if resp.status >= 500:
                        crashes.append((suffix, body[:60], resp.status))
        for path in ("bulk_delete/", "batch_by_uuids/", "batch_by_distinct_ids/",
                     "reset_person_distinct_id/"):
            for body in BODIES:
                async with session.post(f"{server.url}/api/projects/1/persons/{path}", data=body) as resp:
                    await resp.read()
                    if resp.status >= 500:
                        crashes.append((path, body[:60], resp.status))
    assert crashes == []


# -- a slow server, and clients that go away (issue 18.6) ------------------------------------


async def test_a_write_whose_client_timed_out_is_still_done(caplog: pytest.LogCaptureFixture) -> None:
    """The latency is the server's work: it starts once the body is in, and a client that gives
    up meanwhile does not undo it (PostHog has the body and finishes). Nothing is logged as a
    crash, and the fake counts the answer nobody read."""
    caplog.set_level(logging.DEBUG)
    async with FakePostHog(api_key=API_KEY, rate_limits=None, faults=Faults(latency=0.4)) as server:
        server.seed_persons(3)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            with pytest.raises(asyncio.TimeoutError):
                await http.post(f"{server.url}/api/projects/1/persons/bulk_delete/",
                                json={"distinct_ids": ["user-1"]},
                                timeout=aiohttp.ClientTimeout(total=0.1))
        await asyncio.sleep(0.6)
        assert server.ids_deleted == 1 and server.stats.in_flight == 0
        assert server.stats.disconnects == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_a_client_gone_before_its_body_arrived_is_no_crash(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        server.seed_persons(3)
        _, writer = await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
        writer.write(b"POST /api/projects/1/persons/bulk_delete/ HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                     b'{"distinct_ids": ["user-1"')  # and then the client is gone
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await writer.wait_closed()
        for _ in range(50):
            if server.stats.disconnects:
                break
            await asyncio.sleep(0.02)
        assert server.stats.disconnects == 1 and server.ids_deleted == 0
        assert server.stats.in_flight == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_forms_still_parse_after_the_body_was_read_first() -> None:
    async with FakePostHog(api_key=API_KEY, rate_limits=None) as server:
        form = aiohttp.FormData()
        form.add_field("enabled", "true")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            async with http.patch(f"{server.url}/api/projects/1/session_recordings/r1/sharing/",
                                  data=form) as resp:
                body = await resp.json()
        assert resp.status == 200 and body["enabled"] is True
