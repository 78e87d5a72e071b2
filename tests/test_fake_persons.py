"""Persons endpoints of the fake server (one test per row of the server survey), over raw HTTP."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from posthog_async.testing import FakePostHog

from .test_fake_server import PERSONS, call, error

NOT_A_PERSON_ID = ("The ID provided does not look like a personID. If you are using a distinctId, "
                   "please use /persons?distinct_id={} instead.")
SWAPPED = {"attr": "properties", "code": "This field is required.", "detail": "required",
           "type": "validation_error"}


async def settle(server: FakePostHog) -> None:
    """Let writes PostHog applies later (``apply_delay``) land."""
    await asyncio.sleep(server.apply_delay + 0.05)


async def test_row01_id_is_uuid_or_integer_else_400(server: FakePostHog) -> None:
    person = server.add_person(["alice"])
    for key in (person.uuid, str(person.id), person.uuid.upper()):
        status, body, _ = await call(server, "GET", f"{PERSONS}{key}/")
        assert status == 200 and body["uuid"] == person.uuid, key
    status, body, _ = await call(server, "GET", f"{PERSONS}alice/")
    assert status == 400 and error(body, "validation_error", "invalid_input",
                                   NOT_A_PERSON_ID.format("alice"))
    for unknown in (str(uuid.uuid4()), "987654"):
        status, body, _ = await call(server, "GET", f"{PERSONS}{unknown}/")
        assert status == 404 and error(body, "invalid_request", "not_found", "Not found.")


async def test_row02_delete_property_on_unknown_or_malformed_person_is_500(server: FakePostHog) -> None:
    for key in (str(uuid.uuid4()), "not-a-person"):
        status, body, _ = await call(server, "POST", f"{PERSONS}{key}/delete_property/",
                                     json={"$unset": "email"})
        assert status == 500 and error(body, "server_error", "error", "A server error occurred.")


async def test_row11_patch_is_202_empty_and_applied_later(server: FakePostHog) -> None:
    person = server.add_person(["bob"], {"plan": "free"})
    for method in ("PATCH", "PUT"):
        status, body, _ = await call(server, method, f"{PERSONS}{person.uuid}/",
                                     json={"properties": {"plan": method}})
        assert (status, body) == (202, None)
    assert person.properties == {"plan": "free"}  # not yet: PostHog sends a $set event
    await settle(server)
    assert person.properties == {"plan": "PUT"}
    status, body, _ = await call(server, "PATCH", f"{PERSONS}{person.uuid}/", json={"name": "x"})
    assert (status, body) == (400, SWAPPED)
    status, body, _ = await call(server, "PATCH", f"{PERSONS}{uuid.uuid4()}/", json={})
    assert (status, body) == (400, SWAPPED)  # the body is checked before the id


async def test_row12_update_property_202_and_swapped_400(server: FakePostHog) -> None:
    person = server.add_person(["carol"], {})
    base = f"{PERSONS}{person.uuid}/update_property/"
    assert (await call(server, "POST", base, json={"key": "plan", "value": "pro"}))[:2] == (202, None)
    status, body, _ = await call(server, "POST", base, json={"key": "plan"})
    assert (status, body) == (400, {**SWAPPED, "attr": "value"})
    status, body, _ = await call(server, "POST", base, json={"value": 1})
    assert (status, body) == (400, {**SWAPPED, "attr": "key"})
    await settle(server)
    assert person.properties == {"plan": "pro"}


async def test_row13_delete_property_201_key_or_list(server: FakePostHog) -> None:
    person = server.add_person(["dave"], {"a": 1, "b": 2, "c": 3})
    base = f"{PERSONS}{person.uuid}/delete_property/"
    assert (await call(server, "POST", base, json={"$unset": "a"}))[:2] == (201, {"success": True})
    assert (await call(server, "POST", base, json={"$unset": ["b", "c"]}))[:2] == (201, {"success": True})
    status, body, _ = await call(server, "POST", base, json={"$unset": [str(i) for i in range(1001)]})
    assert status == 400 and body["attr"] == "$unset"
    status, body, _ = await call(server, "POST", base, json={"$unset": []})
    assert status == 400 and body["detail"] == (
        "Provide '$unset' as a property key or a non-empty list of property keys.")
    await settle(server)
    assert person.properties == {}


async def test_row14_batch_by_distinct_ids(server: FakePostHog) -> None:
    server.add_person([f"many-{i}" for i in range(15)])
    server.seed_persons(300)
    path = PERSONS + "batch_by_distinct_ids/"
    junks: tuple[dict[str, Any], ...] = ({"distinct_ids": "user-1"}, {"distinct_ids": []}, {})
    for junk in junks:
        assert (await call(server, "POST", path, json=junk))[:2] == (200, {"results": {}})
    _, body, _ = await call(server, "POST", path, json={"distinct_ids": ["many-3"]})
    assert len(body["results"]["many-3"]["distinct_ids"]) == 10  # MinimalPerson
    _, body, _ = await call(server, "POST", path,
                            json={"distinct_ids": [f"user-{i}" for i in range(2, 302)]})
    assert len(body["results"]) == 200 and "user-202" not in body["results"]


async def test_row15_batch_by_uuids_cut_to_200_before_validation(server: FakePostHog) -> None:
    server.seed_persons(3)
    uuids = list(server.project().persons)
    path = PERSONS + "batch_by_uuids/"
    padding = [str(uuid.uuid4()) for _ in range(200)]
    status, body, _ = await call(server, "POST", path, json={"uuids": [*padding, "bad"]})
    assert (status, body) == (200, {"results": {}})  # "bad" is number 201: never seen
    status, body, _ = await call(server, "POST", path, json={"uuids": [uuids[0], "bad"]})
    assert status == 400 and error(body, "validation_error", "invalid_input",
                                   "One or more UUIDs are invalid.")
    _, body, _ = await call(server, "POST", path, json={"uuids": [uuids[1].upper()]})
    assert list(body["results"]) == [uuids[1]]
    assert (await call(server, "POST", path, json={"uuids": "x"}))[:2] == (200, {"results": {}})


async def test_row16_deletion_status(server: FakePostHog) -> None:
    server.seed_persons(3)
    first, second, third = server.project().ordered()[:3]
    for person in (first, second, third):
        await call(server, "DELETE", f"{PERSONS}{person.uuid}/", params={"delete_events": ""})
        await asyncio.sleep(0.002)
    path = PERSONS + "deletion_status/"
    _, body, _ = await call(server, "GET", path, params={"limit": "2"})
    assert [r["person_uuid"] for r in body["results"]] == [third.uuid, second.uuid]
    assert body["count"] == 3 and body["next"] and body["previous"] is None
    _, body, _ = await call(server, "GET", path, params={"limit": "2", "offset": "1"})
    assert body["next"] is None  # offset + limit >= count
    status, body, _ = await call(server, "GET", path, params={"person_uuid": "nope"})
    assert status == 400 and error(body, "validation_error", "invalid_input", "Must be a valid UUID.",
                                   "person_uuid")
    server.verify_event_deletions()
    _, body, _ = await call(server, "GET", path, params={"status": "completed"})
    assert body["count"] == 3 and body["results"][0]["delete_verified_at"]


async def test_row17_split_validates_and_runs_later(server: FakePostHog) -> None:
    person = server.add_person(["p1", "p2", "p3"])
    base = f"{PERSONS}{person.uuid}/split/"
    cases = [({"distinct_ids_to_split": "p2"}, "must be a list of strings", "distinct_ids_to_split"),
             ({"distinct_ids_to_split": []}, "must not be empty", "distinct_ids_to_split"),
             ({"distinct_ids_to_split": ["p2"], "main_distinct_id": "p1"},
              "main_distinct_id cannot be combined with distinct_ids_to_split", None),
             ({"distinct_ids_to_split": ["zz", "p2", "aa"]}, "not on this person: ['aa', 'zz']",
              "distinct_ids_to_split")]
    for payload, detail, attr in cases:
        status, body, _ = await call(server, "POST", base, json=payload)
        assert status == 400 and (body["detail"], body["attr"]) == (detail, attr)
    status, body, _ = await call(server, "POST", base, json={"distinct_ids_to_split": ["p3"]})
    assert (status, body) == (201, {"success": True})
    assert server.project().by_distinct_id["p3"] is person  # runs later, in a task
    await settle(server)
    assert server.project().by_distinct_id["p3"] is not person and person.distinct_ids == ["p1", "p2"]


async def test_row18_properties_at_time_error_bodies(server: FakePostHog) -> None:
    server.add_person(["eve"], {"email": "eve@x.io"})
    path = PERSONS + "properties_at_time/"
    stamp = "2023-06-15T14:30:00Z"
    cases = [
        ({"distinct_id": "eve", "person_id": "x", "timestamp": stamp}, 400,
         "Cannot provide both distinct_id and person_id - choose one"),
        ({"timestamp": stamp}, 400, "Must provide either distinct_id or person_id parameter"),
        ({"distinct_id": "eve"}, 400, "timestamp parameter is required (ISO format: 2023-06-15T14:30:00Z)"),
        ({"distinct_id": "eve", "timestamp": "yesterday"}, 400,
         "Invalid timestamp format. Use ISO format like 2023-06-15T14:30:00Z"),
        ({"distinct_id": "ghost", "timestamp": stamp}, 404, "Person with distinct_id 'ghost' not found"),
    ]
    for params, status, message in cases:
        assert (await call(server, "GET", path, params=params))[:2] == (status, {"error": message})
    _, body, _ = await call(server, "GET", path, params={"distinct_id": "eve", "timestamp": stamp,
                                                         "include_set_once": "TRUE", "debug": "true"})
    assert body["point_in_time_metadata"]["include_set_once"] is True and "debug" not in body
    _, body, _ = await call(server, "GET", path, params={"distinct_id": "eve", "timestamp": stamp,
                                                         "include_set_once": "1"})
    assert body["point_in_time_metadata"]["include_set_once"] is False


async def test_row19_reset_person_distinct_id(server: FakePostHog) -> None:
    server.add_person(["frank"])
    path = PERSONS + "reset_person_distinct_id/"
    assert (await call(server, "POST", path, json={"distinct_id": "frank"}))[:2] == (202, None)  # live: fine
    for payload in ({}, {"distinct_id": ""}, {"distinct_id": 5}):
        status, body, _ = await call(server, "POST", path, json=payload)
        assert status == 400 and error(body, "validation_error", "invalid_input", "distinct_id is required")


async def test_row20_values_without_key(server: FakePostHog) -> None:
    server.seed_persons(4)
    for params in (None, {"key": ""}, {"key": "$virt_initial_channel_type"}):
        status, body, _ = await call(server, "GET", PERSONS + "values/", params=params)
        assert (status, body) == (200, {"results": [], "refreshing": False})
    _, body, _ = await call(server, "GET", PERSONS + "values/", params={"key": "plan"})
    assert {r["name"] for r in body["results"]} == {"free", "pro", "team", "enterprise"}


async def test_row21_refused_to_personal_api_keys(server: FakePostHog) -> None:
    """properties_timeline, the legacy "actors" endpoints and domain-connect declare no scope."""
    person = server.add_person(["gina"])
    refused = [("GET", f"{PERSONS}{person.uuid}/properties_timeline/"), ("GET", PERSONS + "funnel/"),
               ("POST", PERSONS + "funnel/"), ("GET", PERSONS + "funnel/correlation/"),
               ("POST", PERSONS + "funnel/correlation/"), ("GET", PERSONS + "trends/"),
               ("GET", PERSONS + "lifecycle/"), ("GET", PERSONS + "stickiness/"),
               ("GET", "/api/projects/1/integrations/domain-connect/check/?domain=example.com")]
    for method, path in refused:
        status, body, _ = await call(server, method, path, json={} if method == "POST" else None)
        assert status == 403 and error(body, "authentication_error", "permission_denied",
                                       "This action does not support personal API key access"), path


async def test_row24_list_cap_ends_pagination(server: FakePostHog) -> None:
    server.seed_persons(50_005)
    status, body, _ = await call(server, "GET", PERSONS, params={"limit": "60000"})
    assert status == 200 and len(body["results"]) == 50_000 and body["next"] is None


async def test_row25_previous_keeps_url_at_offset_zero(server: FakePostHog) -> None:
    server.seed_persons(250)
    _, page2, _ = await call(server, "GET", PERSONS + "?limit=100&offset=100")
    assert page2["previous"] == f"{server.url}{PERSONS}?limit=100&offset=100"  # the quirk
    assert page2["next"] == f"{server.url}{PERSONS}?limit=100&offset=200"
    _, page3, _ = await call(server, "GET", PERSONS + "?offset=200&limit=100")
    assert page3["previous"] == f"{server.url}{PERSONS}?offset=100&limit=100"
    assert page3["next"] is None and len(page3["results"]) == 50
    _, first, _ = await call(server, "GET", PERSONS + "?limit=100")
    assert first["next"] == f"{server.url}{PERSONS}?limit=100&offset=100" and "count" not in first
    _, total, _ = await call(server, "GET", PERSONS, params={"include_total": "no"})
    assert total["count"] == 250  # present means true, whatever the value


async def test_row23_distinct_id_filter(server: FakePostHog) -> None:
    server.seed_persons(10)
    _, hit, _ = await call(server, "GET", PERSONS, params={"distinct_id": "user-3", "include_total": ""})
    assert [p["distinct_ids"] for p in hit["results"]] == [["user-3", "anon-3"]]
    assert hit["count"] == 1 and hit["next"] is None
    _, miss, _ = await call(server, "GET", PERSONS, params={"distinct_id": "nobody"})
    assert miss["results"] == [] and miss["next"] is None


async def test_projects_hold_their_own_persons_with_shared_distinct_ids() -> None:
    """A distinct id is unique per project (team), not across them: each project has its own
    person for it, with its own UUID, and deleting one leaves the others."""
    async with FakePostHog(project_ids=(1, 2, 3), rate_limits=None) as server:
        server.seed_persons_across(10, overlap=0.3)
        shared = server.persons_with("user-3")
        assert sorted(shared) == [1, 2, 3] and len({p.uuid for p in shared.values()}) == 3
        assert server.persons_with("anon-3").keys() == shared.keys()  # its second id too
        assert list(server.persons_with("p2-user-4")) == [2]
        assert server.persons_with("p2-anon-6") and not server.persons_with("anon-6")
        status, body, _ = await call(server, "POST", "/api/projects/2/persons/bulk_delete/",
                                     key=server.api_key, json={"distinct_ids": ["user-3"]})
        assert status == 202 and body["persons_deleted"] == 1
        assert sorted(server.persons_with("user-3")) == [1, 3]
        with pytest.raises(ValueError):
            server.seed_persons_across(1)  # projects must be empty so shared ids line up
        server.add_person(["alice"], project_id=1)
        server.add_person(["alice"], project_id=3)
        assert sorted(server.persons_with("alice")) == [1, 3]
