"""Journals as older versions wrote them: a journal of this version, rewritten into format 4 (one
project, not recorded; ids and aliases keyed without a project) or format 3 (no call numbering
either), table by table as those versions created them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

#: Format 4's ids and aliases tables, as ``jobs/_schema.py`` created them before format 5.
FORMAT_4_IDS = ("CREATE TABLE ids (kind TEXT NOT NULL, id TEXT NOT NULL, chunk INTEGER NOT NULL, "
                "person TEXT, outcome TEXT, reason TEXT, PRIMARY KEY (kind, id)) WITHOUT ROWID")
FORMAT_4_ALIASES = ("CREATE TABLE aliases (id TEXT PRIMARY KEY, person TEXT NOT NULL) "
                    "WITHOUT ROWID")
#: Keys format 5 added to ``meta``.
NEW_META = ("project_selection", "not_covered_organizations", "verification")


def downgrade(path: Path, version: int) -> None:
    """Rewrite the single-project journal at ``path`` (no run holds it) into ``version`` 4 or 3."""
    assert version in (3, 4)
    db = sqlite3.connect(path)
    try:
        projects = {row[0] for row in db.execute("SELECT DISTINCT project FROM ids")}
        assert len(projects) <= 1, "formats 3 and 4 had one project per journal"
        db.execute("DROP INDEX ids_by_chunk")
        db.execute("ALTER TABLE ids RENAME TO ids_new")
        db.execute(FORMAT_4_IDS)
        db.execute("INSERT INTO ids SELECT kind, id, chunk, person, outcome, reason FROM ids_new")
        db.execute("DROP TABLE ids_new")
        db.execute("CREATE INDEX ids_by_chunk ON ids (chunk)")
        db.execute("ALTER TABLE aliases RENAME TO aliases_new")
        db.execute(FORMAT_4_ALIASES)
        db.execute("INSERT INTO aliases SELECT id, person FROM aliases_new")
        db.execute("DROP TABLE aliases_new")
        db.execute("ALTER TABLE chunks DROP COLUMN project")
        if version == 3:
            for column in ("in_flight", "first_seq", "last_seq", "bound"):
                db.execute(f"ALTER TABLE chunks DROP COLUMN {column}")
        db.execute("DROP TABLE projects")
        db.execute("DROP TABLE checks")
        db.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in NEW_META])
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        db.commit()
    finally:
        db.close()
