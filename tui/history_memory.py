"""`History` kept in memory, for ``[history] enabled = false`` or when the store cannot open.

Each turn is a `FanoutResult` the recorders fold events into; exports and the history screen
see it as the same `core.history` records the SQLite store returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import ModelSpec
from core.events import (
    ConsensusUpdated,
    Event,
    FanoutFinished,
    FanoutStarted,
    ModelEvent,
    Synthesis,
)
from core.results import FanoutResult, ModelResult, SynthesisResult, source_json
from tui.history_types import (
    ExportFormat,
    MeaningUnavailable,
    QueryMatch,
    QueryRecord,
    Recorder,
    SessionInfo,
    query_records,
    write_export,
)

if TYPE_CHECKING:
    from core.history.records import ResponseRecord, SessionRecord
    from core.providers.base import Message


MEMORY_NOTE = "history is kept in memory only"


def _now() -> str:
    from core.history.sqlite import now

    return now()


@dataclass(slots=True)
class _Turn:
    seq: int
    created_at: str
    result: FanoutResult
    specs: dict[str, ModelSpec]
    state: str = "running"
    finished_at: str | None = None


@dataclass(slots=True)
class _Session:
    id: str
    created_at: str
    updated_at: str
    turns: list[_Turn] = field(default_factory=list)

    def record(self) -> SessionRecord:
        from core.history.records import SessionRecord, TurnRecord

        return SessionRecord(
            id=self.id,
            title=None,
            created_at=self.created_at,
            updated_at=self.updated_at,
            turns=tuple(
                TurnRecord(
                    seq=turn.seq,
                    query=turn.result.query,
                    created_at=turn.created_at,
                    state=turn.state,
                    finished_at=turn.finished_at,
                    wall_ms=turn.result.wall_ms,
                    context=[source_json(s) for s in turn.result.context] or None,
                    consensus=turn.result.consensus_json(),
                    responses=tuple(
                        _response(answer, turn.specs.get(name), self.updated_at)
                        for name, answer in turn.result.responses.items()
                    ),
                )
                for turn in self.turns
            ),
        )


def _response(answer: ModelResult, spec: ModelSpec | None, stamp: str) -> ResponseRecord:
    from core.history.records import ResponseRecord

    s = answer.stats
    return ResponseRecord(
        model=answer.model,
        provider=answer.provider or (spec.provider if spec else ""),
        model_id=spec.model if spec else answer.model,
        state=answer.state,
        text=answer.text,
        reasoning=answer.reasoning,
        finish_reason=answer.finish_reason,
        error=answer.error,
        error_kind=None if answer.error_kind is None else str(answer.error_kind),
        status=answer.status,
        ttft_ms=s.ttft_ms,
        total_ms=s.total_ms,
        tokens_in=s.tokens_in,
        tokens_out=s.tokens_out,
        tokens_per_s=s.tokens_per_s,
        attempts=s.attempts,
        updated_at=stamp,
    )


class _MemoryRecorder:
    """Folds one fan-out's events into a turn; a restart records some models again into it."""

    def __init__(self, session: _Session, turn: _Turn, models: Sequence[str]) -> None:
        self._session, self._turn, self._models = session, turn, frozenset(models)
        self._finished = False
        for name in models:  # replaced in place: the turn keeps its order of models
            turn.result.responses[name] = ModelResult(name)
        turn.result.synthesis = SynthesisResult()  # each fan-out synthesizes the turn again
        turn.state, turn.finished_at = "running", None

    def apply(self, event: Event) -> None:
        if isinstance(event, FanoutStarted):
            if event.context:  # the sources every model was given: exports show them
                self._turn.result.context = event.context
            return
        if isinstance(event, FanoutFinished):
            self._finished = True
            if self._turn.result.wall_ms is None:  # a turn keeps its first fan-out's wall time
                self._turn.result.wall_ms = event.wall_ms
            return
        if (isinstance(event, ModelEvent) and event.model in self._models) or isinstance(
            event, ConsensusUpdated | Synthesis
        ):
            self._turn.result.apply(event)

    def close(self) -> None:
        from core.history.records import TERMINAL_STATES as _TERMINAL

        answers = self._turn.result.responses
        for name in self._models:
            if answers[name].state not in _TERMINAL:
                answers[name].state = "interrupted"
        self._session.updated_at = _now()
        if not self._finished:
            self._turn.state = "interrupted"
        elif all(a.state in _TERMINAL for a in answers.values()):
            self._turn.state, self._turn.finished_at = "done", self._session.updated_at

    def restart(self, models: Sequence[ModelSpec]) -> Recorder:
        self._turn.specs.update((m.name, m) for m in models)
        return _MemoryRecorder(self._session, self._turn, [m.name for m in models])


