"""PostHog's published OpenAPI schema as a second opinion: request and response checks, and
strategies that generate schema-valid answers, on top of schemathesis.

The schema is read from ``../shared/openapi/posthog-openapi.json`` beside the checkout (never
copied into the project), or from ``$POSTHOG_OPENAPI_SCHEMA``. Where PostHog's server and its
schema disagree, ``../shared/posthog-api-notes.md`` (last section) lists the disagreements; each
one we excuse is in :data:`EXCUSES` with its item number and reason, and nothing else is.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.jsonschema import BUNDLE_STORAGE_KEY, make_validator, resolve_bundled_ref
from schemathesis.generation.jsonschema.builder import build
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.formats import get_default_format_strategies
from schemathesis.specs.openapi.utils import compile_path_template, parameter_types

SCHEMA_PATH = Path(os.environ.get(
    "POSTHOG_OPENAPI_SCHEMA",
    Path(__file__).resolve().parents[2] / "shared" / "openapi" / "posthog-openapi.json"))

#: (operation label regex, violation regex, reason): the notes' disagreements, one by one.
EXCUSES: list[tuple[str, str, str]] = [
    (r"^DELETE /api/\w+/\{\w+\}/persons/[^/]+/$", r"no operation in the schema",
     "notes item 2: the schema has no DELETE persons/{id}/; the server has it (202, empty)"),
    (r"/persons/\{id\}/(split|activity|properties_timeline)/$", r"^path/id: .* is not of type \"integer\"",
     "notes item 1: {id} typed integer on split, activity, properties_timeline; UUIDs work on every route"),
    (r"^POST .*/persons/\{id\}/split/$", r"^body",
     "notes item 4: the split body is typed PersonRecord; the server reads main_distinct_id or "
     "distinct_ids_to_split"),
    (r"^POST .*/persons/reset_person_distinct_id/$", r"^body",
     "notes item 4: reset_person_distinct_id's body is typed PersonRecord; the server reads distinct_id"),
    (r"^POST .*/persons/batch_by_(distinct_ids|uuids)/$", r"^body",
     "notes items 4 and 5: batch_by_* bodies are typed PersonRecord; the server reads distinct_ids / uuids"),
    (r"^POST .*/persons/\{id\}/delete_property/$", r"^body/\$unset: .* is not of type \"string\"",
     "notes item 4: $unset is typed string; the server also takes a list (P-C and newer)"),
    (r"^GET .*/persons/$", r"^query/properties/\d+: \"values\" is a required property",
     "found by this test, not in the notes: the schema types persons `properties` as a list of "
     "property groups (type/values); PostHog parses each item as one filter {key, value, "
     "operator, type} and silently drops items it cannot parse "
     "(posthog/models/filters/mixins/property.py@0273796d, PropertyMixin._parse_properties)"),
    (r"^GET .*/persons/$", r"\('include_total' was unexpected\)$",
     "notes item 6: the persons list sends count only with include_total, absent from the schema"),
    (r"^GET /api/users/\{uuid\}/$", r"^path/uuid: \"@me\" is not a \"uuid\"",
     "notes item 11: users/{uuid} is typed uuid; the server accepts @me"),
    (r"^GET .*/property_definitions/seen_together/$",
     r"^query: Additional properties are not allowed \(('(event_names|property_name)'(, )?)+ (was|were) unexpected\)$",
     "notes item 12: seen_together has no parameters in the schema; the server requires repeated "
     "event_names and property_name"),
    (r"^GET .*/integrations/domain-connect/check/$", r"\('domain' was unexpected\)$",
     "notes item 12: domain-connect check has no parameters in the schema; the server requires domain"),
    (r"^GET .*/subscriptions/$", r"\('deleted' was unexpected\)$",
     "notes item 13 (subscriptions): the server's list filters are the schema's plus deleted"),
    (r"^PATCH /api/\w+/\{\w+\}/session_recordings/[^/]+/sharing/$", r"no operation in the schema",
     "notes item 10 (sharing): the schema's view of the sharing viewset lacks the PATCH the server "
     "has (notes, Other resources: PATCH sets enabled, settings, password_required)"),
    (r"^POST .*/sharing/passwords/$", r"^body",
     "notes item 10: passwords/ POST is typed SharingConfiguration; the server takes raw_password and note"),
    (r"^(GET|POST) .*/persons/(funnel|funnel/correlation|trends|lifecycle|stickiness)/$",
     r"no operation in the schema",
     "the legacy actor endpoints are not in this schema subset (openapi/README.md); PostHog "
     "refuses them to personal API keys (notes, Hosts, auth, scoping)"),
    (r"^GET .*/persons/\{id\}/properties_timeline/$", r"\('date_from' was unexpected\)$",
     "notes item 1 and Hosts/auth: properties_timeline takes the insight filters, which the "
     "schema does not list (and PostHog refuses it to personal API keys)"),
]


#: Not in the schema subset (openapi/README.md); without this they would match persons/{id}/.
LEGACY_ACTORS = re.compile(r"/persons/(funnel|funnel/correlation|trends|lifecycle|stickiness)/$")


@cache
def load() -> Any:
    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(
            f"PostHog's OpenAPI schema is not at {SCHEMA_PATH}: the tests read it from "
            "../shared/openapi/ beside the checkout (or set POSTHOG_OPENAPI_SCHEMA)")
    return schemathesis.openapi.from_path(str(SCHEMA_PATH))


def raw_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return data


def _coerce(text: str, schema: Any, bundle: Any) -> Any:
    """A wire string read the way the server reads it; left a string when it does not parse."""
    if isinstance(schema, dict):
        schema = resolve_bundled_ref(schema, bundle)
    types = parameter_types(schema)
    if "integer" in types and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    if ("object" in types or "array" in types) and text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _query_value(param: Any, values: list[str]) -> tuple[Any, list[str]]:
    schema = param.validation_schema
    bundle = schema.get(BUNDLE_STORAGE_KEY) if isinstance(schema, dict) else None
    if "array" in parameter_types(schema):
        # persons `properties` is declared an array of objects; PostHog reads one JSON text.
        if len(values) == 1 and values[0].startswith("["):
            try:
                return json.loads(values[0]), []
            except ValueError:
                pass
        items = schema.get("items", {}) if isinstance(schema, dict) else {}
        return [_coerce(v, items, bundle) for v in values], []
    if len(values) != 1:
        return values[-1], [f"query/{param.name}: sent {len(values)} times but is not an array"]
    return _coerce(values[0], schema, bundle), []


def path_parameters(op: Any, url_path: str) -> dict[str, str]:
    template = compile_path_template(op.path)
    match = template.pattern.fullmatch(url_path)
    return dict(zip(template.names, map(unquote, match.groups()))) if match else {}


def request_violations(method: str, url_path: str, query: Sequence[tuple[str, str]],
                       body: Any) -> tuple[str, list[str]]:
    """``(operation label, violations)`` of a request as captured on the wire."""
    schema = load()
    op = None if LEGACY_ACTORS.search(url_path) else schema.find_operation_by_path(method, url_path)
    generic = re.sub(r"/(projects|environments)/[^/]+/", r"/\1/{project_id}/", url_path)
    if op is None:
        return f"{method} {generic}", ["no operation in the schema matches"]
    label = f"{method} {op.path}"
    problems: list[str] = []
    validator_cls = schema.adapter.jsonschema_validator_cls
    values = {k: _coerce(v, op.path_parameters.get(k).validation_schema, None)
              for k, v in path_parameters(op, url_path).items() if op.path_parameters.get(k)}
    for err in make_validator(op.path_parameters.validation_schema, validator_cls).iter_errors(values):
        problems.append(f"path/{'/'.join(map(str, err.instance_path))}: {err.message}")
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    typed: dict[str, Any] = {}
    for name, raw in grouped.items():
        param = op.query.get(name)
        if param is None:
            typed[name] = raw[0]
            continue
        typed[name], extra = _query_value(param, raw)
        problems.extend(extra)
    for err in make_validator(op.query.validation_schema, validator_cls).iter_errors(typed):
        where = "/".join(map(str, err.instance_path))
        problems.append(f"query{'/' + where if where else ''}: {err.message}")
    if body is None:
        if any(alt.is_required for alt in op.body):
            problems.append("body: request body is required")
        return label, problems
    media = op.get_body_for_media_type("application/json")
    if media is None:
        return label, [*problems, "body: the operation declares no JSON body"]
    for err in media.get_validator().iter_errors(body):
        where = "/".join(map(str, err.instance_path))
        problems.append(f"body{'/' + where if where else ''}: {err.message}")
    return label, problems


def unexcused(label: str, problems: list[str]) -> list[str]:
    return [p for p in problems
            if not any(re.search(op, label) and re.search(v, p) for op, v, _ in EXCUSES)]


def check_request(method: str, url_path: str, query: Sequence[tuple[str, str]], body: Any) -> None:
    """Fail unless the request conforms to the schema, but for the notes' excused disagreements."""
    label, problems = request_violations(method, url_path, query, body)
    left = unexcused(label, problems)
    assert not left, f"{label} does not conform to PostHog's schema: {left}"


