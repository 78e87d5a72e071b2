"""One case per endpoint: the exact method, path (both families), query and JSON body sent,
and a realistic response decoded into its model. Uses aioresponses to see the wire request."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

import pytest
from aioresponses import aioresponses
from yarl import URL

from posthog_async import (
    AsyncPostHog, BulkDeleteResult, DeletionStatus, Page, Person, PersonAtTime,
    PropertyDefinition, PropertyValues, ScopedPostHog, SharingConfiguration, SharingPassword,
    SplitResult, Subscription, User,
)

from .conftest import API_KEY

HOST = "https://us.posthog.com"
UUID = "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"
PERSON = {
    "id": 12, "uuid": UUID, "name": "alice@acme.com", "distinct_ids": ["alice", "anon-1"],
    "properties": {"email": "alice@acme.com", "plan": "pro"},
    "created_at": "2024-08-24T14:15:22Z", "last_seen_at": None, "some_new_field": {"x": 1},
}
PAGE = {"next": None, "previous": None, "results": [PERSON]}
BULK = {"persons_found": 2, "persons_deleted": 2, "events_queued_for_deletion": 2,
        "recordings_queued_for_deletion": 0, "deletion_errors": []}
DEF = {"id": "497f6eca-6276-4993-bfeb-53cbbbba6f08", "name": "plan", "description": "Plan",
       "tags": [], "is_numerical": False, "property_type": "String", "hidden": False,
       "updated_by": {"id": 1, "uuid": UUID, "email": "a@acme.com"}}
SUB = {"id": 7, "insight": 42, "target_type": "email", "target_value": "ops@acme.com",
       "frequency": "weekly", "interval": 1, "start_date": "2026-12-01T09:00:00Z", "deleted": False}
USER = {"uuid": UUID, "id": 1, "email": "owner@acme.com", "first_name": "O", "is_staff": False}
SHARING = {"created_at": "2026-01-01T00:00:00Z", "enabled": True, "access_token": "tok",
           "share_passwords": []}

Call = Callable[[ScopedPostHog], Awaitable[Any]]

# (name, call, method, path under the family, query, body, status, response, expected type)
CASES: list[tuple[str, Call, str, str, dict[str, str], Any, int, Any, Any]] = [
    ("persons.list", lambda p: p.persons.list(search="alice", limit=10, properties=[{"key": "plan", "value": "pro"}]).first_page(),
     "GET", "persons/", {"search": "alice", "limit": "10", "properties": '[{"key":"plan","value":"pro"}]'}, None, 200, PAGE, Page),
    ("persons.list_csv", lambda p: p.persons.list_csv(email="a@b.c"),
     "GET", "persons/", {"email": "a@b.c", "format": "csv"}, None, 200, "id,uuid\n1,x\n", str),
    ("persons.retrieve", lambda p: p.persons.retrieve(UUID), "GET", f"persons/{UUID}/", {}, None, 200, PERSON, Person),
    ("persons.update", lambda p: p.persons.update(UUID, properties={"plan": "team"}),
     "PATCH", f"persons/{UUID}/", {}, {"properties": {"plan": "team"}}, 200, PERSON, Person),
    ("persons.delete", lambda p: p.persons.delete(UUID, delete_events=True),
     "DELETE", f"persons/{UUID}/", {"delete_events": "true", "delete_recordings": "false", "keep_person": "false"}, None, 202, None, type(None)),
    ("persons.update_property", lambda p: p.persons.update_property(UUID, key="plan", value="pro"),
     "POST", f"persons/{UUID}/update_property/", {}, {"key": "plan", "value": "pro"}, 202, None, type(None)),
    ("persons.delete_property", lambda p: p.persons.delete_property(UUID, key="phone"),
     "POST", f"persons/{UUID}/delete_property/", {}, {"$unset": "phone"}, 202, None, type(None)),
    ("persons.split", lambda p: p.persons.split(UUID, main_distinct_id="alice"),
     "POST", f"persons/{UUID}/split/", {}, {"main_distinct_id": "alice"}, 201, {"success": True}, SplitResult),
    ("persons.split(list)", lambda p: p.persons.split(UUID, distinct_ids_to_split=["anon-1"]),
     "POST", f"persons/{UUID}/split/", {}, {"distinct_ids_to_split": ["anon-1"]}, 201, {"success": True}, SplitResult),
    ("persons.activity", lambda p: p.persons.activity(UUID), "GET", f"persons/{UUID}/activity/", {}, None, 200, {"results": []}, dict),
    ("persons.all_activity", lambda p: p.persons.all_activity(), "GET", "persons/activity/", {}, None, 200, {"results": []}, dict),
    ("persons.properties_timeline", lambda p: p.persons.properties_timeline(UUID, date_from="-7d"),
     "GET", f"persons/{UUID}/properties_timeline/", {"date_from": "-7d"}, None, 200, {"points": []}, dict),
    ("persons.bulk_delete", lambda p: p.persons.bulk_delete(distinct_ids=["a", "b"], delete_events=True),
     "POST", "persons/bulk_delete/", {}, {"delete_events": True, "delete_recordings": False, "keep_person": False, "distinct_ids": ["a", "b"]}, 202, BULK, BulkDeleteResult),
    ("persons.bulk_delete(ids)", lambda p: p.persons.bulk_delete(ids=[UUID]),
     "POST", "persons/bulk_delete/", {}, {"delete_events": False, "delete_recordings": False, "keep_person": False, "ids": [UUID]},
     202, {"persons_found": 1, "persons_deleted": 0, "persons_queued_for_deletion": 1, "events_queued_for_deletion": 0,
           "recordings_queued_for_deletion": 0, "deletion_errors": [{"person_uuid": UUID, "step": "queue"}]}, BulkDeleteResult),
    ("persons.batch_by_distinct_ids", lambda p: p.persons.batch_by_distinct_ids(["alice", "nobody"]),
     "POST", "persons/batch_by_distinct_ids/", {}, {"distinct_ids": ["alice", "nobody"]}, 200, {"results": {"alice": PERSON}}, dict),
    ("persons.batch_by_uuids", lambda p: p.persons.batch_by_uuids([UUID]),
     "POST", "persons/batch_by_uuids/", {}, {"uuids": [UUID]}, 200, {"results": {UUID: PERSON}}, dict),
    ("persons.cohorts", lambda p: p.persons.cohorts(person_id=UUID), "GET", "persons/cohorts/", {"person_id": UUID}, None, 200, {"results": []}, dict),
    ("persons.values", lambda p: p.persons.values(key="plan", value="p"),
     "GET", "persons/values/", {"key": "plan", "value": "p"}, None, 200, {"results": [{"name": "pro", "count": 3}], "refreshing": False}, PropertyValues),
    ("persons.deletion_status", lambda p: p.persons.deletion_status(status="pending", person_uuid=UUID).first_page(),
     "GET", "persons/deletion_status/", {"status": "pending", "person_uuid": UUID}, None, 200,
     {"count": 1, "next": None, "previous": None, "results": [{"person_uuid": UUID, "created_at": "2026-01-01T00:00:00Z", "status": "pending", "delete_verified_at": None}]}, Page),
    ("persons.reset_person_distinct_id", lambda p: p.persons.reset_person_distinct_id("alice"),
     "POST", "persons/reset_person_distinct_id/", {}, {"distinct_id": "alice"}, 202, None, type(None)),
    ("persons.properties_at_time", lambda p: p.persons.properties_at_time(distinct_id="alice", timestamp="2026-01-01T00:00:00Z", include_set_once=True),
     "GET", "persons/properties_at_time/", {"distinct_id": "alice", "timestamp": "2026-01-01T00:00:00Z", "include_set_once": "true"}, None, 200,
     {**PERSON, "point_in_time_metadata": {"queried_timestamp": "2026-01-01T00:00:00Z", "include_set_once": True, "distinct_id_used": "alice",
      "person_id_used": None, "query_mode": "distinct_id", "distinct_ids_queried": ["alice"], "distinct_ids_count": 1}}, PersonAtTime),
    ("persons.funnel(GET)", lambda p: p.persons.funnel(funnel_step=2), "GET", "persons/funnel/", {"funnel_step": "2"}, None, 200, {"results": [], "next": None}, dict),
    ("persons.funnel(POST)", lambda p: p.persons.funnel(body={"events": [{"id": "$pageview"}]}),
     "POST", "persons/funnel/", {}, {"events": [{"id": "$pageview"}]}, 200, {"results": []}, dict),
    ("persons.funnel_correlation(GET)", lambda p: p.persons.funnel_correlation(funnel_step=1),
     "GET", "persons/funnel/correlation/", {"funnel_step": "1"}, None, 200, {"results": []}, dict),
    ("persons.funnel_correlation(POST)", lambda p: p.persons.funnel_correlation(body={"funnel_correlation_person_entity": {}}),
     "POST", "persons/funnel/correlation/", {}, {"funnel_correlation_person_entity": {}}, 200, {"results": []}, dict),
    ("persons.trends", lambda p: p.persons.trends(entity_id="$pageview", format="csv"),
     "GET", "persons/trends/", {"entity_id": "$pageview", "format": "csv"}, None, 200, "a,b\n", str),
    ("persons.lifecycle", lambda p: p.persons.lifecycle(target_date="2026-01-01", lifecycle_type="new"),
     "GET", "persons/lifecycle/", {"target_date": "2026-01-01", "lifecycle_type": "new"}, None, 200, {"results": []}, dict),
    ("persons.stickiness", lambda p: p.persons.stickiness(stickiness_days=3),
     "GET", "persons/stickiness/", {"stickiness_days": "3"}, None, 200, {"results": []}, dict),
    ("property_definitions.list", lambda p: p.property_definitions.list(type="person", search="pl", event_names=["$pageview"], exclude_hidden=True).first_page(),
     "GET", "property_definitions/", {"type": "person", "search": "pl", "event_names": '["$pageview"]', "exclude_hidden": "true"}, None, 200,
     {"count": 1, "next": None, "previous": None, "results": [DEF]}, Page),
    ("property_definitions.retrieve", lambda p: p.property_definitions.retrieve(DEF["id"]),
     "GET", f"property_definitions/{DEF['id']}/", {}, None, 200, DEF, PropertyDefinition),
    ("property_definitions.update", lambda p: p.property_definitions.update(DEF["id"], description="Plan name"),
     "PATCH", f"property_definitions/{DEF['id']}/", {}, {"description": "Plan name"}, 200, DEF, PropertyDefinition),
    ("property_definitions.delete", lambda p: p.property_definitions.delete(DEF["id"]),
     "DELETE", f"property_definitions/{DEF['id']}/", {}, None, 204, None, type(None)),
    ("property_definitions.seen_together", lambda p: p.property_definitions.seen_together(event_names=["$pageview"], property_name="$browser"),
     "GET", "property_definitions/seen_together/", {"event_names": '["$pageview"]', "property_name": "$browser"}, None, 200, {"$pageview": True}, dict),
    ("subscriptions.list", lambda p: p.subscriptions.list(insight=42).first_page(),
     "GET", "subscriptions/", {"insight": "42"}, None, 200, {"count": 1, "next": None, "previous": None, "results": [SUB]}, Page),
    ("subscriptions.create", lambda p: p.subscriptions.create(insight=42, target_type="email", target_value="ops@acme.com", frequency="weekly", start_date="2026-12-01T09:00:00Z"),
     "POST", "subscriptions/", {}, {"target_type": "email", "target_value": "ops@acme.com", "frequency": "weekly", "start_date": "2026-12-01T09:00:00Z", "insight": 42}, 201, SUB, Subscription),
    ("subscriptions.retrieve", lambda p: p.subscriptions.retrieve(7), "GET", "subscriptions/7/", {}, None, 200, SUB, Subscription),
    ("subscriptions.update", lambda p: p.subscriptions.update(7, frequency="daily"),
     "PATCH", "subscriptions/7/", {}, {"frequency": "daily"}, 200, SUB, Subscription),
    ("subscriptions.delete", lambda p: p.subscriptions.delete(7),
     "PATCH", "subscriptions/7/", {}, {"deleted": True}, 200, {**SUB, "deleted": True}, Subscription),
    ("session_recordings.sharing", lambda p: p.session_recordings.sharing("rec-1"),
     "GET", "session_recordings/rec-1/sharing/", {}, None, 200, SHARING, SharingConfiguration),
    ("session_recordings.create_sharing_password", lambda p: p.session_recordings.create_sharing_password("rec-1", note="for legal"),
     "POST", "session_recordings/rec-1/sharing/passwords/", {}, {"note": "for legal"}, 200,
     {"id": "pw1", "note": "for legal", "password": "s3cret"}, SharingPassword),
    ("session_recordings.delete_sharing_password", lambda p: p.session_recordings.delete_sharing_password("rec-1", "pw1"),
     "DELETE", "session_recordings/rec-1/sharing/passwords/pw1/", {}, None, 204, None, type(None)),
    ("session_recordings.refresh_sharing", lambda p: p.session_recordings.refresh_sharing("rec-1"),
     "POST", "session_recordings/rec-1/sharing/refresh/", {}, {}, 200, SHARING, SharingConfiguration),
    ("integrations.domain_connect_check", lambda p: p.integrations.domain_connect_check(domain="acme.com"),
     "GET", "integrations/domain-connect/check/", {"domain": "acme.com"}, None, 200, {"supported": False}, dict),
]


@pytest.mark.parametrize("family", ["projects", "environments"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_endpoint_sends_exact_request(case: tuple[Any, ...], family: str) -> None:
    name, call, method, path, query, body, status, response, expected = case
    url = URL(f"{HOST}/api/{family}/77/{path}").with_query(query)
    async with AsyncPostHog(API_KEY, project_id=5, rate_limits=None) as ph:
        view = ph.project(77) if family == "projects" else ph.environment(77)
        with aioresponses() as m:
            if isinstance(response, str):
                m.add(url, method, status=status, body=response, content_type="text/csv")
            elif response is None:
                m.add(url, method, status=status, body=b"")
            else:
                m.add(url, method, status=status, payload=response)
            result = await call(view)
            [(key, calls)] = m.requests.items()
            sent = calls[0].kwargs
    assert key[0] == method and key[1].path == url.path  # trailing slash included
    assert isinstance(result, expected), (name, result)
    assert dict(sent["params"] or {}) == query
    assert (None if sent["data"] is None else json.loads(sent["data"])) == body
    assert sent["allow_redirects"] is False
    if isinstance(result, Page):
        assert len(result.results) == 1
    if name == "persons.bulk_delete(ids)":
        assert result.persons_queued_for_deletion == 1 and result.deletion_errors[0].step == "queue"
    if name == "persons.batch_by_distinct_ids":
        assert isinstance(result["alice"], Person) and "nobody" not in result


@pytest.mark.parametrize("uuid", [None, "@me"])
async def test_users(uuid: str | None) -> None:
    async with AsyncPostHog(API_KEY, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get(f"{HOST}/api/users/@me/", payload=USER)
            m.get(f"{HOST}/api/users/?email=owner%40acme.com&is_staff=false",
                  payload={"count": 1, "next": None, "previous": None, "results": [USER]})
            me = await ph.users.retrieve() if uuid is None else await ph.users.retrieve(uuid)
            users = await ph.users.list(email="owner@acme.com", is_staff=False)
    assert isinstance(me, User) and me.email == "owner@acme.com"
    assert isinstance(users.results[0], User)


async def test_default_project_and_per_call_override() -> None:
    async with AsyncPostHog(API_KEY, project_id=5, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get(f"{HOST}/api/projects/5/persons/{UUID}/", payload=PERSON)
            m.get(f"{HOST}/api/projects/9/persons/{UUID}/", payload=PERSON)
            await ph.persons.retrieve(UUID)
            await ph.persons.retrieve(UUID, project_id=9)
            assert len(m.requests) == 2


async def test_person_model_tolerates_new_fields() -> None:
    person = Person.__struct_config__  # noqa: F841 - models ignore unknown fields by default
    from posthog_async._pagination import decoder_for

    decoded = decoder_for(Person).decode(json.dumps(PERSON).encode())
    assert decoded.uuid == UUID and decoded.created_at is not None
    status = decoder_for(DeletionStatus).decode(b'{"person_uuid": "x", "brand_new": 1}')
    assert status.person_uuid == "x"


async def test_stream_csv(ph: AsyncPostHog, server: Any) -> None:
    server.seed_persons(250)
    chunks = [c async for c in ph.persons.stream_csv(limit=250)]
    text = b"".join(chunks).decode()
    assert text.splitlines()[0].startswith("id,uuid,name,distinct_ids")
    assert len(text.splitlines()) == 251
