"""The fake server's in-memory data: projects and their persons, deletion rows and other resources.

Persons are compact (``__slots__``, properties generated from a seed number until changed) so a
million of them fit in memory and seed in seconds.
"""

from __future__ import annotations

import random
import re
import time
import uuid as uuidlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["FakePerson", "ProjectData", "now_iso"]

_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_PLANS = ("free", "pro", "team", "enterprise")
_UUID_SHAPED = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: ``get_person_name``'s default display-name properties, in order.
_NAME_PROPERTIES = ("email", "name", "username")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")


def _fast_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62) | (4 << 76) | (2 << 62):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class FakePerson:
    """A person held by the offline PostHog (``server.project().by_distinct_id[...]``)."""

    __slots__ = ("_properties", "deleted", "distinct_ids", "id", "seed", "uuid")

    def __init__(self, id: int, uuid: str, distinct_ids: list[str], seed: int,
                 properties: dict[str, Any] | None = None) -> None:
        self.id = id
        self.uuid = uuid
        self.distinct_ids = distinct_ids
        self.seed = seed
        self._properties = properties
        self.deleted = False

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

    def shown_distinct_ids(self) -> list[str]:
        """PersonSerializer's order: anonymous (UUID-shaped) ids last."""
        ids = self.distinct_ids
        if len(ids) > 1:
            return sorted(ids, key=lambda d: bool(_UUID_SHAPED.match(d)))
        return list(ids)

    def display_name(self) -> str:
        """``get_person_name``: email, name or username, else the first shown distinct id, else the id."""
        props = self.properties
        for key in _NAME_PROPERTIES:
            if props.get(key):
                return str(props[key])
        ids = self.shown_distinct_ids()
        return ids[0] if ids else str(self.id)

    def to_json(self, *, minimal: bool = False) -> dict[str, Any]:
        """PostHog's ``PersonRecord``; ``minimal`` is ``MinimalPerson`` (at most 10 distinct ids)."""
        ids = self.shown_distinct_ids()
        return {
            "id": self.id,
            "name": self.display_name(),
            "distinct_ids": ids[:10] if minimal else ids,
            "properties": self.properties,
            "created_at": self.created_at(),
            "uuid": self.uuid,
            "last_seen_at": None,
        }


