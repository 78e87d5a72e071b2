"""Every status maps to its exception class, with the server's message whatever the body's
shape (posthog-api-notes.md, Errors), and never the key (aioresponses)."""

from __future__ import annotations

from typing import Any

import pytest
from aioresponses import aioresponses

from posthog_async import (
    APIStatusError,
    AsyncPostHog,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    PersonalAPIKeyNotAllowedError,
    RateLimitError,
)

from .conftest import API_KEY, fast_retries

URL = "https://us.posthog.com/api/projects/1/persons/bulk_delete/"


@pytest.mark.parametrize(
    "status,cls",
    [
        (400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
        (404, NotFoundError), (405, MethodNotAllowedError), (409, ConflictError),
        (418, APIStatusError), (500, InternalServerError), (502, InternalServerError),
        (503, InternalServerError), (504, InternalServerError), (429, RateLimitError),
    ],
)
async def test_status_maps_to_class(status: int, cls: type[APIStatusError]) -> None:
    body = {"type": "x", "code": "c", "detail": "went wrong", "attr": "ids"}
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None, max_retries=0) as ph:
        with aioresponses() as m:
            m.post(URL, status=status, payload=body, headers={"Retry-After": "3"})
            with pytest.raises(cls) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.method == "POST"
    assert err.path == "/api/projects/1/persons/bulk_delete/"
    assert err.body == body and err.detail == "went wrong" and err.code == "c"
    assert API_KEY not in str(err) and API_KEY not in repr(err.__dict__)
    if cls is RateLimitError:
        assert isinstance(err, RateLimitError) and err.retry_after == 3.0


async def test_400_exposes_attr_and_is_not_retried() -> None:
    calls = []
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None,
                            retry_policy=fast_retries(), on_retry=calls.append) as ph:
        with aioresponses() as m:
            m.post(URL, status=400, payload={"type": "validation_error", "code": "invalid_input",
                                             "detail": "You can only pass 1000 ids in one call",
                                             "attr": "ids"})
            with pytest.raises(BadRequestError) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    assert info.value.attr == "ids"
    assert "(attr: ids)" in str(info.value)
    assert calls == []


async def test_403_names_missing_scope() -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None) as ph:
        with aioresponses() as m:
            m.post(URL, status=403, payload={"type": "authentication_error", "code": "permission_denied",
                                             "detail": "API key missing required scope 'person:write'",
                                             "attr": None})
            with pytest.raises(PermissionDeniedError) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    assert info.value.missing_scope == "person:write"


UUID = "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"
PAT = "https://us.posthog.com/api/projects/1/persons/properties_at_time/?distinct_id=x&timestamp=t"


@pytest.mark.parametrize("body,detail,code", [
    # the standard drf-exceptions-hog body
    ({"type": "validation_error", "code": "invalid_input", "detail": "Bad.", "attr": None}, "Bad.", "invalid_input"),
    # properties_at_time, sharing passwords: {"error": ...}
    ({"error": "Cannot provide both distinct_id and person_id - choose one"},
     "Cannot provide both distinct_id and person_id - choose one", None),
    # cohorts / lifecycle: {"message", "detail"}
    ({"message": "bad filter", "detail": "events missing"}, "events missing", None),
    ({"message": "bad filter"}, "bad filter", None),
    # none of detail, error, message: the body's own text
    ({"non_field_errors": ["Invalid date."]}, '{"non_field_errors":["Invalid date."]}', None),
    # persons update/update_property: code and detail swapped
    ({"attr": "properties", "code": "This field is required.", "detail": "required",
      "type": "validation_error"}, "This field is required.", "required"),
])
async def test_message_from_every_error_body(body: dict[str, Any], detail: str, code: str | None) -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get(PAT, status=400, payload=body)
            with pytest.raises(BadRequestError) as info:
                await ph.persons.properties_at_time(distinct_id="x", timestamp="t")
    assert info.value.detail == detail and info.value.code == code
    assert detail in str(info.value)


async def test_empty_error_body() -> None:
    """Subscriptions DELETE answers 405 with no body at all (ForbidDestroyModel)."""
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None) as ph:
        with aioresponses() as m:
            m.patch("https://us.posthog.com/api/projects/1/subscriptions/7/", status=405, body=b"")
            with pytest.raises(MethodNotAllowedError) as info:
                await ph.subscriptions.update(7, title="x")
    assert info.value.detail is None and info.value.body is None
    assert str(info.value) == "PATCH /api/projects/1/subscriptions/7/ -> 405"


async def test_endpoint_refused_to_personal_keys_is_clear_and_not_retried() -> None:
    retries: list[object] = []
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None, retry_policy=fast_retries(),
                            on_retry=retries.append) as ph:
        with aioresponses() as m:
            m.get(f"https://us.posthog.com/api/projects/1/persons/{UUID}/properties_timeline/",
                  status=403, payload={"type": "authentication_error", "code": "permission_denied",
                                       "detail": "This action does not support personal API key access",
                                       "attr": None})
            with pytest.raises(PersonalAPIKeyNotAllowedError) as info:
                await ph.persons.properties_timeline(UUID)
    assert isinstance(info.value, PermissionDeniedError)
    assert "no scope or retry can help" in str(info.value)
    assert retries == []


async def test_retry_after_from_the_detail_when_the_header_is_missing() -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None, max_retries=0) as ph:
        with aioresponses() as m:
            m.post(URL, status=429, payload={
                "type": "throttled_error", "code": "throttled", "attr": None,
                "detail": "Request was throttled. Expected available in 1 second."})
            with pytest.raises(RateLimitError) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    assert info.value.retry_after == 1.0


async def test_non_json_error_body() -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None, max_retries=0) as ph:
        with aioresponses() as m:
            m.post(URL, status=502, body="<html>Bad gateway</html>")
            with pytest.raises(InternalServerError) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    assert "Bad gateway" in str(info.value)


async def test_dict_body_without_a_message_is_shown_cut() -> None:
    body = {"ids": [f"id-{i}" for i in range(200)]}
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None, max_retries=0) as ph:
        with aioresponses() as m:
            m.post(URL, status=400, payload=body)
            with pytest.raises(BadRequestError) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    assert info.value.detail is not None and len(info.value.detail) == 500
    assert info.value.detail.startswith('{"ids":["id-0","id-1",')
    assert info.value.body == body
