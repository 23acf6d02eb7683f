"""The app's view of history: `core.history` when it is installed, else an in-memory stand-in.

The TUI only sees the small types below, so the screens do not depend on how the store keeps
its records.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from core import paths
from core.config import ModelSpec
from core.events import Event
from core.results import FanoutResult

if TYPE_CHECKING:
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


def open_history(enabled: bool = True) -> tuple[History, str | None]:
    """The persistent store if possible, else memory; the second value explains a fallback."""
    if not enabled:
        return MemoryHistory(), None
    from tui.history_store import StoreHistory

    try:
        return StoreHistory.open(), None
    except Exception as exc:  # a broken history file must not stop the app
        return MemoryHistory(), f"history unavailable, kept in memory only: {exc}"


def _now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M")


class _MemoryRecorder:
    def __init__(self, sink: list[tuple[str, FanoutResult]], query: str) -> None:
        self.result = FanoutResult(query=query)
        sink.append((_now(), self.result))

    def apply(self, event: Event) -> None:
        self.result.apply(event)

    def close(self) -> None:
        pass


class MemoryHistory:
    persistent = False

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._sessions: dict[str, list[tuple[str, FanoutResult]]] = {}
        self._started: dict[str, str] = {}
        self._current = ""
        self.new_session()

    def recent_queries(self, limit: int = 500) -> list[str]:
        runs = [r.query for s in self._sessions.values() for _, r in s]
        return list(reversed(runs))[:limit]

    def record(self, query: str, models: Sequence[ModelSpec]) -> Recorder:
        return _MemoryRecorder(self._sessions[self._current], query)

    def new_session(self) -> None:
        self._current = str(next(self._ids))
        self._sessions[self._current] = []
        self._started[self._current] = _now()

    def sessions(self, search: str = "") -> list[SessionInfo]:
        needle = search.casefold()
        out = []
        for sid, runs in reversed(self._sessions.items()):
            if not runs:
                continue
            texts = [r.query for _, r in runs] + [
                a.text for _, r in runs for a in r.responses.values()
            ]
            if needle and not any(needle in t.casefold() for t in texts):
                continue
            out.append(SessionInfo(sid, runs[0][1].query, self._started[sid], len(runs)))
        return out

    def session_queries(self, session_id: str) -> list[QueryRecord]:
        return [
            QueryRecord(
                r.query,
                tuple(AnswerRecord(a.model, a.text, a.error_text) for a in r.responses.values()),
                when,
            )
            for when, r in self._sessions.get(session_id, [])
        ]

    def conversation(self, model: str, max_turns: int) -> list[Message]:
        messages: list[Message] = []
        for _, run in self._sessions[self._current][-max_turns:] if max_turns else []:
            answer = run.responses.get(model)
            if answer is not None and answer.ok:
                from core.providers.base import Message

                messages += [Message("user", run.query), Message("assistant", answer.text)]
        return messages

    def export(self, fmt: ExportFormat = "md") -> Path:
        records = self.session_queries(self._current)
        if not records:
            raise ValueError("this session has no answers to export yet")
        target = paths.data_dir() / "exports"
        target.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = target / f"session-{stamp}.md"
        path.write_text(render_markdown(records), encoding="utf-8")
        return path

    def close(self) -> None:
        pass


def render_markdown(records: Sequence[QueryRecord]) -> str:
    out: list[str] = []
    for record in records:
        out.append(f"# {record.query}\n")
        for answer in record.answers:
            out.append(f"## {answer.model}\n")
            out.append(answer.text if answer.error is None else f"*{answer.error}*")
            out.append("")
    return "\n".join(out) + "\n"


def as_str(value: Any) -> str:
    return "" if value is None else str(value)