class ProjectData:
    """Everything one project holds. Environments share their project's data.

    Besides persons: where the project sits (``organization_id``), how PostHog lists it
    (``name``, ``is_demo``), whether the key's user may see it (``private`` projects are visible
    to organisation admins only) and ``is_pending_deletion``.
    """

    def __init__(self, project_id: int, *, seed: int = 0, organization_id: str = "",
                 name: str | None = None, is_demo: bool = False, private: bool = False,
                 is_pending_deletion: bool = False) -> None:
        self.id = project_id
        self.organization_id = organization_id
        self.name = name or ("Default project" if project_id == 1 else f"Project {project_id}")
        self.is_demo = is_demo
        self.private = private
        self.is_pending_deletion = is_pending_deletion
        #: Seconds after a request its event deletion is verified (``None``: only when
        #: :meth:`verify_event_deletions` is called), standing in for PostHog's weekly batch.
        self.event_deletion_delay: float | None = None
        self.rng = random.Random(seed)
        self._next_id = 1
        self.persons: dict[str, FakePerson] = {}
        self.by_distinct_id: dict[str, FakePerson] = {}
        self.by_id: dict[int, FakePerson] = {}
        self._order: list[FakePerson] = []
        self._order_dirty = False
        #: ``AsyncDeletion`` rows for person events by person UUID, oldest first
        #: (deletion_status answers newest first); one per person.
        self.deletion_rows: dict[str, dict[str, Any]] = {}
        #: When each pending row is verified (``time.time()``), if a delay is set.
        self._verify_at: dict[str, float] = {}
        self.recording_deletions: set[str] = set()
        self.released_distinct_ids: set[str] = set()
        self.property_definitions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.sharing: dict[str, dict[str, Any]] = {}
        #: Integration ids of kind ``slack`` (subscriptions to Slack must name one).
        self.slack_integrations: set[int] = {1}

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
        self.by_id[person.id] = person
        for d in person.distinct_ids:
            self.by_distinct_id[d] = person
        self._order.append(person)

    def seed_persons(self, n: int, *, prefix: str = "user-", anon_prefix: str = "anon-") -> range:
        """Create ``n`` persons with distinct ids ``{prefix}{i}`` for ``i`` in the returned range;
        every third person also has an ``{anon_prefix}{i}`` id."""
        rng = self.rng
        start = self._next_id
        persons = self.persons
        by_distinct = self.by_distinct_id
        by_id = self.by_id
        order = self._order
        for i in range(start, start + n):
            dids = [f"{prefix}{i}", f"{anon_prefix}{i}"] if i % 3 == 0 else [f"{prefix}{i}"]
            person = FakePerson(i, _fast_uuid(rng), dids, i)
            persons[person.uuid] = person
            by_id[i] = person
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

    def delete_person(self, person: FakePerson) -> None:
        if person.deleted:
            return
        person.deleted = True
        self._order_dirty = True
        self.persons.pop(person.uuid, None)
        self.by_id.pop(person.id, None)
        for d in person.distinct_ids:
            if self.by_distinct_id.get(d) is person:
                del self.by_distinct_id[d]

    @property
    def deletion_status(self) -> list[dict[str, Any]]:
        """The rows as PostHog answers them, oldest first (pending ones past their delay flip)."""
        self.settle_event_deletions()
        return list(self.deletion_rows.values())

    def queue_event_deletion(self, person_uuid: str, now: str) -> None:
        """An ``AsyncDeletion`` row; one per person (PostHog ignores a repeat)."""
        if person_uuid in self.deletion_rows:
            return
        self.deletion_rows[person_uuid] = {"person_uuid": person_uuid, "created_at": now,
                                           "status": "pending", "delete_verified_at": None}
        if self.event_deletion_delay is not None:
            self._verify_at[person_uuid] = time.time() + self.event_deletion_delay

    def settle_event_deletions(self, at: float | None = None) -> int:
        """Verify the rows whose delay has passed, as PostHog's batch would have by now."""
        if not self._verify_at:
            return 0
        now = time.time() if at is None else at
        due = [(u, t) for u, t in self._verify_at.items() if t <= now]
        for person_uuid, when in due:
            del self._verify_at[person_uuid]
            self._verify(self.deletion_rows[person_uuid], _iso(when))
        return len(due)

    def verify_event_deletions(self, now: str | None = None) -> int:
        """Mark every pending event deletion completed (PostHog's weekly job); returns how many."""
        done = 0
        for row in self.deletion_rows.values():
            if row["delete_verified_at"] is None:
                self._verify(row, now or now_iso())
                done += 1
        self._verify_at.clear()
        return done

    @staticmethod
    def _verify(row: dict[str, Any], when: str) -> None:
        row["delete_verified_at"] = when
        row["status"] = "completed"

    def split(self, person: FakePerson, keep: Any, split_off: list[str] | None) -> None:
        """Move distinct ids to new single-id persons (UUIDs derived from project and distinct id)."""
        if person.deleted:
            return
        if split_off is not None:
            moving = [d for d in split_off if d in person.distinct_ids]
        else:
            kept = keep if keep in person.distinct_ids else person.distinct_ids[0]
            moving = [d for d in person.distinct_ids if d != kept]
        if len(moving) >= len(person.distinct_ids):
            moving = moving[1:]
        for d in moving:
            person.distinct_ids.remove(d)
            del self.by_distinct_id[d]
            new_uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"posthog-split:{self.id}:{d}"))
            if new_uuid not in self.persons:
                self.add_person([d], {}, uuid=new_uuid)
