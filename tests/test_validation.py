"""Bad arguments fail before any request, with a clear error."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest

from posthog_async import AsyncPostHog
from posthog_async.testing import FakePostHog

UUID = "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"

BAD: list[tuple[str, Callable[[AsyncPostHog], Awaitable[Any]], type[Exception], str]] = [
    ("retrieve non-uuid", lambda p: p.persons.retrieve("alice"), ValueError, "UUID"),
    ("update nothing", lambda p: p.persons.update(UUID), ValueError, "properties"),
    ("empty key", lambda p: p.persons.update_property(UUID, key=" ", value=1), ValueError, "key"),
    ("empty unset", lambda p: p.persons.delete_property(UUID, key=""), ValueError, "key"),
    ("split both", lambda p: p.persons.split(UUID, main_distinct_id="a", distinct_ids_to_split=["b"]), ValueError, "exactly one"),
    ("split neither", lambda p: p.persons.split(UUID), ValueError, "exactly one"),
    ("bulk both", lambda p: p.persons.bulk_delete(ids=[UUID], distinct_ids=["a"]), ValueError, "exactly one"),
    ("bulk neither", lambda p: p.persons.bulk_delete(), ValueError, "exactly one"),
    ("bulk empty", lambda p: p.persons.bulk_delete(distinct_ids=[]), ValueError, "empty"),
    ("bulk 1001", lambda p: p.persons.bulk_delete(distinct_ids=[f"d{i}" for i in range(1001)]), ValueError, "1000"),
    ("bulk bad uuid", lambda p: p.persons.bulk_delete(ids=[UUID, "nope"]), ValueError, r"ids\[1\]"),
    ("bulk blank id", lambda p: p.persons.bulk_delete(distinct_ids=["a", " "]), ValueError, "empty"),
    ("bulk str", lambda p: p.persons.bulk_delete(distinct_ids="abc"), TypeError, "single string"),
    ("batch 201", lambda p: p.persons.batch_by_distinct_ids([f"d{i}" for i in range(201)]), ValueError, "200"),
    ("batch uuids bad", lambda p: p.persons.batch_by_uuids(["x"]), ValueError, "UUID"),
    ("values no key", lambda p: p.persons.values(key=""), ValueError, "key"),
    ("deletion bad status", lambda p: p.persons.deletion_status(status="gone").first_page(), ValueError, "status"),  # type: ignore[arg-type]
    ("pat both", lambda p: p.persons.properties_at_time(timestamp="t", distinct_id="a", person_id=UUID), ValueError, "exactly one"),
    ("lifecycle type", lambda p: p.persons.lifecycle(target_date="2026-01-01", lifecycle_type="old"), ValueError, "lifecycle_type"),  # type: ignore[arg-type]
    ("format", lambda p: p.persons.activity(UUID, format="xml"), ValueError, "format"),  # type: ignore[arg-type]
    ("pd type", lambda p: p.property_definitions.list(type="cohort").first_page(), ValueError, "event, person, group"),  # type: ignore[arg-type]
    ("pd group", lambda p: p.property_definitions.list(type="group").first_page(), ValueError, "group_type_index"),
    ("seen_together str", lambda p: p.property_definitions.seen_together(event_names="$pageview", property_name="x"), ValueError, "list"),
    ("sub target", lambda p: p.subscriptions.create(insight=1, target_type="fax", target_value="x", frequency="daily", start_date="t"), ValueError, "target_type"),
    ("sub both", lambda p: p.subscriptions.create(insight=1, dashboard=2, target_type="email", target_value="x", frequency="daily", start_date="t"), ValueError, "insight or dashboard"),
    ("sub id", lambda p: p.subscriptions.retrieve("abc"), ValueError, "integer"),
    ("user uuid", lambda p: p.users.retrieve("bob"), ValueError, "UUID"),
    ("recording id", lambda p: p.session_recordings.sharing(""), ValueError, "recording_id"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
async def test_bad_arguments_send_nothing(case: tuple[Any, ...], server: FakePostHog,
                                          ph: AsyncPostHog) -> None:
    _, call, exc, match = case
    with pytest.raises(exc, match=match):
        await call(ph)
    assert server.stats.requests == 0
