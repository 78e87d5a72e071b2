"""Property definitions, subscriptions, users and sharing in the fake server, over raw HTTP."""

from __future__ import annotations

from typing import Any

from posthog_async.testing import FakePostHog

from .test_fake_server import call, error

DEFS = "/api/projects/1/property_definitions/"
SUBS = "/api/projects/1/subscriptions/"
SHARING = "/api/projects/1/session_recordings/rec-1/sharing/"
SUB = {"insight": 7, "target_type": "email", "target_value": "a@b.c", "frequency": "daily",
       "interval": 1, "start_date": "2030-12-01T00:00:00Z"}


async def test_row34_property_definitions_are_projects_only(server: FakePostHog) -> None:
    assert (await call(server, "GET", DEFS))[0] == 200
    status, body, _ = await call(server, "GET", "/api/environments/1/property_definitions/")
    assert status == 404 and error(body, "invalid_request", "not_found", "Not found.")


async def test_row35_type_group_event_names_and_virtual_entries(server: FakePostHog) -> None:
    status, body, _ = await call(server, "GET", DEFS, params={"type": "group"})
    assert status == 400 and error(body, "validation_error", "invalid_input",
                                   "`group_type_index` must be set for `group` type")
    status, body, _ = await call(server, "GET", DEFS, params={"type": "person", "event_names": '["a"]'})
    assert body["detail"] == "`event_names` can only be set for `event` type"
    status, body, _ = await call(server, "GET", DEFS, params={"type": "cohort"})
    assert status == 400 and (body["attr"], body["code"]) == ("type", "invalid_choice")
    _, people, _ = await call(server, "GET", DEFS, params={"type": "person"})
    assert people["count"] == 6 and people["results"][-1]["id"] == "$builtin_$virt_revenue_last_30_days"
    _, first, _ = await call(server, "GET", DEFS, params={"type": "person", "limit": "1"})
    assert first["count"] == 6 and [r["name"] for r in first["results"]] == ["email"]  # not last page
    _, events, _ = await call(server, "GET", DEFS, params={"event_names": '["purchase"]'})
    seen = {r["name"]: r["is_seen_on_filtered_events"] for r in events["results"]}
    assert seen == {"revenue": True, "$browser": True, "$current_url": False}  # distinct_id hidden


async def test_row35_patch_beyond_property_type_needs_a_paid_feature(server: FakePostHog) -> None:
    _, body, _ = await call(server, "GET", DEFS)
    definition = next(r for r in body["results"] if r["name"] == "revenue")
    path = f"{DEFS}{definition['id']}/"
    status, body, _ = await call(server, "PATCH", path, json={"property_type": "String"})
    assert status == 200 and (body["property_type"], body["is_numerical"]) == ("String", False)
    for payload in ({"description": "money"}, {}, {"property_type": "String"}):
        status, body, _ = await call(server, "PATCH", path, json=payload)
        assert status == 402 and (body["type"], body["code"]) == ("server_error", "payment_required")
    assert (await call(server, "DELETE", path))[:2] == (204, None)
    assert (await call(server, "GET", path))[0] == 404


async def test_row36_seen_together_takes_repeated_event_names(server: FakePostHog) -> None:
    path = DEFS + "seen_together/"
    status, body, _ = await call(server, "GET", path + "?event_names=purchase&event_names=$pageview"
                                                      "&event_names=signup&property_name=$browser")
    assert (status, body) == (200, {"purchase": True, "$pageview": True, "signup": False})
    _, body, _ = await call(server, "GET", path, params={"event_names": '["purchase"]',
                                                         "property_name": "revenue"})
    assert body == {'["purchase"]': False}  # a JSON array is one (odd) event name
    status, body, _ = await call(server, "GET", path, params={"property_name": "x"})
    assert status == 400 and error(body, "validation_error", "required", "This field is required.",
                                   "event_names")
    status, body, _ = await call(server, "GET", path, params={"event_names": "a"})
    assert status == 400 and body["attr"] == "property_name"


async def test_row37_subscription_delete_is_an_empty_405(server: FakePostHog) -> None:
    _, sub, _ = await call(server, "POST", SUBS, json=SUB)
    status, body, _ = await call(server, "DELETE", f"{SUBS}{sub['id']}/")
    assert (status, body) == (405, None)


async def test_row38_soft_deleted_subscription_stays_reachable(server: FakePostHog) -> None:
    _, sub, _ = await call(server, "POST", SUBS, json=SUB)
    path = f"{SUBS}{sub['id']}/"
    assert (await call(server, "PATCH", path, json={"deleted": True}))[1]["deleted"] is True
    assert (await call(server, "GET", SUBS))[1]["count"] == 0
    assert (await call(server, "GET", SUBS, params={"deleted": "true"}))[1]["count"] == 1
    status, body, _ = await call(server, "GET", path)
    assert status == 200 and body["deleted"] is True
    assert (await call(server, "PATCH", path, json={"deleted": False}))[1]["deleted"] is False
    assert (await call(server, "GET", SUBS))[1]["count"] == 1