class MemoryHistory:
    persistent = False

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._current: _Session | None = None  # created with the first question

    def _session(self) -> _Session:
        if self._current is None:
            stamp = _now()
            self._current = _Session(uuid.uuid4().hex[:16], stamp, stamp)
            self._sessions[self._current.id] = self._current
        return self._current

    def recent_queries(self, limit: int = 500) -> list[str]:
        runs = [t.result.query for s in self._sessions.values() for t in s.turns]
        return list(reversed(runs))[:limit]

    def record(self, query: str, models: Sequence[ModelSpec]) -> Recorder:
        session = self._session()
        turn = _Turn(
            len(session.turns) + 1, _now(), FanoutResult(query=query), {m.name: m for m in models}
        )
        session.turns.append(turn)
        return _MemoryRecorder(session, turn, [m.name for m in models])

    def new_session(self) -> None:
        self._current = None

    def sessions(self, search: str = "") -> list[SessionInfo]:
        needle = search.casefold()
        out = []
        for session in reversed(self._sessions.values()):
            if not session.turns:
                continue
            results = [t.result for t in session.turns]
            texts = [r.query for r in results] + [
                a.text for r in results for a in r.responses.values()
            ]
            if needle and not any(needle in t.casefold() for t in texts):
                continue
            out.append(SessionInfo(session.id, results[0].query, session.updated_at, len(results)))
        return out

    def find_by_words(self, text: str, limit: int = 50) -> list[QueryMatch]:
        """Turns whose question and answers hold every word of ``text``, newest first."""
        words = text.casefold().split()
        if not words:
            return []
        out: list[QueryMatch] = []
        for session in reversed(self._sessions.values()):
            for turn in reversed(session.turns):
                result = turn.result
                texts = " ".join([result.query, *(a.text for a in result.responses.values())])
                folded = texts.casefold()
                if all(word in folded for word in words):
                    out.append(QueryMatch(session.id, turn.seq, result.query, turn.created_at))
                    if len(out) >= limit:
                        return out
        return out

    def find_by_meaning(
        self, text: str, limit: int = 20, cancelled: Callable[[], bool] = lambda: False
    ) -> list[QueryMatch]:
        raise MeaningUnavailable(MEMORY_NOTE)

    def meaning_unavailable(self) -> str | None:
        return MEMORY_NOTE

    def session_queries(self, session_id: str) -> list[QueryRecord]:
        session = self._sessions.get(session_id)
        return [] if session is None else query_records(session.record())

    def conversation(self, model: str, max_turns: int, follow_up: str = "own") -> list[Message]:
        """As `HistoryStore.conversation`: the model's own answers, or each turn's synthesis
        where there is one."""
        from core.providers.base import Message

        pairs: list[tuple[str, str]] = []
        turns = self._current.turns if self._current is not None else []
        for turn in turns:
            answer = turn.result.responses.get(model)
            text = turn.result.synthesis.text if follow_up == "synthesis" else None
            if not (text and text.strip()) and answer is not None and answer.state == "done":
                text = answer.text
            if text and text.strip():
                pairs.append((turn.result.query, text))
        messages: list[Message] = []
        for query, text in pairs[-max_turns:] if max_turns > 0 else []:
            messages += [Message("user", query), Message("assistant", text)]
        return messages

    def export(self, fmt: ExportFormat = "md") -> Path:
        return write_export(None if self._current is None else self._current.record(), fmt)

    def close(self) -> None:
        pass
