"""The history database's schema and its migrations.

``PRAGMA user_version`` holds the number of migrations applied. Opening runs every migration
after that number, each in its own transaction together with the version bump (SQLite DDL is
transactional), so a crash mid-migration leaves the previous version intact. Append new
migrations; never edit old ones.
"""

from __future__ import annotations

import sqlite3

_TOKENIZER = "unicode61 remove_diacritics 2"

_V1 = f"""
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    title TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX sessions_by_update ON sessions(updated_at);

CREATE TABLE turns (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    query TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    finished_at TEXT,
    wall_ms REAL,
    writer_pid INTEGER,
    context_json TEXT,
    consensus_json TEXT,
    UNIQUE (session_id, seq)
);
CREATE INDEX turns_running ON turns(id) WHERE state = 'running';

CREATE TABLE responses (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    state TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    reasoning TEXT NOT NULL DEFAULT '',
    finish_reason TEXT,
    error TEXT,
    error_kind TEXT,
    status INTEGER,
    ttft_ms REAL,
    total_ms REAL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    tokens_per_s REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    UNIQUE (turn_id, model)
);
CREATE INDEX responses_by_model ON responses(model, turn_id);

CREATE VIRTUAL TABLE turns_fts USING fts5(
    query, content='turns', content_rowid='id', tokenize='{_TOKENIZER}'
);
CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN
    INSERT INTO turns_fts(rowid, query) VALUES (new.id, new.query);
END;
CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN
    INSERT INTO turns_fts(turns_fts, rowid, query) VALUES ('delete', old.id, old.query);
END;

CREATE VIRTUAL TABLE responses_fts USING fts5(
    text, content='responses', content_rowid='id', tokenize='{_TOKENIZER}'
);
CREATE TRIGGER responses_fts_insert AFTER INSERT ON responses BEGIN
    INSERT INTO responses_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER responses_fts_delete AFTER DELETE ON responses BEGIN
    INSERT INTO responses_fts(responses_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER responses_fts_update AFTER UPDATE OF text ON responses
WHEN old.text IS NOT new.text BEGIN
    INSERT INTO responses_fts(responses_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO responses_fts(rowid, text) VALUES (new.id, new.text);
END;
"""

MIGRATIONS: tuple[str, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer Quorum than this one."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to `SCHEMA_VERSION`; return the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Each migration runs in one
    IMMEDIATE transaction with its version bump, re-checking the version once it holds the write
    lock, so two processes opening a new database at the same moment migrate it once.
    """
    found = current_version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(found)
    for number in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) < number:
                for statement in statements(MIGRATIONS[number - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def statements(script: str) -> list[str]:
    """Split a script into complete statements (a trigger body's ``;`` does not end one)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {pending.strip()[:60]!r}")
    return found
