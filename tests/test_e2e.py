"""The main paths through the public client against the offline PostHog on 127.0.0.1, which
answers as PostHog's server does (posthog-api-notes.md): writes accepted now and applied later,
presence flags, booleans, refused endpoints, soft deletes, one-time passwords."""

from __future__ import annotations

import pytest

from posthog_async import (
    AsyncPostHog,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    Person,
    PersonalAPIKeyNotAllowedError,
    PropertyDefinition,
    Subscription,
)
from posthog_async.testing import FakePostHog


async def test_person_lifecycle(server: FakePostHog, ph: AsyncPostHog) -> None:
    alice = server.add_person(["alice", "alice-phone"], {"email": "alice@acme.com", "plan": "free"})
    found = await ph.persons.list(email="alice@acme.com")
    assert [p.uuid for p in found.results] == [alice.uuid]
    person = await ph.persons.retrieve(alice.uuid)
    assert isinstance(person, Person) and sorted(person.distinct_ids) == ["alice", "alice-phone"]
    assert (await ph.persons.retrieve(person.id or 0)).uuid == alice.uuid  # the numeric id works too
    assert await ph.persons.update(alice.uuid, properties={"plan": "pro"}) is None  # 202, empty
    await ph.persons.update_property(alice.uuid, key="seats", value=5)
    await ph.persons.delete_property(alice.uuid, key="email")  # 201 {"success": true}
    await server.wait_for_writes()  # PostHog applies them later, through events
    assert (await ph.persons.retrieve(alice.uuid)).properties == {"plan": "pro", "seats": 5}
    values = await ph.persons.values(key="plan")
    assert [(v.name, v.count) for v in values.results] == [("pro", 1)]
    at = await ph.persons.properties_at_time(distinct_id="alice", timestamp="2026-01-01T00:00:00Z")
    assert at.point_in_time_metadata is not None and at.point_in_time_metadata.query_mode == "distinct_id"
    with pytest.raises(NotFoundError, match="Person with distinct_id 'nobody' not found"):
        await ph.persons.properties_at_time(distinct_id="nobody", timestamp="2026-01-01T00:00:00Z")
    by_did = await ph.persons.batch_by_distinct_ids(["alice", "alice-phone", "nobody"])
    assert set(by_did) == {"alice", "alice-phone"} and by_did["alice"].uuid == alice.uuid
    by_uuid = await ph.persons.batch_by_uuids([alice.uuid.upper()])
    assert list(by_uuid) == [alice.uuid]
    assert "results" in await ph.persons.cohorts(person_id=alice.uuid)
    await ph.persons.activity(alice.uuid)
    await ph.persons.split(alice.uuid, main_distinct_id="alice")
    await ph.persons.delete(alice.uuid, delete_events=True)
    with pytest.raises(NotFoundError):
        await ph.persons.retrieve(alice.uuid)
    statuses = [s async for s in ph.persons.deletion_status(status="pending")]
    assert [s.person_uuid for s in statuses] == [alice.uuid]
    await ph.persons.reset_person_distinct_id("alice")


async def test_delete_without_flags_deletes_only_the_person(server: FakePostHog,
                                                            ph: AsyncPostHog) -> None:
    """PostHog counts a DELETE flag as set when it is present at all: a client that sent
    ``delete_events=false&keep_person=false`` would keep the person and erase their events."""
    bob = server.add_person(["bob"])
    await ph.persons.delete(bob.uuid)
    with pytest.raises(NotFoundError):
        await ph.persons.retrieve(bob.uuid)
    assert [s async for s in ph.persons.deletion_status()] == []  # no event deletion queued


