"""The fake's HogQL engine: HogQL parsed by sqlglot (ClickHouse dialect), run by DuckDB.

Why these two. PostHog's own parser (the ``hogql-parser`` wheel, installable here) is a C++
extension that builds ``posthog.hogql.ast`` objects, so it cannot be imported without PostHog's
server code. sqlglot parses ClickHouse SQL, which HogQL is, into an AST we can check and rewrite
the way PostHog's printer does (placeholders, ``properties.email``, the 100-row default, the
50,000 cap, the OFFSET ban, unknown tables). sqlglot's own Python executor scans every row of
every table for every query: a million persons paged 10,000 at a time would take minutes, so
the rewritten AST is transpiled to DuckDB (in-process, columnar, a page of a million-row table
in milliseconds). Both live in the ``testing-sql`` extra; ``import posthog_async.testing`` works
without them and a query then gets a clear error.

Memory. The fake keeps persons compact (properties generated from a seed until changed), and so
does the engine: a person is a UUID, a seed, a creation time and, only if changed, its
properties as JSON; the ``persons`` view generates the seeded properties in SQL. A snapshot of a
project is rebuilt when persons are added, deleted or split, and a changed person's properties
are refreshed before each query, so answers are current (PostHog's HogQL lags its database; the
fake does not, unless a test wants it to: ``QueryEngine.frozen``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ._errors import FakeAPIError, validation_error
from ._store import ProjectData

if TYPE_CHECKING:
    import duckdb
    from sqlglot import exp

__all__ = ["QueryEngine", "HogQLResult", "OFFSET_NOT_ALLOWED_MESSAGE", "DEFAULT_ROWS", "MAX_ROWS",
           "clamp_limit", "engine_missing"]

#: ``posthog/hogql/user_query_validator.py`` (PostHog/posthog@19194eff).
OFFSET_NOT_ALLOWED_MESSAGE = (
    "OFFSET is not supported on queries made with a personal API key. "
    "For pagination, use keyset pagination on the `timestamp` column, e.g. "
    "`WHERE timestamp > :last_seen_timestamp ORDER BY timestamp LIMIT N`. "
    "For bulk data extraction, use batch exports: https://posthog.com/docs/cdp/batch-exports")
#: ``DEFAULT_RETURNED_ROWS`` and ``MAX_SELECT_RETURNED_ROWS`` (``posthog/hogql/constants.py``).
DEFAULT_ROWS = 100
MAX_ROWS = 50_000


def clamp_limit(value: Any) -> int:
    """``HogQLHasMorePaginator.from_limit_context``: default 100, at most 50,000."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return DEFAULT_ROWS
    return min(value, MAX_ROWS)


TABLES = ("persons", "person_distinct_ids", "raw_persons", "raw_person_distinct_ids")
_INSTALL = ('the fake PostHog answers HogQL with sqlglot and DuckDB: pip install '
            '"posthog-async-client[testing-sql]"')
_UUID_SHAPED = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][\w.]*)\s*\}")
_TYPE_NAMES = {"UUID": "UUID", "VARCHAR": "String", "BIGINT": "Int64", "INTEGER": "Int32",
               "HUGEINT": "Int128", "BOOLEAN": "Bool", "DOUBLE": "Float64", "FLOAT": "Float32",
               "DATE": "Date", "TIMESTAMP WITH TIME ZONE": "DateTime64(6, 'UTC')",
               "TIMESTAMP": "DateTime64(6, 'UTC')", "JSON": "String", '"NULL"': "Nullable(Nothing)"}
_PLANS_SQL = "['free', 'pro', 'team', 'enterprise']"  # ProjectData's _PLANS, in SQL
_SEEDED_PROPERTIES = (  # FakePerson.properties of a person whose properties never changed
    """'{"email":"user' || s.seed || '@example.com","name":"User ' || s.seed || """
    f"""'","plan":"' || {_PLANS_SQL}[s.seed % 4 + 1] || '"}}'""")
