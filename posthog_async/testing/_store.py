"""The fake server's in-memory data: projects, persons and the other resources.

Persons are compact (``__slots__``, properties generated from a seed number until changed) so a
million of them fit in memory and seed in seconds.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

__all__ = ["FakePerson", "ProjectData", "now_iso"]

_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_PLANS = ("free", "pro", "team", "enterprise")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _fast_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62) | (4 << 76) | (2 << 62):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class FakePerson:
    __slots__ = ("id", "uuid", "distinct_ids", "seed", "_properties", "deleted", "name")

    def __init__(self, id: int, uuid: str, distinct_ids: list[str], seed: int,
                 properties: dict[str, Any] | None = None) -> None:
        self.id = id
        self.uuid = uuid
        self.distinct_ids = distinct_ids
        self.seed = seed
        self._properties = properties
        self.deleted = False
        self.name: str | None = None

    @property
    def properties(self) -> dict[str, Any]:
        """Read-only view: seeded persons' properties are generated, not stored, until changed."""
        if self._properties is None:
            i = self.seed
            return {"email": f"user{i}@example.com", "name": f"User {i}",
                    "plan": _PLANS[i % len(_PLANS)]}
        return self._properties

    def mutable_properties(self) -> dict[str, Any]:
        if self._properties is None:
            self._properties = self.properties
        return self._properties

    def created_at(self) -> str:
        return (_EPOCH + timedelta(seconds=self.seed)).isoformat().replace("+00:00", "Z")

    def to_json(self) -> dict[str, Any]:
        props = self.properties
        return {
            "id": self.id,
            "uuid": self.uuid,
            "name": self.name or props.get("email") or self.distinct_ids[0],
            "distinct_ids": self.distinct_ids,
            "properties": props,
            "created_at": self.created_at(),
            "last_seen_at": None,
        }


class ProjectData:
    """Everything one project holds. Environments share their project's data."""

    def __init__(self, project_id: int, *, seed: int = 0) -> None:
        self.id = project_id
        self.rng = random.Random(seed)
        self._next_id = 1
        self.persons: dict[str, FakePerson] = {}
        self.by_distinct_id: dict[str, FakePerson] = {}
        self._order: list[FakePerson] = []
        self._order_dirty = False
        self.deletion_status: list[dict[str, Any]] = []
        self.released_distinct_ids: set[str] = set()
        self.property_definitions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.sharing: dict[str, dict[str, Any]] = {}
        self._seed_definitions()

    # -- persons ---------------------------------------------------------------------------

    def add_person(self, distinct_ids: Iterable[str], properties: dict[str, Any] | None = None,
                   *, uuid: str | None = None) -> FakePerson:
        ids = list(distinct_ids)
        if not ids:
            raise ValueError("a person needs at least one distinct id")
        for d in ids:
            if d in self.by_distinct_id:
                raise ValueError(f"distinct id {d!r} already belongs to a person")
        pid = self._next_id
        self._next_id += 1
        person = FakePerson(pid, uuid or str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4)),
                            ids, pid, dict(properties) if properties is not None else None)
        self._index(person)
        return person

    def _index(self, person: FakePerson) -> None:
        self.persons[person.uuid] = person
        for d in person.distinct_ids:
            self.by_distinct_id[d] = person
        self._order.append(person)

    def seed_persons(self, n: int, *, prefix: str = "user-") -> range:
        """Create ``n`` persons with distinct ids ``{prefix}{i}`` for ``i`` in the returned range;
        every third person also has an ``anon-{i}`` id."""
        rng = self.rng
        start = self._next_id
        persons = self.persons
        by_distinct = self.by_distinct_id
        order = self._order
        for i in range(start, start + n):
            dids = [f"{prefix}{i}", f"anon-{i}"] if i % 3 == 0 else [f"{prefix}{i}"]
            person = FakePerson(i, _fast_uuid(rng), dids, i)
            persons[person.uuid] = person
            for d in dids:
                by_distinct[d] = person
            order.append(person)
        self._next_id = start + n
        return range(start, start + n)

    def ordered(self) -> list[FakePerson]:
        if self._order_dirty:
            self._order = [p for p in self._order if not p.deleted]
            self._order_dirty = False
        return self._order

    def delete_person(self, person: FakePerson, *, delete_events: bool, now: str) -> None:
        person.deleted = True
        self._order_dirty = True
        self.persons.pop(person.uuid, None)
        for d in person.distinct_ids:
            if self.by_distinct_id.get(d) is person:
                del self.by_distinct_id[d]
        if delete_events:
            self.queue_event_deletion(person.uuid, now)

    def queue_event_deletion(self, person_uuid: str, now: str) -> None:
        self.deletion_status.append(
            {"person_uuid": person_uuid, "created_at": now, "status": "pending",
             "delete_verified_at": None}
        )

    def split(self, person: FakePerson, keep: str | None, split_off: list[str]) -> None:
        moving = [d for d in person.distinct_ids if d != keep] if keep else split_off
        moving = [d for d in moving if d in person.distinct_ids]
        if len(moving) >= len(person.distinct_ids):
            moving = moving[1:]
        for d in moving:
            person.distinct_ids.remove(d)
            del self.by_distinct_id[d]
            self.add_person([d])

    # -- other resources -------------------------------------------------------------------

    def _seed_definitions(self) -> None:
        names = [("$browser", 1, "String"), ("$current_url", 1, "String"), ("email", 2, "String"),
                 ("plan", 2, "String"), ("revenue", 1, "Numeric"), ("$session_duration", 3, "Numeric")]
        for i, (name, type_, ptype) in enumerate(names):
            did = str(uuidlib.UUID(int=self.id * 1000 + i, version=4))
            self.property_definitions[did] = {
                "id": did, "name": name, "description": None, "tags": [],
                "is_numerical": ptype == "Numeric", "updated_at": None, "updated_by": None,
                "is_seen_on_filtered_events": None, "property_type": ptype, "verified": False,
                "verified_at": None, "verified_by": None, "hidden": False, "type": type_,
            }
