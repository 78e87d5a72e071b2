"""2. Decoding: a 100-person page into our msgspec models vs json.loads into dicts."""

from __future__ import annotations

import json
import timeit

import msgspec

from posthog_async import Page, Person
from posthog_async._pagination import decoder_for
from posthog_async.testing._store import ProjectData


def main() -> list[tuple[str, str]]:
    project = ProjectData(1)
    project.seed_persons(100)
    body = msgspec.json.encode({"next": "http://127.0.0.1/api/projects/1/persons/?offset=100",
                                "previous": None,
                                "results": [p.to_json() for p in project.ordered()]})
    decoder = decoder_for(Page[Person])
    assert len(decoder.decode(body).results) == 100
    n = 2000
    ours = min(timeit.repeat(lambda: decoder.decode(body), number=n, repeat=5)) / n
    stdlib = min(timeit.repeat(lambda: json.loads(body), number=n, repeat=5)) / n
    print(f"page of 100 persons ({len(body):,} bytes): msgspec models {ours * 1e6:.0f} us, "
          f"json.loads dicts {stdlib * 1e6:.0f} us -> {stdlib / ours:.1f}x faster")
    return [("decode 100-person page", f"{ours * 1e6:.0f} us vs json.loads {stdlib * 1e6:.0f} us "
             f"({stdlib / ours:.1f}x faster, typed)")]


if __name__ == "__main__":
    main()