_CONVERSIONS = {  # ClickHouse/HogQL functions sqlglot leaves anonymous -> DuckDB types
    "touuid": "UUID", "tostring": "VARCHAR", "toint": "BIGINT", "toint64": "BIGINT",
    "toint32": "INTEGER", "tofloat": "DOUBLE", "tofloat64": "DOUBLE", "todate": "DATE",
    "todatetime": "TIMESTAMPTZ", "todatetime64": "TIMESTAMPTZ", "tobool": "BOOLEAN",
}
_RENAMES = {"grouparray": "list"}


def engine_missing() -> str | None:
    """Why HogQL cannot run here (the extra is not installed), or ``None``."""
    try:
        import duckdb  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        return _INSTALL
    return None


def query_error(message: str) -> FakeAPIError:
    """``ValidationError(str(e), code)`` of ``posthog/api/query.py`` for an exposed HogQL error."""
    return validation_error(message, code="invalid_input")


@dataclass
class HogQLResult:
    """What ``execute_hogql_query`` gives back: rows, columns, ``[name, type]`` pairs, paging."""

    results: list[list[Any]]
    columns: list[str]
    types: list[list[str]]
    hogql: str
    has_more: bool | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class _Snapshot:
    con: duckdb.DuckDBPyConnection
    shape: tuple[int, int, int, int]
    changed: dict[str, str] = field(default_factory=dict)  # uuid -> properties JSON in the table


