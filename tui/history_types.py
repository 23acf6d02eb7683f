"""What the TUI sees of history: small records, the `History` and `Recorder` protocols, and the
one export path. Implemented by `tui.history_store` (SQLite) and `tui.history_memory`.

Past questions are found by their words at once (`History.find_by_words`, cheap, on the event
loop) and by meaning in a worker thread (`History.find_by_meaning`, which may load the embedder
and chromadb); `merge_matches` fuses the two rankings the way ``quorum history --search`` does.

Times are ISO 8601 strings in UTC as `core.history` keeps them; the screens format them with
`tui.timefmt.human_time`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from core import paths
from core.config import ModelSpec
from core.events import Event

if TYPE_CHECKING:  # core.history pulls in the providers (httpx): not before the first paint
    from core.history.records import SessionRecord
    from core.providers.base import Message

ExportFormat = Literal["md", "json", "html"]
MatchedBy = Literal["words", "meaning", "words+meaning"]
MIN_MEANING_CHARS = 3  # one or two letters have no meaning to search for


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
    seq: int = 0  # the turn's place in its session (from 1)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    title: str
    when: str
    queries: int


@dataclass(frozen=True, slots=True)
class QueryMatch:
    """A past question found by a search; (session_id, seq) is its turn."""

    session_id: str
    seq: int
    query: str
    when: str
    by: MatchedBy = "words"
    snippet: str = ""  # what matched by meaning: the question or the start of an answer

    @property
    def key(self) -> tuple[str, int]:
        return self.session_id, self.seq


class MeaningUnavailable(Exception):
    """Searching by meaning cannot run; the message says why, in a few words."""


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
    def find_by_words(self, text: str, limit: int = 50) -> list[QueryMatch]:
        """Questions whose words (or their answers' words) match, newest first; cheap."""
        ...

    def find_by_meaning(
        self, text: str, limit: int = 20, cancelled: Callable[[], bool] = lambda: False
    ) -> list[QueryMatch]:
        """Questions close in meaning to ``text``, best first. Slow (embeds the text, and may
        load the embedder and the vector store): call it from a worker thread. ``cancelled``
        says a newer search has made this one pointless. Raises `MeaningUnavailable`."""
        ...

    def meaning_unavailable(self) -> str | None:
        """Why searching by meaning cannot run (None when it may)."""
        ...

    def session_queries(self, session_id: str) -> list[QueryRecord]: ...
    def conversation(self, model: str, max_turns: int, follow_up: str = "own") -> list[Message]: ...
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
            turn.seq,
        )
        for turn in record.turns
    ]


def merge_matches(
    by_words: Sequence[QueryMatch],
    by_meaning: Sequence[QueryMatch],
    limit: int = 50,
    key: Callable[[QueryMatch], Hashable] = lambda m: m.key,
) -> list[QueryMatch]:
    """Both rankings fused by reciprocal rank (as `core.store.history_index.search_history`),
    each ``key`` (a turn, unless told) once, marked with what found it; the meaning side
    brings the snippet."""
    from core.store.retrieval import fuse  # pure Python: no store is loaded

    words: dict[Hashable, QueryMatch] = {}
    for match in by_words:
        words.setdefault(key(match), match)
    meaning: dict[Hashable, QueryMatch] = {}
    for match in by_meaning:
        meaning.setdefault(key(match), match)
    out: list[QueryMatch] = []
    for found, _ in fuse([list(words), list(meaning)])[:limit]:
        word, near = words.get(found), meaning.get(found)
        if word is not None and near is not None:
            out.append(replace(word, by="words+meaning", snippet=near.snippet))
        elif word is not None:
            out.append(word)
        elif near is not None:
            out.append(near)
    return out


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
