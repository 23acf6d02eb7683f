"""`HistoryStore`: sessions, turns and model responses in one SQLite file.

    store = HistoryStore.open()              # <data dir>/history.sqlite3, migrated, WAL mode
    sid = store.new_session("title")
    ...                                      # a HistoryWriter records a turn (core.history.writer)
    store.load_session(sid)                  # -> SessionRecord
    store.conversation(sid, "gpt", 10)       # -> [Message(user), Message(assistant), ...]
    store.close()

One store may be shared by threads (the TUI's UI and a writer's flush timer): every use of the
connection holds the store's lock. Several processes may open the same file (WAL, and a short
busy timeout: `BUSY_TIMEOUT_S`). Reads, opening, starting a session or turn and importing raise
HistoryError when the file is locked that long, read-only or damaged; the writer's mid-stream
writes (`write_progress`, `end_turn`) raise sqlite3.Error, which `HistoryWriter` absorbs.
A turn left ``running`` by a process that no longer exists (killed, crashed) is marked
``interrupted`` when the store is next opened; its flushed text is kept.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.config import ModelSpec
from core.history.records import (
    TERMINAL_STATES,
    ResponseProgress,
    ResponseRecord,
    SessionRecord,
    SessionSummary,
    TurnHandle,
    TurnRecord,
    TurnSummary,
)
from core.history.schema import SCHEMA_VERSION, SchemaTooNew, current_version, migrate
from core.history.sqlite import (
    BUSY_TIMEOUT_S,
    HistoryError,
    database_problem,
    default_path,
    from_json,
    fts_match_expression,
    is_busy,
    new_session_id,
    now,
    pid_alive,
    to_json,
)
from core.providers.base import Message

_CHARS_PER_TOKEN = 4  # a rough, provider-independent estimate for the conversation budget


class HistoryStore:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()

    # --- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | None = None) -> HistoryStore:
        """Open (creating and migrating if needed) the history database. Raises HistoryError."""
        path = path or default_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
        except OSError as exc:
            raise HistoryError(f"cannot open the history database {path}: {exc}") from None
        except sqlite3.Error as exc:
            raise HistoryError(database_problem(exc, path)) from None
        try:
            # A file Quorum cannot use is left byte for byte as it was: its version is read
            # before WAL mode (which rewrites the header) is switched on.
            if current_version(conn) > SCHEMA_VERSION:
                raise SchemaTooNew(current_version(conn))
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
        except SchemaTooNew as exc:
            conn.close()
            raise HistoryError(
                f"the history database {path} was written by a newer Quorum (schema version "
                f"{exc.found}; this version knows up to {SCHEMA_VERSION}). It is left as it is: "
                "upgrade Quorum, or set QUORUM_HOME to another directory"
            ) from None
        except sqlite3.Error as exc:
            conn.close()
            raise HistoryError(database_problem(exc, path)) from None
        store = cls(conn, path)
        try:
            store._recover_abandoned_turns()
        except HistoryError:
            store.close()
            raise
        except sqlite3.Error as exc:
            if not is_busy(exc):  # a writer elsewhere: the repair waits for the next open
                store.close()
                raise HistoryError(database_problem(exc, path)) from None
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _phrased(self) -> Iterator[None]:
        """Turn a SQLite failure (locked, read-only, corrupt, full) into a HistoryError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryError(database_problem(exc, self.path)) from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._phrased(), self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _recover_abandoned_turns(self) -> None:
        rows = self._query("SELECT id, writer_pid FROM turns WHERE state = 'running'")
        dead = [turn_id for turn_id, pid in rows if pid is not None and not pid_alive(pid)]
        if not dead:
            return
        with self._transaction() as conn:
            for turn_id in dead:
                conn.execute(
                    "UPDATE turns SET state = 'interrupted', writer_pid = NULL WHERE id = ?",
                    (turn_id,),
                )
                conn.execute(
                    "UPDATE responses SET state = 'interrupted' WHERE turn_id = ? AND state "
                    f"NOT IN ({', '.join('?' * len(TERMINAL_STATES))})",
                    (turn_id, *sorted(TERMINAL_STATES)),
                )

    # --- sessions ------------------------------------------------------------------------
    def new_session(self, title: str | None = None) -> str:
        session_id = new_session_id()
        stamp = now()
        with self._phrased(), self._transaction() as conn:
            conn.execute(
                "INSERT INTO sessions (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (session_id, title, stamp, stamp),
            )
        return session_id

    def resolve_session(self, id_or_prefix: str) -> str:
        """The full id of the one session whose id starts with ``id_or_prefix``."""
        text = id_or_prefix.strip()
        if not text:
            raise HistoryError("the session id is empty")
        pattern = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._query(
            "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 2", (pattern,)
        )
        if not rows:
            raise HistoryError(f"no session {text!r} in {self.path} (see `quorum history`)")
        if len(rows) > 1 and rows[0][0] != text:
            raise HistoryError(f"session id {text!r} is ambiguous; give more characters")
        return str(rows[0][0])

    def latest_session_id(self) -> str | None:
        rows = self._query("SELECT id FROM sessions ORDER BY updated_at DESC, rowid DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def list_sessions(self, limit: int = 100) -> list[SessionSummary]:
        """Sessions, most recently used first."""
        rows = self._query(
            """
            SELECT s.id, s.title, s.created_at, s.updated_at,
                   (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id),
                   (SELECT t.query FROM turns t WHERE t.session_id = s.id
                    ORDER BY t.seq DESC LIMIT 1)
            FROM sessions s ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?
            """,
            (limit,),
        )
        return [SessionSummary(*row) for row in rows]

    def load_session(self, session_id: str) -> SessionRecord:
        """Everything stored about one session. Raises HistoryError if there is no such id."""
        rows = self._query(
            "SELECT id, title, created_at, updated_at FROM sessions WHERE id = ?", (session_id,)
        )
        if not rows:
            raise HistoryError(f"no session {session_id!r} in {self.path}")
        turns = self._query(
            "SELECT id, seq, query, created_at, state, finished_at, wall_ms, context_json, "
            "consensus_json FROM turns WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        responses: dict[int, list[ResponseRecord]] = {}
        for row in self._query(
            f"SELECT r.turn_id, {_RESPONSE_SELECT} FROM responses r JOIN turns t "
            "ON t.id = r.turn_id WHERE t.session_id = ? ORDER BY r.turn_id, r.seq",
            (session_id,),
        ):
            responses.setdefault(row[0], []).append(ResponseRecord(*row[1:]))
        sid, title, created_at, updated_at = rows[0]
        return SessionRecord(
            id=sid,
            title=title,
            created_at=created_at,
            updated_at=updated_at,
            turns=tuple(
                TurnRecord(
                    seq=seq,
                    query=query,
                    created_at=created,
                    state=state,
                    finished_at=finished,
                    wall_ms=wall,
                    context=from_json(context),
                    consensus=from_json(consensus),
                    responses=tuple(responses.get(turn_id, ())),
                )
                for turn_id, seq, query, created, state, finished, wall, context, consensus in turns
            ),
        )

    # --- queries -------------------------------------------------------------------------
    def recent_queries(self, limit: int = 500) -> list[str]:
        """Distinct queries, newest first (for Up/Down recall and Ctrl+R search)."""
        found: dict[str, None] = {}
        with self._lock:
            # Newest first and stop early: cheap however long the history is.
            for (query,) in self._conn.execute("SELECT query FROM turns ORDER BY id DESC"):
                found.setdefault(query)
                if len(found) >= limit:
                    break
        return list(found)

    def recent_turns(self, limit: int = 50) -> list[TurnSummary]:
        return self._summaries("1 = 1", (), limit)

    def search(self, text: str, limit: int = 50) -> list[TurnSummary]:
        """Turns whose query or any answer contains every word of ``text`` (prefixes match:
        ``pyth`` finds "Python"). Newest first. Any text is accepted; no FTS syntax leaks."""
        match = fts_match_expression(text)
        if match is None or limit <= 0:
            return []
        # Row ids grow with time (a turn's responses are inserted with it), so walking both
        # indexes newest first and stopping at `limit` turns each finds the newest matches.
        by_query = self._newest_turn_ids(
            "SELECT rowid FROM turns_fts WHERE turns_fts MATCH ? ORDER BY rowid DESC", match, limit
        )
        by_answer = self._newest_turn_ids(
            "SELECT r.turn_id FROM responses_fts JOIN responses r ON r.id = responses_fts.rowid "
            "WHERE responses_fts MATCH ? ORDER BY responses_fts.rowid DESC",
            match,
            limit,
        )
        ids = sorted(set(by_query) | set(by_answer), reverse=True)[:limit]
        if not ids:
            return []
        return self._summaries(f"t.id IN ({', '.join('?' * len(ids))})", ids, limit)

    def _newest_turn_ids(self, sql: str, match: str, limit: int) -> list[int]:
        found: dict[int, None] = {}
        with self._lock:
            for (turn_id,) in self._conn.execute(sql, (match,)):
                found.setdefault(turn_id)
                if len(found) >= limit:
                    break
        return list(found)

    def turn_summaries(self, keys: Iterable[tuple[str, int]]) -> list[TurnSummary]:
        """Summaries for (session_id, seq) keys, in the order given; unknown keys are skipped.

        The hook for meaning search: a vector index stores these keys and turns its hits into
        summaries here, ranked as it likes.
        """
        found: list[TurnSummary] = []
        for session_id, seq in keys:
            found += self._summaries("t.session_id = ? AND t.seq = ?", (session_id, seq), 1)
        return found

    def _summaries(self, where: str, params: Sequence[Any], limit: int) -> list[TurnSummary]:
        rows = self._query(
            f"""
            SELECT t.session_id, t.seq, t.query, t.created_at, t.state,
                   (SELECT COUNT(*) FROM responses r WHERE r.turn_id = t.id
                    AND r.state IN ('done', 'cut')),
                   (SELECT COUNT(*) FROM responses r WHERE r.turn_id = t.id)
            FROM turns t WHERE {where} ORDER BY t.id DESC LIMIT ?
            """,
            (*params, limit),
        )
        return [TurnSummary(*row) for row in rows]

    def conversation(
        self,
        session_id: str,
        model_name: str,
        max_turns: int,
        max_tokens: int | None = None,
        *,
        follow_up: str = "own",
    ) -> list[Message]:
        """``model_name``'s conversation in a session: user/assistant pairs, oldest first.

        With ``follow_up="own"`` the assistant side is the model's own answer, and only turns
        it completed (state ``done``, non-blank text) are included: a failed, cancelled, cut or
        interrupted answer is left out together with its question, because a truncated answer
        would misstate what the model said. With ``"synthesis"`` it is the turn's synthesis
        wherever there is one (so every model continues from the same answer), and the
        model's own completed answer where there is none. At most the last ``max_turns``
        pairs, and when ``max_tokens`` is given only as many of the newest pairs as fit in it
        (estimated at 4 characters a token).
        """
        if max_turns <= 0:
            return []
        synthesis = (
            "json_extract(t.consensus_json, '$.synthesis')" if follow_up == "synthesis" else "NULL"
        )
        rows = self._query(
            f"""
            SELECT query, answer FROM (
                SELECT t.seq, t.query, COALESCE(NULLIF(TRIM({synthesis}), ''),
                    CASE WHEN r.state = 'done' AND TRIM(r.text) != '' THEN r.text END) AS answer
                FROM turns t LEFT JOIN responses r ON r.turn_id = t.id AND r.model = ?
                WHERE t.session_id = ?
            ) WHERE answer IS NOT NULL ORDER BY seq DESC LIMIT ?
            """,
            (model_name, session_id, max_turns),
        )
        budget = None if max_tokens is None else max_tokens * _CHARS_PER_TOKEN
        pairs: list[tuple[str, str]] = []
        for query, text in rows:
            if budget is not None:
                budget -= len(query) + len(text)
                if budget < 0:
                    break
            pairs.append((query, text))
        messages: list[Message] = []
        for query, text in reversed(pairs):
            messages += [Message("user", query), Message("assistant", text)]
        return messages

    # --- later features attach data to a turn ----------------------------------------------
    def set_turn_context(self, session_id: str, seq: int, context: Any) -> None:
        """Store the retrieval context a turn used (any JSON value)."""
        self._set_turn_json("context_json", session_id, seq, context)

    def set_turn_consensus(self, session_id: str, seq: int, consensus: Any) -> None:
        """Store a turn's consensus result (any JSON value)."""
        self._set_turn_json("consensus_json", session_id, seq, consensus)

    def _set_turn_json(self, column: str, session_id: str, seq: int, value: Any) -> None:
        with self._transaction() as conn:
            changed = conn.execute(
                f"UPDATE turns SET {column} = ? WHERE session_id = ? AND seq = ?",
                (to_json(value), session_id, seq),
            ).rowcount
        if not changed:
            raise HistoryError(f"no turn {seq} in session {session_id!r}")

    # --- recording (used by HistoryWriter) --------------------------------------------------
    def begin_turn(self, session_id: str, query: str, models: Sequence[ModelSpec]) -> TurnHandle:
        """Write a new turn and one queued response per model, before the fan-out starts.

        Raises HistoryError when it cannot (the database is locked, read-only or damaged)."""
        stamp = now()
        with self._phrased(), self._transaction() as conn:
            if not conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                raise HistoryError(f"no session {session_id!r} in {self.path}")
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()
            turn_id = conn.execute(
                "INSERT INTO turns (session_id, seq, query, created_at, state, writer_pid) "
                "VALUES (?, ?, ?, ?, 'running', ?)",
                (session_id, seq, query, stamp, os.getpid()),
            ).lastrowid
            assert turn_id is not None
            ids: dict[str, int] = {}
            for index, spec in enumerate(models):
                response_id = conn.execute(
                    "INSERT INTO responses (turn_id, seq, model, provider, model_id, state, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                    (turn_id, index, spec.name, spec.provider, spec.model, stamp),
                ).lastrowid
                assert response_id is not None
                ids[spec.name] = response_id
            conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (stamp, session_id))
        return TurnHandle(turn_id, session_id, int(seq), ids)

    def write_progress(self, batch: Sequence[ResponseProgress]) -> None:
        """Append streamed text and update fields of several responses in one transaction."""
        stamp = now()
        with self._transaction() as conn:
            conn.executemany(
                """
                UPDATE responses SET text = text || ?, reasoning = reasoning || ?, provider = ?,
                    state = ?, finish_reason = ?, error = ?, error_kind = ?, status = ?,
                    ttft_ms = ?, total_ms = ?, tokens_in = ?, tokens_out = ?, tokens_per_s = ?,
                    attempts = ?, updated_at = ?
                WHERE id = ?
                """,
                [
                    (
                        p.text_tail,
                        p.reasoning_tail,
                        p.provider,
                        p.state,
                        p.finish_reason,
                        p.error,
                        p.error_kind,
                        p.status,
                        p.ttft_ms,
                        p.total_ms,
                        p.tokens_in,
                        p.tokens_out,
                        p.tokens_per_s,
                        p.attempts,
                        stamp,
                        p.response_id,
                    )
                    for p in batch
                ],
            )

    def end_turn(self, turn_id: int, state: str, wall_ms: float | None) -> None:
        stamp = now()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE turns SET state = ?, wall_ms = ?, finished_at = ?, writer_pid = NULL "
                "WHERE id = ?",
                (state, wall_ms, stamp, turn_id),
            )
            conn.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = "
                "(SELECT session_id FROM turns WHERE id = ?)",
                (stamp, turn_id),
            )

    # --- import ----------------------------------------------------------------------------
    def add_session(self, record: SessionRecord) -> str:
        """Store a whole session (an import). Keeps its id unless that id is taken, in which
        case the session gets a new one. Returns the id used. All or nothing: raises
        HistoryError, with nothing written, when the database refuses any of it."""
        session_id = record.id
        with self._phrased(), self._transaction() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                session_id = new_session_id()
            conn.execute(
                "INSERT INTO sessions (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (session_id, record.title, record.created_at, record.updated_at),
            )
            for turn in record.turns:
                turn_id = conn.execute(
                    "INSERT INTO turns (session_id, seq, query, created_at, state, finished_at, "
                    "wall_ms, context_json, consensus_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        turn.seq,
                        turn.query,
                        turn.created_at,
                        turn.state,
                        turn.finished_at,
                        turn.wall_ms,
                        to_json(turn.context),
                        to_json(turn.consensus),
                    ),
                ).lastrowid
                conn.executemany(
                    f"INSERT INTO responses (turn_id, seq, {_RESPONSE_COLUMNS}) "
                    f"VALUES (?, ?, {', '.join('?' * len(_RESPONSE_FIELDS))})",
                    [
                        (turn_id, index, *(getattr(r, name) for name in _RESPONSE_FIELDS))
                        for index, r in enumerate(turn.responses)
                    ],
                )
        return session_id

    # --- retries: record some models again into an existing turn ----------------------------
    def restart_responses(self, turn_id: int, models: Sequence[ModelSpec]) -> TurnHandle:
        """Record ``models`` again in an existing turn (a retry): each one's response row goes
        back to ``queued`` with no text or figures (a model the turn lacks gets a new row), and
        the turn is ``running`` again. The handle's response ids are those models' only."""
        stamp = now()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT session_id, seq FROM turns WHERE id = ?", (turn_id,)
            ).fetchone()
            if row is None:
                raise HistoryError(f"no turn {turn_id} in {self.path}")
            ids: dict[str, int] = {}
            for spec in models:
                conn.execute(
                    "INSERT INTO responses (turn_id, seq, model, provider, model_id, state, "
                    "updated_at) VALUES (?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM responses "
                    "WHERE turn_id = ?), ?, ?, ?, 'queued', ?) ON CONFLICT (turn_id, model) DO "
                    "UPDATE SET provider = excluded.provider, model_id = excluded.model_id, "
                    "state = 'queued', text = '', reasoning = '', finish_reason = NULL, "
                    "error = NULL, error_kind = NULL, status = NULL, ttft_ms = NULL, "
                    "total_ms = NULL, tokens_in = NULL, tokens_out = NULL, tokens_per_s = NULL, "
                    "attempts = 0, updated_at = excluded.updated_at",
                    (turn_id, turn_id, spec.name, spec.provider, spec.model, stamp),
                )
                (ids[spec.name],) = conn.execute(
                    "SELECT id FROM responses WHERE turn_id = ? AND model = ?",
                    (turn_id, spec.name),
                ).fetchone()
            conn.execute(
                "UPDATE turns SET state = 'running', finished_at = NULL, writer_pid = ? "
                "WHERE id = ?",
                (os.getpid(), turn_id),
            )
            conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (stamp, row[0]))
        return TurnHandle(turn_id, str(row[0]), int(row[1]), ids)

    def end_turn_if_settled(self, turn_id: int, wall_ms: float | None) -> bool:
        """End a turn as ``done`` if every one of its responses has ended; else leave it
        ``running`` for the writer still recording into it (a retry). A turn keeps the wall
        time of its first fan-out. True when the turn was ended."""
        stamp = now()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE turns SET wall_ms = COALESCE(wall_ms, ?) WHERE id = ?", (wall_ms, turn_id)
            )
            (unsettled,) = conn.execute(
                "SELECT COUNT(*) FROM responses WHERE turn_id = ? AND state NOT IN "
                f"({', '.join('?' * len(TERMINAL_STATES))})",
                (turn_id, *sorted(TERMINAL_STATES)),
            ).fetchone()
            if unsettled:
                return False
            conn.execute(
                "UPDATE turns SET state = 'done', finished_at = ?, writer_pid = NULL WHERE id = ?",
                (stamp, turn_id),
            )
            conn.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = "
                "(SELECT session_id FROM turns WHERE id = ?)",
                (stamp, turn_id),
            )
        return True


_RESPONSE_FIELDS = tuple(ResponseRecord.__dataclass_fields__)
_RESPONSE_COLUMNS = ", ".join(_RESPONSE_FIELDS)
_RESPONSE_SELECT = ", ".join(f"r.{name}" for name in _RESPONSE_FIELDS)
