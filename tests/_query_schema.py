"""PostHog's published schema for ``/query/`` (``tests/data/query-openapi.json``, transcribed from
``alchemy-run/distilled-spec-posthog``; the subset in ``shared/openapi/`` has no query API), as
JSON Schema validators for the requests the client sends and the answers the fake gives."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

DATA = Path(__file__).parent / "data" / "query-openapi.json"
#: Fields of ``Cached*Response``: every answer the query runner computes is cached and sent in
#: that form (``is_cached`` false when fresh); ``HogQLQueryResponse`` alone does not list them.
CACHE_FIELDS = ("is_cached", "last_refresh", "cache_key", "cache_target_age",
                "next_allowed_client_refresh", "calculation_trigger", "timezone")


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable`` as JSON Schema (``anyOf`` with null)."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items()
           if k not in ("nullable", "discriminator") and not k.startswith("x-")}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


@cache
def validator(component: str) -> Any:
    schemas = _json_schema(document()["components"]["schemas"])
    schema = {"$ref": f"#/components/schemas/{component}", "components": {"schemas": schemas}}
    return jsonschema_rs.validator_for(schema)


def violations(component: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in validator(component).iter_errors(instance)]


def answer_violations(component: str, answer: dict[str, Any]) -> list[str]:
    """An answer checked against ``component``, its cache fields set aside."""
    return violations(component, {k: v for k, v in answer.items() if k not in CACHE_FIELDS})
