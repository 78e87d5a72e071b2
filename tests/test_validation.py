"""Bad arguments fail before any request, with a clear error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from posthog_async import AsyncPostHog
from posthog_async.testing import FakePostHog

UUID = "0190b7a4-3c55-7a2c-9e2d-1f0e6e9a1b2c"

BAD: list[tuple[str, Callable[[AsyncPostHog], Awaitable[Any]], type[Exception], str]] = [
    ("retrieve distinct id", lambda p: p.persons.retrieve("alice"), ValueError, "UUID or numeric id"),
    ("retrieve unicode digits", lambda p: p.persons.retrieve("\u00b3"), ValueError, "UUID or numeric id"),
    ("update nothing", lambda p: p.persons.update(UUID, properties={}), ValueError, "properties"),
    ("update name", lambda p: p.persons.update(UUID, name="x"), TypeError, "name"),  # type: ignore[call-arg]
    ("empty key", lambda p: p.persons.update_property(UUID, key=" ", value=1), ValueError, "key"),
    ("empty unset", lambda p: p.persons.delete_property(UUID, key=""), ValueError, "key"),
    ("split both", lambda p: p.persons.split(UUID, main_distinct_id="a", distinct_ids_to_split=["b"]), ValueError, "exactly one"),
    ("split neither", lambda p: p.persons.split(UUID), ValueError, "exactly one"),
    ("bulk both", lambda p: p.persons.bulk_delete(ids=[UUID], distinct_ids=["a"]), ValueError, "exactly one"),
    ("bulk neither", lambda p: p.persons.bulk_delete(), ValueError, "exactly one"),
    ("bulk empty", lambda p: p.persons.bulk_delete(distinct_ids=[]), ValueError, "empty"),
    ("bulk 1001", lambda p: p.persons.bulk_delete(distinct_ids=[f"d{i}" for i in range(1001)]), ValueError, "1000"),
    ("bulk bad uuid", lambda p: p.persons.bulk_delete(ids=[UUID, "nope"]), ValueError, r"ids\[1\]"),
    ("bulk blank id", lambda p: p.persons.bulk_delete(distinct_ids=["a", " "]), ValueError, "blank"),
    ("bulk control char", lambda p: p.persons.bulk_delete(distinct_ids=["a\tb"]), ValueError, "control"),
    ("bulk too long", lambda p: p.persons.bulk_delete(distinct_ids=["x" * 401]), ValueError, "400"),
    ("bulk bom", lambda p: p.persons.bulk_delete(distinct_ids=["\ufeffuser-1"]), ValueError, "invisible"),
    ("bulk str", lambda p: p.persons.bulk_delete(distinct_ids="abc"), TypeError, "single string"),
    ("batch 201", lambda p: p.persons.batch_by_distinct_ids([f"d{i}" for i in range(201)]), ValueError, "200"),
    ("batch uuids bad", lambda p: p.persons.batch_by_uuids(["x"]), ValueError, "UUID"),
    ("batch uuids 201", lambda p: p.persons.batch_by_uuids([UUID] * 201), ValueError, "200"),
    ("list limit cap", lambda p: p.persons.list(limit=1001).first_page(), ValueError, "1000"),
    ("list bad filter", lambda p: p.persons.list(properties=[{"value": "x"}]).first_page(), ValueError, "key"),
    ("unset 1001", lambda p: p.persons.delete_property(UUID, key=[f"k{i}" for i in range(1001)]), ValueError, "1000"),
    ("values no key", lambda p: p.persons.values(key=""), ValueError, "key"),
    ("deletion bad status", lambda p: p.persons.deletion_status(status="gone").first_page(), ValueError, "status"),  # type: ignore[arg-type]
    ("pat both", lambda p: p.persons.properties_at_time(timestamp="t", distinct_id="a", person_id=UUID), ValueError, "exactly one"),
    ("pat debug", lambda p: p.persons.properties_at_time(timestamp="t", distinct_id="a", debug=True), TypeError, "debug"),  # type: ignore[call-arg]
    ("lifecycle type", lambda p: p.persons.actors.lifecycle({"kind": "LifecycleQuery", "series": []}, target_date="2026-01-01", lifecycle_type="old").first_page(), ValueError, "status"),
    ("format", lambda p: p.persons.activity(UUID, format="xml"), ValueError, "format"),  # type: ignore[arg-type]
    ("pd type", lambda p: p.property_definitions.list(type="cohort").first_page(), ValueError, "event, person, group"),  # type: ignore[arg-type]
    ("pd group", lambda p: p.property_definitions.list(type="group").first_page(), ValueError, "group_type_index"),
    ("pd event_names", lambda p: p.property_definitions.list(type="person", event_names=["$pageview"]).first_page(), ValueError, "event"),
    ("seen_together str", lambda p: p.property_definitions.seen_together(event_names="$pageview", property_name="x"), ValueError, "list"),
    ("sub target", lambda p: p.subscriptions.create(insight=1, target_type="fax", target_value="x", frequency="daily", start_date="t"), ValueError, "target_type"),  # type: ignore[arg-type]
    ("sub webhook", lambda p: p.subscriptions.create(insight=1, target_type="webhook", target_value="x", frequency="daily", start_date="t"), ValueError, "target_type"),  # type: ignore[arg-type]
    ("sub interval", lambda p: p.subscriptions.create(insight=1, target_type="email", target_value="x", frequency="daily", start_date="t", interval=0), ValueError, "interval"),
    ("sub dashboard", lambda p: p.subscriptions.create(dashboard=1, target_type="email", target_value="x", frequency="daily", start_date="t"), ValueError, "dashboard_export_insights"),
    ("sub slack", lambda p: p.subscriptions.create(insight=1, target_type="slack", target_value="#x", frequency="daily", start_date="t"), ValueError, "integration_id"),
    ("sub weekday", lambda p: p.subscriptions.create(insight=1, target_type="email", target_value="x", frequency="weekly", start_date="t", byweekday=["funday"]), ValueError, "byweekday"),
    ("sub both", lambda p: p.subscriptions.create(insight=1, dashboard=2, target_type="email", target_value="x", frequency="daily", start_date="t"), ValueError, "insight or dashboard"),
    ("sub id", lambda p: p.subscriptions.retrieve("abc"), ValueError, "integer"),
    ("user uuid", lambda p: p.users.retrieve("bob"), ValueError, "UUID"),
    ("recording id", lambda p: p.session_recordings.sharing(""), ValueError, "recording_id"),
    ("sharing nothing", lambda p: p.session_recordings.update_sharing("r"), ValueError, "enabled"),
    ("short password", lambda p: p.session_recordings.create_sharing_password("r", password="short"), ValueError, "8"),
    ("password id", lambda p: p.session_recordings.delete_sharing_password("r", "pw1"), ValueError, "integer"),
    ("project id", lambda p: p.project("a/b").persons.retrieve(UUID), ValueError, "project id"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
async def test_bad_arguments_send_nothing(case: tuple[Any, ...], server: FakePostHog,
                                          ph: AsyncPostHog) -> None:
    _, call, exc, match = case
    with pytest.raises(exc, match=match):
        await call(ph)
    assert server.stats.requests == 0


# -- issue 17, item 11: a CSV cell holding two UUIDs on two lines ----------------------------------

def test_an_id_holding_a_line_break_is_rejected_alone_by_the_batch_fast_path() -> None:
    """The UUID fast path joined the batch with line breaks and matched line by line, so
    "uuid1\\nuuid2" passed as clean and its whole chunk failed with PostHog's 400."""
    from posthog_async._ids import IdCleaner, RejectedId

    first, second, third = UUID, UUID.replace("0190", "0191"), UUID.replace("0190", "0192")
    rejected: list[RejectedId] = []
    cleaner = IdCleaner(uuids=True, on_reject=rejected.append)
    assert cleaner.clean([f"{first}\n{second}", third], lines=[2, 4]) == [third]
    assert [(r.line, r.reason) for r in rejected] == [(2, rejected[0].reason)]
    assert "line break" in rejected[0].reason
    assert cleaner.stats.invalid == 1 and cleaner.stats.unique == 1
    for raw in (f"{first}\r\n{second}", f"{first}\n"):  # any line break inside; none around
        assert IdCleaner(uuids=True).clean([raw]) == ([] if raw.strip() != first else [first])