class QueryEngine:
    """One DuckDB database per project, kept in step with the fake's persons."""

    def __init__(self, *, allow_offset: bool = False) -> None:
        self.allow_offset = allow_offset
        #: When true, snapshots are not refreshed: answers lag the data, as PostHog's do.
        self.frozen = False
        self._snapshots: dict[int, _Snapshot] = {}
        self.rebuilds = 0

    def close(self) -> None:
        for snapshot in self._snapshots.values():
            snapshot.con.close()
        self._snapshots.clear()

    # -- data -----------------------------------------------------------------------------

    def _snapshot(self, project: ProjectData) -> _Snapshot:
        shape = (len(project.persons), len(project.by_distinct_id), project._next_id,
                 id(project.ordered()))
        snapshot = self._snapshots.get(project.id)
        if snapshot is not None and (self.frozen or snapshot.shape == shape):
            if not self.frozen:
                self._refresh_properties(project, snapshot)
            return snapshot
        if snapshot is not None:
            snapshot.con.close()
        snapshot = self._snapshots[project.id] = self._build(project, shape)
        self.rebuilds += 1
        return snapshot

    def _build(self, project: ProjectData, shape: tuple[int, int, int, int]) -> _Snapshot:
        """Load the project into DuckDB: UUIDs, seeds and distinct ids from Python, everything
        else (creation times, seeded properties, ``is_identified``) computed in SQL, the table
        sorted by ``id`` so a keyset page reads only the row groups after its key."""
        import duckdb

        ids: list[str] = []
        seeds: list[int] = []
        dids: list[str] = []
        owners: list[str] = []
        changed: dict[str, str] = {}
        encode = msgspec.json.encode
        for person in project.ordered():
            ids.append(person.uuid)
            seeds.append(person.seed)
            if person._properties is not None:
                changed[person.uuid] = encode(person._properties).decode()
            for distinct_id in person.distinct_ids:
                dids.append(distinct_id)
                owners.append(person.uuid)
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TEMP TABLE _seeded AS SELECT unnest($1)::UUID AS id, "
                    "unnest($2)::BIGINT AS seed", [ids, seeds])
        del ids, seeds
        con.execute("CREATE TABLE _pdi AS SELECT unnest($1)::VARCHAR AS distinct_id, "
                    "unnest($2)::UUID AS person_id", [dids, owners])
        del dids, owners
        con.execute("CREATE TEMP TABLE _changed (id UUID, props VARCHAR)")
        if changed:
            con.executemany("INSERT INTO _changed VALUES (?::UUID, ?)", list(changed.items()))
        con.execute(f"""CREATE TABLE _persons AS
            SELECT s.id AS id, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(s.seed) AS created_at,
                   coalesce(c.props, {_SEEDED_PROPERTIES}) AS properties,
                   coalesce(i.identified, false) AS is_identified
            FROM _seeded AS s LEFT JOIN _changed AS c ON c.id = s.id
            LEFT JOIN (SELECT person_id, bool_or(NOT regexp_full_match(distinct_id,
                         '{_UUID_SHAPED.pattern[1:-1]}')) AS identified
                       FROM _pdi GROUP BY person_id) AS i ON i.person_id = s.id
            ORDER BY s.id""")
        con.execute("DROP TABLE _seeded")
        con.execute("DROP TABLE _changed")
        team = int(project.id)
        con.execute(f"CREATE VIEW persons AS SELECT id, created_at, {team} AS team_id, properties, "
                    "is_identified FROM _persons")
        con.execute(f"CREATE VIEW person_distinct_ids AS SELECT distinct_id, person_id, {team} "
                    "AS team_id FROM _pdi")
        con.execute("CREATE VIEW raw_persons AS SELECT *, false AS is_deleted, 0 AS version "
                    "FROM persons")
        con.execute("CREATE VIEW raw_person_distinct_ids AS SELECT *, false AS is_deleted, "
                    "0 AS version FROM person_distinct_ids")
        return _Snapshot(con, shape, changed)

    def _refresh_properties(self, project: ProjectData, snapshot: _Snapshot) -> None:
        """Persons whose properties changed since the snapshot (PATCH, update_property...)."""
        encode = msgspec.json.encode
        updates = []
        for person in project.ordered():
            own = person._properties
            if own is not None:
                text = encode(own).decode()
                if snapshot.changed.get(person.uuid) != text:
                    snapshot.changed[person.uuid] = text
                    updates.append((text, person.uuid))
        if updates:
            snapshot.con.executemany("UPDATE _persons SET properties = ? WHERE id = ?::UUID",
                                     updates)

    # -- queries --------------------------------------------------------------------------

    def run(self, project: ProjectData, sql: str, values: Mapping[str, Any] | None) -> HogQLResult:
        """Run one HogQL query as PostHog's ``HogQLQueryRunner`` does for a personal API key."""
        missing = engine_missing()
        if missing:
            raise FakeAPIError(500, "server_error", "error", missing)
        import duckdb
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError, TokenError

        text = fill_placeholders(sql, values or {})
        try:
            tree = sqlglot.parse_one(text, read="clickhouse")
        except (ParseError, TokenError) as exc:
            raise query_error(f"Syntax error: {_first_line(str(exc))}") from None
        if not isinstance(tree, (exp.Select, exp.Union)):
            raise query_error("Only SELECT queries can be run (a HogQLQuery is read-only).")
        self._check(tree)
        paginated = False
        if isinstance(tree, exp.Select):
            tree = _rewrite_columns(tree)
            limit = tree.args.get("limit")
            if limit is None:
                paginated = True
                tree.set("limit", exp.Limit(expression=exp.Literal.number(DEFAULT_ROWS + 1)))
            else:
                value = limit.expression
                if isinstance(value, exp.Literal) and value.is_int and int(value.this) > MAX_ROWS:
                    limit.set("expression", exp.Literal.number(MAX_ROWS))
        for node in list(tree.walk()):
            _translate(node)
        snapshot = self._snapshot(project)
        try:
            cursor = snapshot.con.execute(tree.sql(dialect="duckdb"))
            description = cursor.description or []
            rows = cursor.fetchall()
        except duckdb.Error as exc:
            raise query_error(_first_line(str(exc))) from None
        columns = [d[0] for d in description]
        types = [[name, _TYPE_NAMES.get(str(d[1]), _array_type(str(d[1])))]
                 for name, d in zip(columns, description)]
        results = [[_jsonable(cell) for cell in row] for row in rows]
        if paginated:
            more = len(results) > DEFAULT_ROWS
            return HogQLResult(results[:DEFAULT_ROWS], columns, types, sql, more, DEFAULT_ROWS, 0)
        return HogQLResult(results, columns, types, sql)

    def _check(self, tree: exp.Expression) -> None:
        from sqlglot import exp

        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            name = ".".join(part.name for part in table.parts)
            if name not in TABLES and name not in ctes:
                raise query_error(f"Unknown table `{name}`.")
        if self.allow_offset:
            return
        for node in tree.walk():
            if isinstance(node, exp.Offset):
                raise query_error(OFFSET_NOT_ALLOWED_MESSAGE)


