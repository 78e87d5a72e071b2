"""One case per endpoint: the exact method, path (both families), query and JSON body sent, the
answer decoded into its model, and every request checked against PostHog's published schema.

aioresponses shows the wire request; the server's behaviour itself is pinned in test_fake_*.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses

from posthog_async import (
    AsyncPostHog,
    BulkDeleteResult,
    DeletionStatus,
    Page,
    Person,
    PersonAtTime,
    PropertyDefinition,
    PropertyValues,
    ScopedPostHog,
    SharingConfiguration,
    SharingPassword,
    Subscription,
    User,
)

from ._schema import check_request
from .conftest import API_KEY

HOST = "https://us.posthog.com"
UUID = "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"
PERSON = {
    "id": 12, "uuid": UUID, "name": "alice@acme.com", "distinct_ids": ["alice", "anon-1"],
    "properties": {"email": "alice@acme.com", "plan": "pro"},
    "created_at": "2024-08-24T14:15:22Z", "last_seen_at": None, "some_new_field": {"x": 1},
}
PAGE = {"next": None, "previous": None, "results": [PERSON]}
BULK = {"persons_found": 2, "persons_deleted": 2, "persons_queued_for_deletion": 0,
        "events_queued_for_deletion": True, "recordings_queued_for_deletion": False,
        "deletion_errors": []}
DEF = {"id": "497f6eca-6276-4993-bfeb-53cbbbba6f08", "name": "plan", "description": "Plan",
       "tags": [], "is_numerical": False, "property_type": "String", "hidden": False,
       "updated_by": {"id": 1, "uuid": UUID, "email": "a@acme.com"}}
SUB = {"id": 7, "insight": 42, "target_type": "email", "target_value": "ops@acme.com",
       "frequency": "weekly", "interval": 1, "start_date": "2026-12-01T09:00:00Z", "deleted": False}
USER = {"uuid": UUID, "id": 1, "email": "owner@acme.com", "first_name": "O", "is_staff": False}
SHARING = {"created_at": None, "enabled": False, "access_token": "tok", "settings": None,
           "password_required": True, "share_passwords": [
               {"id": 3, "created_at": "2026-01-01T00:00:00Z", "note": None,
                "created_by_email": "o@acme.com", "is_active": True}]}
PASSWORD = {"id": 4, "password": "generated-once", "note": "for legal",
            "created_at": "2026-01-01T00:00:00Z", "created_by_email": "o@acme.com"}

Call = Callable[[ScopedPostHog], Awaitable[Any]]
Query = list[tuple[str, str]]


def case(name: str, call: Call, method: str, path: str, query: Query, body: Any, status: int,
         answer: Any, expected: Any) -> tuple[Any, ...]:
    return (name, call, method, path, query, body, status, answer, expected)


CASES = [
    case("persons.list", lambda p: p.persons.list(search="alice", limit=10, include_total=True,
                                                  properties=[{"key": "plan", "value": "pro"}]).first_page(),
         "GET", "persons/", [("search", "alice"), ("properties", '[{"key":"plan","value":"pro"}]'),
                             ("include_total", "true"), ("limit", "10")], None, 200, PAGE, Page),
    case("persons.list_csv", lambda p: p.persons.list_csv(email="a@b.c"),
         "GET", "persons/", [("email", "a@b.c"), ("format", "csv")], None, 200, "id,uuid\n1,x\n", str),
    case("persons.retrieve", lambda p: p.persons.retrieve(UUID),
         "GET", f"persons/{UUID}/", [], None, 200, PERSON, Person),
    case("persons.retrieve(int id)", lambda p: p.persons.retrieve(12),
         "GET", "persons/12/", [], None, 200, PERSON, Person),
    case("persons.update", lambda p: p.persons.update(UUID, properties={"plan": "team"}),
         "PATCH", f"persons/{UUID}/", [], {"properties": {"plan": "team"}}, 202, None, type(None)),
    case("persons.delete", lambda p: p.persons.delete(UUID),
         "DELETE", f"persons/{UUID}/", [], None, 202, None, type(None)),
    case("persons.delete(events)", lambda p: p.persons.delete(UUID, delete_events=True),
         "DELETE", f"persons/{UUID}/", [("delete_events", "true")], None, 202, None, type(None)),
    case("persons.update_property", lambda p: p.persons.update_property(UUID, key="plan", value="pro"),
         "POST", f"persons/{UUID}/update_property/", [], {"key": "plan", "value": "pro"}, 202, None, type(None)),
    case("persons.delete_property", lambda p: p.persons.delete_property(UUID, key="phone"),
         "POST", f"persons/{UUID}/delete_property/", [], {"$unset": "phone"}, 201, {"success": True}, type(None)),
    case("persons.delete_property(list)", lambda p: p.persons.delete_property(UUID, key=["a", "b"]),
         "POST", f"persons/{UUID}/delete_property/", [], {"$unset": ["a", "b"]}, 201, {"success": True}, type(None)),
    case("persons.split", lambda p: p.persons.split(UUID, main_distinct_id="alice"),
         "POST", f"persons/{UUID}/split/", [], {"main_distinct_id": "alice"}, 201, {"success": True}, type(None)),
    case("persons.split(list)", lambda p: p.persons.split(UUID, distinct_ids_to_split=["anon-1"]),
         "POST", f"persons/{UUID}/split/", [], {"distinct_ids_to_split": ["anon-1"]}, 201, {"success": True}, type(None)),
    case("persons.activity", lambda p: p.persons.activity(UUID),
         "GET", f"persons/{UUID}/activity/", [], None, 200, {"results": []}, dict),
    case("persons.all_activity", lambda p: p.persons.all_activity(),
         "GET", "persons/activity/", [], None, 200, {"results": []}, dict),
    case("persons.properties_timeline", lambda p: p.persons.properties_timeline(UUID, date_from="-7d"),
         "GET", f"persons/{UUID}/properties_timeline/", [("date_from", "-7d")], None, 200, {"points": []}, dict),
    case("persons.bulk_delete", lambda p: p.persons.bulk_delete(distinct_ids=["a", "b"], delete_events=True),
         "POST", "persons/bulk_delete/", [], {"distinct_ids": ["a", "b"], "delete_events": True,
                                             "delete_recordings": False, "keep_person": False}, 202, BULK, BulkDeleteResult),
    case("persons.bulk_delete(ids)", lambda p: p.persons.bulk_delete(ids=[UUID.upper()]),
         "POST", "persons/bulk_delete/", [], {"ids": [UUID], "delete_events": False, "delete_recordings": False,
                                             "keep_person": False}, 202,
         {**BULK, "persons_deleted": 0, "persons_queued_for_deletion": 1,
          "deletion_errors": [{"person_uuid": UUID, "step": "delete_postgres"}]}, BulkDeleteResult),
    case("persons.batch_by_distinct_ids", lambda p: p.persons.batch_by_distinct_ids(["alice", "nobody"]),
         "POST", "persons/batch_by_distinct_ids/", [], {"distinct_ids": ["alice", "nobody"]}, 200,
         {"results": {"alice": PERSON}}, dict),
    case("persons.batch_by_uuids", lambda p: p.persons.batch_by_uuids([UUID]),
         "POST", "persons/batch_by_uuids/", [], {"uuids": [UUID]}, 200, {"results": {UUID: PERSON}}, dict),
    case("persons.cohorts", lambda p: p.persons.cohorts(person_id=UUID),
         "GET", "persons/cohorts/", [("person_id", UUID)], None, 200, {"results": []}, dict),
    case("persons.values", lambda p: p.persons.values(key="plan", value="p"),
         "GET", "persons/values/", [("key", "plan"), ("value", "p")], None, 200,
         {"results": [{"name": "pro", "count": 3}], "refreshing": False}, PropertyValues),
    case("persons.deletion_status", lambda p: p.persons.deletion_status(status="pending", person_uuid=UUID).first_page(),
         "GET", "persons/deletion_status/", [("status", "pending"), ("person_uuid", UUID)], None, 200,
         {"count": 1, "next": None, "previous": None, "results": [
             {"person_uuid": UUID, "created_at": "2026-01-01T00:00:00Z", "status": "pending",
              "delete_verified_at": None}]}, Page),
    case("persons.reset_person_distinct_id", lambda p: p.persons.reset_person_distinct_id("alice"),
         "POST", "persons/reset_person_distinct_id/", [], {"distinct_id": "alice"}, 202, None, type(None)),
    case("persons.properties_at_time", lambda p: p.persons.properties_at_time(
            distinct_id="alice", timestamp="2026-01-01T00:00:00Z", include_set_once=True),
         "GET", "persons/properties_at_time/", [("timestamp", "2026-01-01T00:00:00Z"), ("distinct_id", "alice"),
                                                ("include_set_once", "true")], None, 200,
         {**PERSON, "point_in_time_metadata": {
             "queried_timestamp": "2026-01-01T00:00:00Z", "include_set_once": True,
             "distinct_id_used": "alice", "person_id_used": None, "query_mode": "distinct_id",
             "distinct_ids_queried": ["alice"], "distinct_ids_count": 1}}, PersonAtTime),
    case("property_definitions.list", lambda p: p.property_definitions.list(
            type="event", search="pl", event_names=["$pageview"], exclude_hidden=True).first_page(),
         "GET", "property_definitions/", [("type", "event"), ("search", "pl"), ("event_names", '["$pageview"]'),
                                          ("exclude_hidden", "true")], None, 200,
         {"count": 1, "next": None, "previous": None, "results": [DEF]}, Page),
    case("property_definitions.retrieve", lambda p: p.property_definitions.retrieve(DEF["id"]),
         "GET", f"property_definitions/{DEF['id']}/", [], None, 200, DEF, PropertyDefinition),
    case("property_definitions.update", lambda p: p.property_definitions.update(DEF["id"], property_type="String"),
         "PATCH", f"property_definitions/{DEF['id']}/", [], {"property_type": "String"}, 200, DEF, PropertyDefinition),
    case("property_definitions.delete", lambda p: p.property_definitions.delete(DEF["id"]),
         "DELETE", f"property_definitions/{DEF['id']}/", [], None, 204, None, type(None)),
    case("property_definitions.seen_together", lambda p: p.property_definitions.seen_together(
            event_names=["$pageview", "$autocapture"], property_name="$browser"),
         "GET", "property_definitions/seen_together/", [("event_names", "$pageview"), ("event_names", "$autocapture"),
                                                        ("property_name", "$browser")], None, 200,
         {"$pageview": True, "$autocapture": False}, dict),
    case("subscriptions.list", lambda p: p.subscriptions.list(insight=42).first_page(),
         "GET", "subscriptions/", [("insight", "42")], None, 200,
         {"count": 1, "next": None, "previous": None, "results": [SUB]}, Page),
    case("subscriptions.create", lambda p: p.subscriptions.create(
            insight=42, target_type="email", target_value="ops@acme.com", frequency="weekly",
            start_date="2026-12-01T09:00:00Z"),
         "POST", "subscriptions/", [], {"target_type": "email", "target_value": "ops@acme.com", "frequency": "weekly",
                                        "start_date": "2026-12-01T09:00:00Z", "interval": 1, "insight": 42},
         201, SUB, Subscription),
    case("subscriptions.create(dashboard)", lambda p: p.subscriptions.create(
            dashboard=3, dashboard_export_insights=[5], target_type="slack", integration_id=9,
            target_value="#ops", frequency="daily", start_date="2026-12-01T09:00:00Z", interval=2),
         "POST", "subscriptions/", [], {"target_type": "slack", "target_value": "#ops", "frequency": "daily",
                                        "start_date": "2026-12-01T09:00:00Z", "interval": 2, "dashboard": 3,
                                        "integration_id": 9, "dashboard_export_insights": [5]},
         201, {**SUB, "insight": None, "dashboard": 3}, Subscription),
    case("subscriptions.retrieve", lambda p: p.subscriptions.retrieve(7),
         "GET", "subscriptions/7/", [], None, 200, SUB, Subscription),
    case("subscriptions.update", lambda p: p.subscriptions.update(7, frequency="daily"),
         "PATCH", "subscriptions/7/", [], {"frequency": "daily"}, 200, SUB, Subscription),
    case("subscriptions.delete", lambda p: p.subscriptions.delete(7),
         "PATCH", "subscriptions/7/", [], {"deleted": True}, 200, {**SUB, "deleted": True}, Subscription),
    case("subscriptions.restore", lambda p: p.subscriptions.restore(7),
         "PATCH", "subscriptions/7/", [], {"deleted": False}, 200, SUB, Subscription),
    case("session_recordings.sharing", lambda p: p.session_recordings.sharing("rec-1"),
         "GET", "session_recordings/rec-1/sharing/", [], None, 200, SHARING, SharingConfiguration),
    case("session_recordings.update_sharing", lambda p: p.session_recordings.update_sharing("rec-1", password_required=True),
         "PATCH", "session_recordings/rec-1/sharing/", [], {"password_required": True}, 200, SHARING,
         SharingConfiguration),
    case("session_recordings.create_sharing_password", lambda p: p.session_recordings.create_sharing_password(
            "rec-1", note="for legal"),
         "POST", "session_recordings/rec-1/sharing/passwords/", [], {"note": "for legal"}, 201, PASSWORD,
         SharingPassword),
    case("session_recordings.delete_sharing_password", lambda p: p.session_recordings.delete_sharing_password("rec-1", 3),
         "DELETE", "session_recordings/rec-1/sharing/passwords/3/", [], None, 204, None, type(None)),
    case("session_recordings.refresh_sharing", lambda p: p.session_recordings.refresh_sharing("rec-1"),
         "POST", "session_recordings/rec-1/sharing/refresh/", [], {}, 200, SHARING, SharingConfiguration),
    case("integrations.domain_connect_check", lambda p: p.integrations.domain_connect_check(domain="acme.com"),
         "GET", "integrations/domain-connect/check/", [("domain", "acme.com")], None, 200,
         {"supported": False, "provider_name": None, "available_providers": []}, dict),
]
#: PostHog serves property definitions under /api/projects/ only.
PROJECTS_ONLY = ("property_definitions",)


@pytest.mark.parametrize("family", ["projects", "environments"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_endpoint_sends_exact_request(case: tuple[Any, ...], family: str) -> None:
    name, call, method, path, query, body, status, answer, expected = case
    sent_family = "projects" if path.startswith(PROJECTS_ONLY) else family
    async with AsyncPostHog(API_KEY, project_id=5, rate_limits=None) as ph:
        view = ph.project(77) if family == "projects" else ph.environment(77)
        with aioresponses() as m:
            pattern = re.compile(rf"^{re.escape(HOST)}/api/{sent_family}/77/{re.escape(path)}(\?.*)?$")
            if isinstance(answer, str):
                m.add(pattern, method, status=status, body=answer, content_type="text/csv")
            elif answer is None:
                m.add(pattern, method, status=status, body=b"")
            else:
                m.add(pattern, method, status=status, payload=answer)
            result = await call(view)
            [(key, calls)] = m.requests.items()
            sent = calls[0].kwargs
    assert key[0] == method
    assert key[1].path == f"/api/{sent_family}/77/{path}"  # trailing slash included
    assert isinstance(result, expected), (name, result)
    params = list(sent["params"] or [])
    assert params == query
    sent_body = None if sent["data"] is None else json.loads(sent["data"])
    assert sent_body == body
    assert sent["allow_redirects"] is False
    check_request(method, key[1].path, params, sent_body)
    if isinstance(result, Page):
        assert len(result.results) == 1
    if name == "persons.bulk_delete(ids)":
        assert result.persons_queued_for_deletion == 1
        assert result.deletion_errors[0].step == "delete_postgres"
    if name == "persons.bulk_delete":
        assert result.events_queued_for_deletion is True and result.counts_known
    if name == "persons.batch_by_distinct_ids":
        assert isinstance(result["alice"], Person) and "nobody" not in result
    if name == "session_recordings.create_sharing_password":
        assert result.id == 4 and result.password == "generated-once"
    if name == "session_recordings.sharing":
        assert result.share_passwords[0].id == 3 and result.created_at is None


async def test_delete_never_sends_a_false_flag() -> None:
    """PostHog sets a DELETE flag when its name is present at all: ``delete_events=false``
    would delete the events (posthog-api-notes.md, Persons, DELETE)."""
    async with AsyncPostHog(API_KEY, project_id=5, rate_limits=None) as ph:
        with aioresponses() as m:
            m.delete(re.compile(r".*/persons/.*"), status=202, body=b"", repeat=True)
            await ph.persons.delete(UUID)
            await ph.persons.delete(UUID, keep_person=True, delete_recordings=True)
            calls = [c.kwargs["params"] for cs in m.requests.values() for c in cs]
    assert calls[0] is None
    assert sorted(calls[1]) == [("delete_recordings", "true"), ("keep_person", "true")]


@pytest.mark.parametrize("uuid", [None, "@me"])
async def test_users(uuid: str | None) -> None:
    async with AsyncPostHog(API_KEY, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get(f"{HOST}/api/users/@me/", payload=USER)
            m.get(f"{HOST}/api/users/?email=owner%40acme.com&is_staff=false",
                  payload={"count": 1, "next": None, "previous": None, "results": [USER]})
            me = await ph.users.retrieve() if uuid is None else await ph.users.retrieve(uuid)
            users = await ph.users.list(email="owner@acme.com", is_staff=False)
            for (method, url), _ in m.requests.items():
                check_request(method, url.path, list(url.query.items()), None)
    assert isinstance(me, User) and me.email == "owner@acme.com"
    assert isinstance(users.results[0], User)


async def test_one_way_to_pick_a_project() -> None:
    async with AsyncPostHog(API_KEY, project_id=5, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get(f"{HOST}/api/projects/5/persons/{UUID}/", payload=PERSON)
            m.get(f"{HOST}/api/projects/9/persons/{UUID}/", payload=PERSON)
            await ph.persons.retrieve(UUID)
            await ph.project(9).persons.retrieve(UUID)
            assert len(m.requests) == 2
        with pytest.raises(TypeError):
            await ph.persons.retrieve(UUID, project_id=9)  # type: ignore[call-arg]


async def test_models_tolerate_new_fields() -> None:
    from posthog_async._models import decode

    decoded = decode(json.dumps(PERSON).encode(), Person)
    assert decoded.uuid == UUID and decoded.created_at is not None
    status = decode(b'{"person_uuid": "x", "brand_new": 1}', DeletionStatus)
    assert status.person_uuid == "x"
