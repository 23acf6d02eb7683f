"""What the TUI sees of history: small records, the `History` and `Recorder` protocols, and the
one export path. Implemented by `tui.history_store` (SQLite) and `tui.history_memory`.

Times are ISO 8601 strings in UTC as `core.history` keeps them; the screens format them with
`tui.timefmt.human_time`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from core import paths
from core.config import ModelSpec
from core.events import Event

if TYPE_CHECKING:  # core.history pulls in the providers (httpx): not before the first paint
    from core.history.records import SessionRecord
    from core.providers.base import Message

ExportFormat = Literal["md", "json", "html"]


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    model: str
    text: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueryRecord:
    query: str
    answers: tuple[AnswerRecord, ...]
    when: str = ""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    title: str
    when: str
    queries: int


class Recorder(Protocol):
    def apply(self, event: Event) -> None: ...
    def close(self) -> None: ...
    def restart(self, models: Sequence[ModelSpec]) -> Recorder:
        """A recorder for ``models`` answering this turn again (their answers replaced)."""
        ...


class History(Protocol):
    persistent: bool

    def recent_queries(self, limit: int = 500) -> list[str]: ...
    def record(self, query: str, models: Sequence[ModelSpec]) -> Recorder: ...
    def new_session(self) -> None: ...
    def sessions(self, search: str = "") -> list[SessionInfo]: ...
    def session_queries(self, session_id: str) -> list[QueryRecord]: ...
    def conversation(self, model: str, max_turns: int) -> list[Message]: ...
    def export(self, fmt: ExportFormat = "md") -> Path: ...
    def close(self) -> None: ...


def query_records(record: SessionRecord) -> list[QueryRecord]:
    """A session's turns as the history screen shows them."""
    return [
        QueryRecord(
            turn.query,
            tuple(
                AnswerRecord(r.model, r.text, None if r.ok else (r.error or r.state))
                for r in turn.responses
            ),
            turn.created_at,
        )
        for turn in record.turns
    ]


def write_export(record: SessionRecord | None, fmt: ExportFormat) -> Path:
    """Export a session with `core.export` into ``<data dir>/exports``; the file's path."""
    from core.export import export_session

    if record is None or not record.turns:
        raise ValueError("this session has no answers to export yet")
    target = paths.data_dir() / "exports"
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"session-{record.id[:8]}.{fmt}"
    path.write_text(export_session(record, fmt), encoding="utf-8")
    return path
