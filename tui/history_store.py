"""`History` backed by `core.history` (SQLite)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.config import ModelSpec
from core.history import HistoryStore, HistoryWriter
from core.providers.base import Message
from tui.history_types import (
    ExportFormat,
    QueryRecord,
    Recorder,
    SessionInfo,
    query_records,
    write_export,
)


class StoreHistory:
    persistent = True

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self._session_id: str | None = None  # created with the first question, not at start

    @property
    def session_id(self) -> str:
        if self._session_id is None:
            self._session_id = self.store.new_session()
        return self._session_id

    @classmethod
    def open(cls) -> StoreHistory:
        return cls(HistoryStore.open())

    def recent_queries(self, limit: int = 500) -> list[str]:
        return self.store.recent_queries(limit)

    def record(self, query: str, models: Sequence[ModelSpec]) -> Recorder:
        return HistoryWriter(self.store, self.session_id, query, models)

    def new_session(self) -> None:
        self._session_id = None

    def sessions(self, search: str = "") -> list[SessionInfo]:
        if search.strip():
            hits = self.store.search(search)
            seen: dict[str, SessionInfo] = {}
            for hit in hits:
                if hit.session_id not in seen:
                    seen[hit.session_id] = SessionInfo(hit.session_id, hit.query, hit.created_at, 0)
            return list(seen.values())
        return [
            SessionInfo(s.id, s.title or s.last_query or "(empty)", s.updated_at, s.turn_count)
            for s in self.store.list_sessions()
            if s.turn_count
        ]

    def session_queries(self, session_id: str) -> list[QueryRecord]:
        return query_records(self.store.load_session(session_id))

    def conversation(self, model: str, max_turns: int) -> list[Message]:
        if self._session_id is None:
            return []
        return self.store.conversation(self._session_id, model, max_turns)

    def export(self, fmt: ExportFormat = "md") -> Path:
        if self._session_id is None:
            return write_export(None, fmt)
        return write_export(self.store.load_session(self._session_id), fmt)

    def close(self) -> None:
        self.store.close()