def fill_placeholders(sql: str, values: Mapping[str, Any]) -> str:
    """``{name}`` outside quotes becomes the value as a constant (lists become tuples), as
    ``replace_placeholders`` does; an unknown name is PostHog's 400."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"`":
            end = i + 1
            while end < n and sql[end] != char:
                end += 2 if sql[end] == "\\" else 1
            out.append(sql[i:end + 1])
            i = end + 1
            continue
        match = _PLACEHOLDER.match(sql, i) if char == "{" else None
        if match:
            name = match.group(1)
            if name not in values:
                known = ", ".join(sorted(values)) or "none"
                raise query_error(f"Placeholder {{{name}}} is not available in this context. "
                                  f"You can use the following: {known}")
            out.append(_literal(values[name]))
            i = match.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_literal(v) for v in value) + (",)" if len(value) == 1 else ")")
    raise query_error(f"Placeholder values must be constants or lists, not {type(value).__name__}")


def _rewrite_columns(select: exp.Select) -> exp.Select:
    """Name every selected column as HogQL does (``properties.email`` -> ``email``)."""
    from sqlglot import exp

    named: list[Any] = []
    for expression in select.expressions:
        if isinstance(expression, (exp.Alias, exp.Star)) or (
                isinstance(expression, exp.Column) and not _is_property(expression)):
            named.append(expression)
            continue
        name = (expression.name if isinstance(expression, exp.Column)
                else expression.sql(dialect="clickhouse"))
        named.append(exp.alias_(expression, name, quoted=True))
    select.set("expressions", named)
    return select


def _is_property(column: exp.Column) -> bool:
    """``properties.x``, ``p.properties.x``: HogQL's JSON property access."""
    return column.table == "properties" or column.text("db") == "properties"


def _translate(node: Any) -> None:
    """HogQL/ClickHouse-isms DuckDB does not have, rewritten in place."""
    from sqlglot import exp

    if isinstance(node, exp.Column) and _is_property(node):
        if node.text("db") == "properties":  # p.properties.email parsed as catalog.db.table
            owner: exp.Expression = exp.column("properties", table=node.text("catalog") or None)
            key = node.table
        else:
            owner = exp.column("properties", table=node.text("db") or None)
            key = node.name
        path = exp.Literal.string('$."' + key.replace('"', '\\"') + '"')
        node.replace(exp.func("json_extract_string", owner, path))
    elif isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
        name = node.name.lower()
        if name in _CONVERSIONS and len(node.expressions) == 1:
            node.replace(exp.cast(node.expressions[0], _CONVERSIONS[name]))
        elif name in _RENAMES:
            node.set("this", _RENAMES[name])
        elif name == "uniqexact" and len(node.expressions) == 1:
            node.replace(exp.Count(this=exp.Distinct(expressions=[node.expressions[0]])))
    elif isinstance(node, exp.Count) and node.this is None and not node.expressions:
        node.set("this", exp.Star())


def _array_type(duck_type: str) -> str:
    if duck_type.endswith("[]"):
        return f"Array({_TYPE_NAMES.get(duck_type[:-2], 'String')})"
    return "String"


def _jsonable(value: Any) -> Any:
    """A DuckDB cell as PostHog's JSON renderer writes it."""
    if isinstance(value, uuidlib.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z").replace(".000Z", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "query failed"