async def test_environment_family_and_other_projects(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(5, project_id=2)
    env = ph.environment(2)
    assert len((await env.persons.list()).results) == 5
    assert len((await ph.project(2).persons.list()).results) == 5
    assert len((await ph.persons.list()).results) == 0
    result = await env.persons.bulk_delete(distinct_ids=["user-1", "user-2"], delete_events=True)
    assert (result.persons_found, result.persons_deleted) == (2, 2)
    assert result.events_queued_for_deletion is True and result.recordings_queued_for_deletion is False
    assert result.persons_queued_for_deletion == 0
    defs = [d async for d in env.property_definitions.list()]  # served from /api/projects/ only
    assert defs


@pytest.mark.parametrize("version", ["P-D", "P-C", "P-B", "P-A"])
async def test_every_bulk_delete_version_is_a_success(version: str) -> None:
    async with FakePostHog(rate_limits=None, bulk_delete_version=version) as server:
        server.seed_persons(3)
        async with server.client(rate_limits=None) as ph:
            result = await ph.persons.bulk_delete(distinct_ids=["user-1", "user-2", "ghost"])
            report = await ph.persons.bulk_delete_all(distinct_ids=["user-3", "ghost"], resolve=True)
    assert result.counts_known == (version != "P-A")
    if version != "P-A":
        assert result.persons_found == 2
    assert report.ok and report.outcomes == {"deleted": 1, "not_found": 1}
    assert server.ids_deleted == 3


async def test_queued_deletions(server: FakePostHog) -> None:
    async with FakePostHog(rate_limits=None, queue_person_deletions=True) as server:
        server.seed_persons(4)
        async with server.client(rate_limits=None) as ph:
            report = await ph.persons.bulk_delete_all(distinct_ids=["user-1", "user-2", "ghost"],
                                                      resolve=True)
            assert report.outcomes == {"queued": 2, "not_found": 1}
            assert report.persons_queued_for_deletion == 2 and report.persons_deleted == 0
            await server.wait_for_deletions()
            assert len(server.project().persons) == 2


async def test_refused_to_personal_api_keys(ph: AsyncPostHog) -> None:
    # persons.actors.* now ask the query API instead (tests/test_query_actors.py)
    for call in (ph.persons.properties_timeline("0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"),
                 ph.integrations.domain_connect_check(domain="acme.com")):
        with pytest.raises(PersonalAPIKeyNotAllowedError):
            await call


async def test_csv_export(server: FakePostHog, ph: AsyncPostHog) -> None:
    server.seed_persons(3)
    text = await ph.persons.list_csv()
    assert len(text.splitlines()) == 4 and "distinct_ids" in text.splitlines()[0]
    chunks = [c async for c in ph.persons.stream_csv(limit=250)]
    assert b"".join(chunks).decode() == text


async def test_property_definitions(ph: AsyncPostHog) -> None:
    person_defs = [d async for d in ph.property_definitions.list(type="person")]
    names = {d.name for d in person_defs}
    assert {"email", "plan"} <= names
    assert any((d.id or "").startswith("$builtin_") or (d.name or "").startswith("$virt")
               for d in person_defs)  # PostHog's virtual properties, on the last page
    plan = next(d for d in person_defs if d.name == "plan")
    assert isinstance(plan, PropertyDefinition) and plan.id
    updated = await ph.property_definitions.update(plan.id, property_type="Numeric")
    assert updated.property_type == "Numeric"  # more than property_type needs a paid plan (402)
    seen = await ph.property_definitions.seen_together(event_names=["$pageview", "signup"],
                                                       property_name="plan")
    assert set(seen) == {"$pageview", "signup"}  # repeated event_names: both events answered
    with pytest.raises(BadRequestError, match="group_type_index"):
        await ph._transport.request("GET", "/api/projects/1/property_definitions/",
                                    bucket="general", params={"type": "group"})
    await ph.property_definitions.delete(plan.id)
    with pytest.raises(NotFoundError):
        await ph.property_definitions.retrieve(plan.id)


async def test_subscriptions_soft_delete_and_restore(ph: AsyncPostHog) -> None:
    sub = await ph.subscriptions.create(insight=42, target_type="email", target_value="ops@acme.com",
                                        frequency="weekly", start_date="2026-12-01T09:00:00Z")
    assert isinstance(sub, Subscription) and sub.id is not None and sub.interval == 1
    assert (await ph.subscriptions.update(sub.id, frequency="daily")).frequency == "daily"
    assert [s.id async for s in ph.subscriptions.list(insight=42)] == [sub.id]
    assert (await ph.subscriptions.delete(sub.id)).deleted is True
    assert [s async for s in ph.subscriptions.list()] == []
    assert [s.id async for s in ph.subscriptions.list(deleted=True)] == [sub.id]
    assert (await ph.subscriptions.retrieve(sub.id)).deleted is True  # still found
    assert (await ph.subscriptions.restore(sub.id)).deleted is False
    assert [s.id async for s in ph.subscriptions.list()] == [sub.id]


async def test_users_sharing(ph: AsyncPostHog) -> None:
    me = await ph.users.retrieve("@me")
    assert me.email
    assert [u.uuid async for u in ph.users.list()] == [me.uuid]  # a key sees only its user
    with pytest.raises(PermissionDeniedError, match="@me"):
        await ph.users.retrieve("0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c")
    sharing = await ph.session_recordings.sharing("rec-1")
    token = sharing.access_token
    with pytest.raises(BadRequestError, match="Password protection must be enabled"):
        await ph.session_recordings.create_sharing_password("rec-1", note="legal")
    await ph.session_recordings.update_sharing("rec-1", enabled=True, password_required=True)
    password = await ph.session_recordings.create_sharing_password("rec-1", note="legal")
    assert isinstance(password.id, int) and password.password and password.note == "legal"
    listed = (await ph.session_recordings.sharing("rec-1")).share_passwords or []
    assert [p.id for p in listed] == [password.id]
    await ph.session_recordings.delete_sharing_password("rec-1", password.id)
    with pytest.raises(NotFoundError):
        await ph.session_recordings.delete_sharing_password("rec-1", password.id)
    assert (await ph.session_recordings.refresh_sharing("rec-1")).access_token != token


async def test_pytest_plugin_fixtures(posthog_server: FakePostHog, posthog_client: AsyncPostHog) -> None:
    posthog_server.seed_persons(2)
    assert len((await posthog_client.persons.list()).results) == 2
