"""The main read and write paths through the public client against the fake server on 127.0.0.1."""

from __future__ import annotations

import pytest

from posthog_async import (
    AsyncPostHog, MethodNotAllowedError, NotFoundError, Person, PropertyDefinition, Subscription,
)
from posthog_async.testing import FakePostHog


async def test_person_lifecycle(server: FakePostHog, ph: AsyncPostHog) -> None:
    alice = server.add_person(["alice", "alice-phone"], {"email": "alice@acme.com", "plan": "free"})
    found = await ph.persons.list(email="alice@acme.com")
    assert [p.uuid for p in found.results] == [alice.uuid]
    person = await ph.persons.retrieve(alice.uuid)
    assert isinstance(person, Person) and person.distinct_ids == ["alice", "alice-phone"]
    updated = await ph.persons.update(alice.uuid, properties={"plan": "pro"})
    assert updated.properties == {"email": "alice@acme.com", "plan": "pro"}
    await ph.persons.update_property(alice.uuid, key="seats", value=5)
    await ph.persons.delete_property(alice.uuid, key="email")
    assert (await ph.persons.retrieve(alice.uuid)).properties == {"plan": "pro", "seats": 5}
    values = await ph.persons.values(key="plan")
    assert [(v.name, v.count) for v in values.results] == [("pro", 1)]
    at = await ph.persons.properties_at_time(distinct_id="alice", timestamp="2026-01-01T00:00:00Z")
    assert at.point_in_time_metadata is not None and at.point_in_time_metadata.query_mode == "distinct_id"
    assert (await ph.persons.split(alice.uuid, main_distinct_id="alice")).success
    by_did = await ph.persons.batch_by_distinct_ids(["alice", "alice-phone", "nobody"])
    assert set(by_did) == {"alice", "alice-phone"} and by_did["alice"].uuid == alice.uuid
    by_uuid = await ph.persons.batch_by_uuids([alice.uuid])
    assert list(by_uuid) == [alice.uuid]
    assert (await ph.persons.cohorts(person_id=alice.uuid)) == {"results": []}
    assert "points" in await ph.persons.properties_timeline(alice.uuid)
    await ph.persons.activity(alice.uuid)
    await ph.persons.delete(alice.uuid, delete_events=True)
    with pytest.raises(NotFoundError):
        await ph.persons.retrieve(alice.uuid)
    statuses = [s async for s in ph.persons.deletion_status(status="pending")]
    assert [s.person_uuid for s in statuses] == [alice.uuid]
    await ph.persons.reset_person_distinct_id("alice")


async def test_environment_family_and_other_projects(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(5, project_id=2)
    env = ph.environment(2)
    assert len((await env.persons.list()).results) == 5
    assert len((await ph.persons.list(project_id=2)).results) == 5
    assert len((await ph.persons.list()).results) == 0
    result = await env.persons.bulk_delete(distinct_ids=["user-1", "user-2"])
    assert result.persons_deleted == 2


async def test_actor_queries_and_csv(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(3)
    assert (await ph.persons.funnel(funnel_step=1))["results"][0]["count"] == 3
    assert "results" in await ph.persons.funnel(body={"events": [{"id": "$pageview"}]})
    assert "results" in await ph.persons.funnel_correlation(body={})
    assert "results" in await ph.persons.trends(entity_id="$pageview")
    assert "results" in await ph.persons.stickiness()
    assert "results" in await ph.persons.lifecycle(target_date="2026-01-01", lifecycle_type="new")
    csv_text = await ph.persons.list_csv()
    assert csv_text.splitlines()[0].startswith("id,uuid") and len(csv_text.splitlines()) == 4
    assert (await ph.persons.trends(format="csv")).startswith("id,uuid")


async def test_property_definitions(ph: AsyncPostHog) -> None:
    person_defs = [d async for d in ph.property_definitions.list(type="person")]
    assert {d.name for d in person_defs} == {"email", "plan"}
    plan = next(d for d in person_defs if d.name == "plan")
    assert isinstance(plan, PropertyDefinition)
    updated = await ph.property_definitions.update(plan.id, description="Billing plan", tags=["billing"])
    assert updated.description == "Billing plan" and updated.tags == ["billing"]
    assert (await ph.property_definitions.retrieve(plan.id)).description == "Billing plan"
    seen = await ph.property_definitions.seen_together(event_names=["$pageview", "signup"],
                                                       property_name="$browser")
    assert seen == {"$pageview": True, "signup": True}
    await ph.property_definitions.delete(plan.id)
    with pytest.raises(NotFoundError):
        await ph.property_definitions.retrieve(plan.id)


async def test_subscriptions_soft_delete(ph: AsyncPostHog) -> None:
    sub = await ph.subscriptions.create(insight=42, target_type="email", target_value="ops@acme.com",
                                        frequency="weekly", start_date="2026-12-01T09:00:00Z")
    assert isinstance(sub, Subscription) and sub.id == 1
    assert (await ph.subscriptions.update(sub.id, frequency="daily")).frequency == "daily"
    assert [s.id async for s in ph.subscriptions.list(insight=42)] == [1]
    deleted = await ph.subscriptions.delete(sub.id)
    assert deleted.deleted is True
    assert [s async for s in ph.subscriptions.list()] == []
    with pytest.raises(MethodNotAllowedError):  # what a real DELETE gets
        await ph._transport.request("DELETE", "/api/projects/1/subscriptions/1/")


async def test_users_sharing_and_integrations(ph: AsyncPostHog) -> None:
    me = await ph.users.retrieve("@me")
    assert me.email == "owner@example.com"
    staff = [u async for u in ph.users.list(is_staff=True)]
    assert [u.email for u in staff] == ["staff@example.com"]
    assert (await ph.users.retrieve(staff[0].uuid)).uuid == staff[0].uuid
    sharing = await ph.session_recordings.sharing("rec-1")
    token = sharing.access_token
    password = await ph.session_recordings.create_sharing_password("rec-1", note="legal")
    assert password.password and password.note == "legal"
    assert (await ph.session_recordings.sharing("rec-1")).password_required
    await ph.session_recordings.delete_sharing_password("rec-1", password.id)
    with pytest.raises(NotFoundError):
        await ph.session_recordings.delete_sharing_password("rec-1", password.id)
    assert (await ph.session_recordings.refresh_sharing("rec-1")).access_token != token
    assert (await ph.integrations.domain_connect_check(domain="acme.com"))["domain"] == "acme.com"


async def test_pytest_plugin_fixtures(posthog_server: FakePostHog, posthog_client: AsyncPostHog) -> None:
    posthog_server.seed_persons(2)
    assert len((await posthog_client.persons.list()).results) == 2