def response_violations(method: str, url_path: str, status: int, headers: dict[str, str],
                        body: bytes) -> list[str]:
    schema = load()
    op = schema.find_operation_by_path(method, url_path)
    if op is None:
        return ["no operation in the schema matches"]
    response = schemathesis.Response(
        status_code=status, headers={k.lower(): [v] for k, v in headers.items()}, content=body,
        request=requests.Request(method, f"http://127.0.0.1{url_path}").prepare(),
        elapsed=0.0, verify=True)
    try:
        op.Case(path_parameters=path_parameters(op, url_path)).validate_response(
            response, checks=[status_code_conformance, content_type_conformance,
                              response_schema_conformance])
    except FailureGroup as group:
        return [_one_line(f) for f in group.exceptions]
    return []


def _one_line(failure: Failure) -> str:
    detail = getattr(failure, "validation_message", "") or failure.message.strip().splitlines()[0]
    path = "/".join(map(str, getattr(failure, "instance_path", []) or []))
    return f"{type(failure).__name__}: {path + ': ' if path else ''}{detail}"


def _require_all(schema: Any) -> Any:
    """Every declared property required: optional untyped ones are otherwise almost never made."""
    if isinstance(schema, list):
        return [_require_all(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (_require_all(v) if k in ("items", "additionalProperties", "allOf", "anyOf", "oneOf")
               else v) for k, v in schema.items()}
    for key in ("properties", BUNDLE_STORAGE_KEY):
        if isinstance(out.get(key), dict):
            out[key] = {name: _require_all(sub) for name, sub in out[key].items()}
    if isinstance(out.get("properties"), dict):
        wanted = {n for n, sub in out["properties"].items() if sub != {"not": {}}}
        out["required"] = sorted(set(out.get("required", [])) | wanted)
    return out


#: Properties the schema leaves free-form where PostHog's server is specific: generated answers
#: follow the server there (anything else the schema allows is still generated).
NARROWED: dict[str, tuple[dict[str, Any], str]] = {
    "deletion_errors": (
        {"type": "array", "items": {"type": "object", "additionalProperties": True, "properties": {
            "person_uuid": {"type": "string"}, "step": {"type": "string"}}}},
        "the schema types bulk_delete's deletion_errors items as any object; the server sends "
        "{person_uuid: str} or {person_uuid: str, step: str} (posthog/api/person.py@3d48c3db, "
        "posthog-server-survey.md row 5)"),
}


def _narrow(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_narrow(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _narrow(v) for k, v in schema.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        out["properties"] = {name: NARROWED[name][0] if name in NARROWED else sub
                             for name, sub in props.items()}
    return out


def answers(method: str, url_path: str, status: int, *, require_all: bool = False) -> st.SearchStrategy[Any]:
    """Schema-valid bodies of an operation's answer (``require_all``: every field present),
    with :data:`NARROWED` properties shaped as the server sends them."""
    op = load().find_operation_by_path(method, url_path)
    resolved = op.responses.find_by_status_code(status).get_schema("application/json")
    body = _narrow(resolved.schema)
    body = _require_all(body) if require_all else body
    return build(body, draft=jsonschema_rs.Draft4, formats=get_default_format_strategies())
