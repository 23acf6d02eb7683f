"""`HistoryWriter`: records one turn by consuming the engine's event stream.

    writer = HistoryWriter(store, session_id, query, models)   # the turn is written now
    async with fanout.run() as events:
        async for event in events:
            writer.apply(event)                                 # cheap: buffers in memory
    writer.close()                                              # always (use try/finally)

    retry = writer.restart([spec])    # or HistoryWriter.resume(store, turn_id, [spec]): records
                                      # those models again into the same turn, replacing answers

Streamed text is appended to the database in batches: when `apply` sees that the last flush is
older than ``flush_interval`` (0.5 s) or that ``FLUSH_CHARS`` of text are waiting (a fast, long
answer is not held in memory), on every terminal event, and from a small timer thread so that
text which arrived just before a stall is not held back either. A SIGKILL therefore loses
at most about ``flush_interval`` of text. `close` marks every response that has not ended as
``interrupted`` (its partial text is kept) and the turn as ``interrupted`` unless the fan-out
finished; a finished turn is ``done`` once every response in it has ended (a retry may still be
recording into it). A database error never reaches the fan-out: recording stops and `error` says
why.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.answer_cap import finished_state
from core.config import ModelSpec
from core.consensus.records import Consensus
from core.events import (
    Cancelled,
    ConsensusUpdated,
    Event,
    Failed,
    FanoutFinished,
    FanoutStarted,
    Finished,
    FirstToken,
    Loading,
    ModelStats,
    ReasoningDelta,
    Started,
    Synthesis,
    TerminalEvent,
    TextDelta,
    UsageReported,
)
from core.history.records import TERMINAL_STATES, ResponseProgress, TurnHandle
from core.history.sqlite import HistoryError
from core.history.store import HistoryStore
from core.results import SynthesisResult, consensus_json, source_json

DEFAULT_FLUSH_INTERVAL_S = 0.5
FLUSH_CHARS = 1 << 20


@dataclass(slots=True)
class _Pending:
    """One response's state in memory, and the text not yet flushed."""

    response_id: int
    provider: str
    state: str = "queued"
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    waiting: int = 0  # characters in text and reasoning not flushed yet
    finish_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    status: int | None = None
    ttft_ms: float | None = None
    stats: ModelStats = field(default_factory=ModelStats)
    attempts: int = 0
    dirty: bool = False

    def take(self) -> ResponseProgress:
        text, reasoning = "".join(self.text), "".join(self.reasoning)
        self.text.clear()
        self.reasoning.clear()
        self.dirty, self.waiting = False, 0
        s = self.stats
        return ResponseProgress(
            response_id=self.response_id,
            text_tail=text,
            reasoning_tail=reasoning,
            provider=self.provider,
            state=self.state,
            finish_reason=self.finish_reason,
            error=self.error,
            error_kind=self.error_kind,
            status=self.status,
            ttft_ms=s.ttft_ms if s.ttft_ms is not None else self.ttft_ms,
            total_ms=s.total_ms,
            tokens_in=s.tokens_in,
            tokens_out=s.tokens_out,
            tokens_per_s=s.tokens_per_s,
            attempts=max(self.attempts, s.attempts),
        )


