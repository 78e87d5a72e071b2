"""Every status maps to its exception class, with the parsed body and no key (aioresponses)."""

from __future__ import annotations

import pytest
from aioresponses import aioresponses

from posthog_async import (
    APIStatusError, AsyncPostHog, AuthenticationError, BadRequestError, ConflictError,
    InternalServerError, MethodNotAllowedError, NotFoundError, PermissionDeniedError,
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


async def test_legacy_message_body() -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get("https://us.posthog.com/api/projects/1/persons/trends/", status=400,
                  payload={"message": "bad filter", "detail": "events missing"})
            with pytest.raises(BadRequestError) as info:
                await ph.persons.trends()
    assert info.value.detail == "events missing"


async def test_non_json_error_body() -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None, max_retries=0) as ph:
        with aioresponses() as m:
            m.post(URL, status=502, body="<html>Bad gateway</html>")
            with pytest.raises(InternalServerError) as info:
                await ph.persons.bulk_delete(distinct_ids=["a"])
    assert "Bad gateway" in str(info.value)