async def test_row39_subscription_create_validation(server: FakePostHog) -> None:
    def without(*names: str, **extra: Any) -> dict[str, Any]:
        return {**{k: v for k, v in SUB.items() if k not in names}, **extra}

    cases = [
        (without("interval"), "interval", "required", "This field is required."),
        (without(interval=0), "interval", "min_value", "Ensure this value is greater than or equal to 1."),
        (without(target_type="webhook"), "target_type", "invalid_choice", '"webhook" is not a valid choice.'),
        (without(frequency="hourly"), "frequency", "invalid_choice", '"hourly" is not a valid choice.'),
        (without(byweekday=["monday", "funday"]), "byweekday__1", "invalid_choice",
         '"funday" is not a valid choice.'),
        (without("insight"), None, "invalid_input",
         "A subscription must have an insight, a dashboard, or a prompt."),
        (without("insight", dashboard=3), "dashboard_export_insights", "invalid_input",
         "Select at least one insight for this subscription."),
        (without(target_type="slack"), "integration_id", "invalid_input",
         "A Slack integration is required for Slack subscriptions."),
        (without("start_date"), "start_date", "required", "This field is required."),
    ]
    for payload, attr, code, detail in cases:
        status, body, _ = await call(server, "POST", SUBS, json=payload)
        assert status == 400 and error(body, "validation_error", code, detail, attr), payload
    status, body, _ = await call(server, "POST", SUBS,
                                 json=without("insight", dashboard=3, dashboard_export_insights=[1, 2],
                                              target_type="slack", integration_id=1))
    assert status == 201 and body["resource_type"] == "dashboard"


async def test_row40_users_list_holds_only_the_caller(server: FakePostHog) -> None:
    status, body, _ = await call(server, "GET", "/api/users/")
    assert status == 200 and body["count"] == 1 and body["results"][0]["is_staff"] is False
    _, body, _ = await call(server, "GET", "/api/users/", params={"is_staff": "true"})
    assert body["count"] == 0


async def test_row41_users_only_at_me(server: FakePostHog) -> None:
    status, me, _ = await call(server, "GET", "/api/users/@me/")
    assert status == 200
    for other in (me["uuid"], "0190f3a0-0000-4000-8000-000000000002"):
        status, body, _ = await call(server, "GET", f"/api/users/{other}/")
        assert status == 403 and error(body, "authentication_error", "permission_denied",
                                       "As a non-staff user you're only allowed to access the `@me` user instance.")
    status, body, _ = await call(server, "PATCH", "/api/users/@me/", json={"email": "x@y.z"})
    assert status == 403 and body["detail"].startswith("You can only change your email or password")


async def test_row42_sharing_get_is_one_object_created_on_write(server: FakePostHog) -> None:
    _, first, _ = await call(server, "GET", SHARING)
    assert first["created_at"] is None and first["share_passwords"] == [] and first["enabled"] is False
    status, body, _ = await call(server, "PATCH", SHARING, json={"enabled": True, "settings": {"a": 1}})
    assert status == 200 and body["enabled"] is True and body["created_at"] is not None
    token = body["access_token"]
    _, refreshed, _ = await call(server, "POST", SHARING + "refresh/")
    assert refreshed["access_token"] != token


async def test_row43_password_create_needs_password_required(server: FakePostHog) -> None:
    path = SHARING + "passwords/"
    status, body, _ = await call(server, "POST", path, json={"note": "x"})
    assert (status, body) == (400, {"error": "Password protection must be enabled before creating passwords"})
    await call(server, "PATCH", SHARING, json={"password_required": True})
    status, body, _ = await call(server, "POST", path, json={"raw_password": "short"})
    assert status == 400 and body["detail"] == "Password must be at least 8 characters long."
    status, body, _ = await call(server, "POST", path, json={"raw_password": "long enough", "note": "n"})
    assert status == 201 and body["password"] == "long enough" and isinstance(body["id"], int)
    assert set(body) == {"id", "password", "note", "created_at", "created_by_email"}
    _, config, _ = await call(server, "GET", SHARING)
    assert [p["id"] for p in config["share_passwords"]] == [body["id"]]
    assert "password" not in config["share_passwords"][0]


async def test_row43_password_feature_knob() -> None:
    async with FakePostHog(rate_limits=None, advanced_permissions=False) as server:
        status, body, _ = await call(server, "PATCH", SHARING, key=server.api_key,
                                     json={"password_required": True})
        assert (status, body) == (403, {"error": "Sharing with password requires the Advanced Permissions feature"})
        server.project().sharing["rec-1"] = {"created_at": "2024-01-01T00:00:00Z", "enabled": True,
                                             "access_token": "t", "settings": None,
                                             "password_required": True, "share_passwords": []}
        status, body, _ = await call(server, "POST", SHARING + "passwords/", key=server.api_key, json={})
        assert (status, body) == (403, {"error": "Password management requires the Advanced Permissions feature"})


async def test_row44_password_delete(server: FakePostHog) -> None:
    await call(server, "PATCH", SHARING, json={"password_required": True})
    _, created, _ = await call(server, "POST", SHARING + "passwords/", json={})
    path = f"{SHARING}passwords/{created['id']}/"
    assert (await call(server, "DELETE", path))[:2] == (204, None)
    status, body, _ = await call(server, "DELETE", path)
    assert status == 404 and error(body, "invalid_request", "not_found", "Password not found")