class HistoryWriter:
    def __init__(
        self,
        store: HistoryStore,
        session_id: str,
        query: str,
        models: Sequence[ModelSpec],
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        timer: bool = True,
    ) -> None:
        """Write the turn (and a queued response per model) at once. Raises HistoryError."""
        self._setup(
            store, store.begin_turn(session_id, query, models), models, flush_interval, clock, timer
        )

    @classmethod
    def resume(
        cls,
        store: HistoryStore,
        turn_id: int,
        models: Sequence[ModelSpec],
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        timer: bool = True,
    ) -> HistoryWriter:
        """Record ``models`` again into an existing turn: their earlier answers are replaced,
        the other models' answers are kept. Raises HistoryError."""
        writer = cls.__new__(cls)
        handle = store.restart_responses(turn_id, models)
        writer._setup(store, handle, models, flush_interval, clock, timer)
        return writer

    def restart(self, models: Sequence[ModelSpec]) -> HistoryWriter:
        """A writer recording ``models`` again into this writer's turn (see `resume`)."""
        return HistoryWriter.resume(
            self._store,
            self.turn.turn_id,
            models,
            flush_interval=self._interval,
            clock=self._clock,
            timer=self._thread is not None,
        )

    def _setup(
        self,
        store: HistoryStore,
        turn: TurnHandle,
        models: Sequence[ModelSpec],
        flush_interval: float,
        clock: Callable[[], float],
        timer: bool,
    ) -> None:
        self._store = store
        self.turn: TurnHandle = turn
        self._pending = {
            spec.name: _Pending(self.turn.response_ids[spec.name], spec.provider) for spec in models
        }
        self._interval = flush_interval
        self._clock = clock
        self._last_flush = clock()
        self._lock = threading.Lock()
        self._wall_ms: float | None = None
        self._finished = False
        self._consensus: Consensus | None = None
        self._synthesis = SynthesisResult()
        self._consensus_dirty = False
        self._closed = False
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if timer:
            self._thread = threading.Thread(
                target=self._tick, name="quorum-history-flush", daemon=True
            )
            self._thread.start()

    @property
    def session_id(self) -> str:
        return self.turn.session_id

    def apply(self, event: Event) -> None:
        """Fold one engine event in; flushes when due. Never raises for a database problem."""
        with self._lock:
            if self._closed:
                return
            if isinstance(event, FanoutFinished):
                self._finished, self._wall_ms = True, event.wall_ms
                return
            if isinstance(event, FanoutStarted):
                if event.context:  # what every model was given: the turn keeps it for exports
                    self._record_context(event)
                return
            if isinstance(event, ConsensusUpdated | Synthesis):
                self._fold_consensus(event)
                return
            pending = getattr(event, "model", None)
            entry = self._pending.get(pending) if isinstance(pending, str) else None
            if entry is None:
                return
            entry.dirty = True
            terminal = _fold(entry, event)
            due = self._clock() - self._last_flush >= self._interval
            if terminal or due or entry.waiting >= FLUSH_CHARS:
                self._flush_locked()

    def _record_context(self, event: FanoutStarted) -> None:
        if self.error is not None:
            return
        try:
            self._store.set_turn_context(
                self.turn.session_id, self.turn.seq, [source_json(s) for s in event.context]
            )
        except (sqlite3.Error, HistoryError) as exc:
            self.error = f"history recording stopped: {exc}"

    def _fold_consensus(self, event: ConsensusUpdated | Synthesis) -> None:
        if isinstance(event, ConsensusUpdated):
            self._consensus = event.consensus
        else:
            self._synthesis.apply(event.event)
        self._consensus_dirty = True
        if isinstance(event, ConsensusUpdated) or isinstance(event.event, TerminalEvent):
            self._flush_locked()

    def _record_consensus(self) -> None:
        self._consensus_dirty = False
        if self._consensus is None:
            return
        body = consensus_json(self._consensus, self._synthesis, self._consensus.asked)
        try:
            self._store.set_turn_consensus(self.turn.session_id, self.turn.seq, body)
        except (sqlite3.Error, HistoryError) as exc:
            self.error = f"history recording stopped: {exc}"

    def flush(self) -> None:
        """Write everything buffered now."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush, mark unfinished responses interrupted, end the turn. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._closed:
                return
            for entry in self._pending.values():
                if entry.state not in TERMINAL_STATES:
                    entry.state, entry.dirty = "interrupted", True
            self._flush_locked()
            self._closed = True
            if self.error is None:
                try:
                    if self._finished:
                        self._store.end_turn_if_settled(self.turn.turn_id, self._wall_ms)
                    else:
                        self._store.end_turn(self.turn.turn_id, "interrupted", self._wall_ms)
                except sqlite3.Error as exc:
                    self.error = f"could not record the end of the turn: {exc}"

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                if self._clock() - self._last_flush >= self._interval:
                    self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = self._clock()
        if self.error is not None:
            return
        if self._consensus_dirty:
            self._record_consensus()
        batch = [entry.take() for entry in self._pending.values() if entry.dirty]
        if not batch or self.error is not None:
            return
        try:
            self._store.write_progress(batch)
        except sqlite3.Error as exc:
            self.error = f"history recording stopped: {exc}"


def _fold(entry: _Pending, event: Event) -> bool:
    """Apply a model event to its entry; True when the event ends the response."""
    if isinstance(event, TextDelta):
        entry.text.append(event.text)
        entry.waiting += len(event.text)
        entry.state = "streaming"
    elif isinstance(event, ReasoningDelta):
        entry.reasoning.append(event.text)
        entry.waiting += len(event.text)
        entry.state = "streaming"
    elif isinstance(event, Started):
        entry.provider, entry.attempts, entry.state = event.provider, event.attempt, "streaming"
    elif isinstance(event, Loading):
        entry.state = "loading"
    elif isinstance(event, FirstToken):
        entry.ttft_ms = event.ttft_ms
    elif isinstance(event, UsageReported):
        entry.stats = ModelStats(
            ttft_ms=entry.stats.ttft_ms,
            tokens_in=event.tokens_in,
            tokens_out=event.tokens_out,
            attempts=entry.stats.attempts,
        )
    elif isinstance(event, Failed):
        entry.state, entry.stats = "failed", event.stats
        entry.error, entry.error_kind, entry.status = event.message, str(event.kind), event.status
        return True
    elif isinstance(event, Cancelled):
        entry.state, entry.stats, entry.error = "cancelled", event.stats, "cancelled"
        return True
    elif isinstance(event, Finished):
        entry.state, entry.stats = finished_state(event.finish_reason), event.stats
        entry.finish_reason, entry.error = event.finish_reason, event.message
        return True
    return False
