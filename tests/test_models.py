"""Models against PostHog's own schema (hypothesis generates schema-valid answers) and against
the answer shapes the notes list; and an accepted answer is never a failure, whatever its shape."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses
from hypothesis import HealthCheck, given, settings

from posthog_async import (
    AsyncPostHog,
    BulkDeleteResult,
    DeletionStatus,
    Page,
    Person,
    PersonAtTime,
    PropertyDefinition,
    SharingConfiguration,
    Subscription,
    UnexpectedResponseError,
    User,
)
from posthog_async._models import decode, decode_accepted

from . import _schema
from .conftest import API_KEY

P = "/api/projects/1"
UUID = "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"

# (operation, status, model): every typed answer the client decodes.
TYPED: list[tuple[str, str, int, Any]] = [
    ("GET", f"{P}/persons/{UUID}/", 200, Person),
    ("GET", f"{P}/persons/", 200, Page[Person]),
    ("POST", f"{P}/persons/bulk_delete/", 202, BulkDeleteResult),
    ("GET", f"{P}/persons/deletion_status/", 200, Page[DeletionStatus]),
    ("GET", f"{P}/persons/properties_at_time/", 200, PersonAtTime),
    ("GET", f"{P}/property_definitions/", 200, Page[PropertyDefinition]),
    ("GET", f"{P}/property_definitions/{UUID}/", 200, PropertyDefinition),
    ("PATCH", f"{P}/property_definitions/{UUID}/", 200, PropertyDefinition),
    ("GET", f"{P}/subscriptions/", 200, Page[Subscription]),
    ("POST", f"{P}/subscriptions/", 201, Subscription),
    ("GET", f"{P}/subscriptions/7/", 200, Subscription),
    ("PATCH", f"{P}/subscriptions/7/", 200, Subscription),
    ("POST", f"{P}/session_recordings/r1/sharing/refresh/", 200, SharingConfiguration),
    ("GET", "/api/users/", 200, Page[User]),
    ("GET", f"/api/users/{UUID}/", 200, User),
]


def _property_test(method: str, path: str, status: int, model: Any, require_all: bool) -> Any:
    # The user schema is large (organisation, team...): fewer examples keep the suite quick.
    @settings(max_examples=6 if "/users/" in path else 15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_schema.answers(method, path, status, require_all=require_all))
    def run(body: Any) -> None:
        decode(json.dumps(body).encode(), model)

    return run


@pytest.mark.parametrize("require_all", [False, True], ids=["as-generated", "every-field"])
@pytest.mark.parametrize("method,path,status,model", TYPED, ids=[f"{m} {p}" for m, p, _, _ in TYPED])
def test_model_decodes_every_schema_valid_answer(method: str, path: str, status: int, model: Any,
                                                  require_all: bool) -> None:
    _property_test(method, path, status, model, require_all)()


def test_sharing_get_items_decode() -> None:
    """notes item 10: the schema says GET sharing answers a list; each item (and the server's one
    object) must decode as a SharingConfiguration."""
    strategy = _schema.answers("GET", f"{P}/session_recordings/r1/sharing/", 200, require_all=True)

    @settings(max_examples=20, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def run(body: list[Any]) -> None:
        for item in body:
            decode(json.dumps(item).encode(), SharingConfiguration)

    run()


BULK_SHAPES = {
    "P-D sync": ({"persons_found": 3, "persons_deleted": 2, "persons_queued_for_deletion": 0,
                  "events_queued_for_deletion": True, "recordings_queued_for_deletion": False,
                  "deletion_errors": [{"person_uuid": UUID, "step": "delete_postgres"}]},
                 (3, 2, 0, True, "delete_postgres")),
    "P-C sync": ({"persons_found": 1, "persons_deleted": 1, "persons_queued_for_deletion": 0,
                  "events_queued_for_deletion": False, "recordings_queued_for_deletion": False,
                  "deletion_errors": [{"person_uuid": UUID}]}, (1, 1, 0, False, None)),
    "queued": ({"persons_found": 5, "persons_deleted": 0, "persons_queued_for_deletion": 5,
                "events_queued_for_deletion": True, "recordings_queued_for_deletion": True,
                "deletion_errors": []}, (5, 0, 5, True, None)),
    "P-B": ({"persons_found": 2, "persons_deleted": 2, "events_queued_for_deletion": False,
             "recordings_queued_for_deletion": False, "deletion_errors": []}, (2, 2, None, False, None)),
}


@pytest.mark.parametrize("shape", list(BULK_SHAPES))
def test_every_bulk_delete_shape(shape: str, caplog: pytest.LogCaptureFixture) -> None:
    body, (found, deleted, queued, events, step) = BULK_SHAPES[shape]
    result = decode_accepted(json.dumps(body).encode(), BulkDeleteResult, what=f"shape {shape}")
    assert (result.persons_found, result.persons_deleted, result.persons_queued_for_deletion,
            result.events_queued_for_deletion) == (found, deleted, queued, events)
    assert result.counts_known and result.unexpected_body is None
    if result.deletion_errors:
        assert result.deletion_errors[0].person_uuid == UUID
        assert result.deletion_errors[0].step == step
    assert not caplog.records  # documented shapes are not "unexpected"


def test_oldest_bulk_delete_answer_is_an_empty_202() -> None:
    result = decode_accepted(b"", BulkDeleteResult, what="P-A")
    assert not result.counts_known and result.persons_deleted is None


async def test_an_accepted_answer_is_never_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A 2xx to a call that changed state is a success whatever the shape of its JSON: the raw
    JSON is kept, one warning per new shape, and the call is not sent again. A body that is not
    JSON at all (a page) is not PostHog's answer: it raises, and is not sent again either."""
    caplog.set_level(logging.WARNING, "posthog_async")
    url = re.compile(r".*/persons/bulk_delete/$")
    odd = {"persons_found": "3", "events_queued_for_deletion": 1, "surprise": [1]}
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None) as ph:
        with aioresponses() as m:
            m.post(url, status=202, payload=odd, repeat=True)
            first = await ph.persons.bulk_delete(distinct_ids=["a"])
            second = await ph.persons.bulk_delete(distinct_ids=["b"])
            sent = sum(len(calls) for calls in m.requests.values())
        with aioresponses() as m:
            m.post(url, status=200, body="not json at all")
            with pytest.raises(UnexpectedResponseError) as info:
                await ph.persons.bulk_delete(distinct_ids=["c"])
            sent += sum(len(calls) for calls in m.requests.values())
    assert sent == 3  # nothing re-sent
    assert first.persons_found == 3 and first.events_queued_for_deletion is True
    assert first.unexpected_body == odd and second.unexpected_body == odd
    assert info.value.maybe_processed and info.value.body is None
    warnings = [r for r in caplog.records if "unexpected shape" in r.getMessage()]
    assert len(warnings) == 1  # once per shape


async def test_a_read_of_the_wrong_shape_raises() -> None:
    async with AsyncPostHog(API_KEY, project_id=1, rate_limits=None) as ph:
        with aioresponses() as m:
            m.get(re.compile(r".*/persons/.+/$"), payload={"no": "uuid"})
            with pytest.raises(UnexpectedResponseError) as info:
                await ph.persons.retrieve(UUID)
    assert info.value.status_code == 200 and "uuid" in str(info.value)


def test_every_model_of_a_state_changing_call_can_be_built_empty() -> None:
    """The lenient path needs a default for every field of these models."""
    for model in (BulkDeleteResult, Subscription, SharingConfiguration, PropertyDefinition):
        assert msgspec.to_builtins(model()) == {}
