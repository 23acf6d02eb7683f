"""The history file's plumbing: where it lives, ids and times as stored, JSON columns, FTS5
queries, and SQLite errors phrased for the user."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import paths

DB_NAME = "history.sqlite3"
# How long to wait for another process's write lock before giving up (and, for `ask`, answering
# without recording): their transactions last milliseconds, so a longer wait means a stuck holder.
BUSY_TIMEOUT_S = 3.0
_SESSION_ID = re.compile(r"[0-9a-f]{16}")


class HistoryError(Exception):
    """A history problem, already phrased for the user (no traceback, no secrets)."""


def new_session_id() -> str:
    """A session id as the store makes them: 16 lowercase hex digits."""
    return uuid.uuid4().hex[:16]


def is_session_id(text: str) -> bool:
    return _SESSION_ID.fullmatch(text) is not None


def database_problem(exc: sqlite3.Error, path: Path) -> str:
    """What went wrong with the database file, phrased for the user."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if is_busy(exc):
        return (
            f"the history database {path} is locked by another process "
            f"(still busy after {BUSY_TIMEOUT_S:g} s)"
        )
    if primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return f"the history database {path} cannot be written: {exc}"
    if primary == sqlite3.SQLITE_FULL:
        return f"the disk holding the history database {path} is full"
    return (
        f"{path} is not a usable Quorum history database: {exc}. It is left as it is: move it "
        f"aside (mv {path} {path}.broken) and Quorum starts a new one; "
        f"`sqlite3 {path}.broken .recover` may rescue what it held"
    )


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc)


def default_path() -> Path:
    return paths.data_dir() / DB_NAME


def now() -> str:
    return datetime.now(UTC).isoformat()


def fts_match_expression(text: str) -> str | None:
    """Turn free text into a safe FTS5 query: every word quoted, each a prefix, all required."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid() or sys.platform == "win32":  # os.kill(pid, 0) would kill on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists but belongs to someone else
        return True
    return True
