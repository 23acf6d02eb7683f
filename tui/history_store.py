"""`History` backed by `core.history` (SQLite), with its questions found by meaning too.

The meaning index (`core.store.history_index.HistoryIndex`, in the knowledge base's store) is
opened on first use and kept for the history's life. All of its work runs in order on one
background thread of its own: catching it up after each turn ends (when the turn's `Recorder`
closes) and the searches the screens ask for from their worker threads. The catalog and chromadb
are so only ever used by that thread, the event loop never waits for them, and closing the
history closes the knowledge base after the job that is running. When another process holds the
writer lock, that process catches the index up; this one skips quietly and tries again at the
next turn or search. A store that fails (cannot open, wrong embedder, broken folder) is noted
once, and searching goes on by words only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.config import ModelSpec, Settings
from core.events import Event
from core.history import HistoryStore, HistoryWriter
from core.providers.base import Message
from tui.history_types import (
    MIN_MEANING_CHARS,
    ExportFormat,
    MeaningUnavailable,
    QueryMatch,
    QueryRecord,
    Recorder,
    SessionInfo,
    query_records,
    write_export,
)

if TYPE_CHECKING:  # the store loads chromadb and the embedder: only on the index thread
    from core.store.history_index import HistoryIndex, MeaningHit
    from core.store.kb import KnowledgeBase

T = TypeVar("T")
CANCEL_CHECK_S = 0.05  # how soon a waiting search notices that it was made pointless
CATCH_UP_BATCH = 64  # texts per catch-up step (a few seconds at most): searches run between


class MeaningIndex:
    """The history's vector index, used from one background thread only."""

    def __init__(self, history_db: Path, settings: Settings | None = None) -> None:
        self._db = history_db
        self._settings = settings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-index")
        self._kb: KnowledgeBase | None = None
        self._index: HistoryIndex | None = None
        self.problem: str | None = None  # why searching by meaning stopped, once it has
        # Catch-ups wanted (one at start: earlier sessions, other terminals) and done; a turn
        # that ends while a catch-up runs asks for one more, so none is lost.
        self._wanted, self._done = 1, 0
        self._queued = False  # a catch-up job waits in the queue (more would do nothing)
        self._closed = False

    # --- from the event loop (never blocks, never raises) --------------------------------------
    def catch_up_soon(self) -> None:
        """A turn ended: bring the index up to date in the background."""
        self._wanted += 1
        self._submit_catch_up()

    def _submit_catch_up(self) -> None:
        if self._closed or self.problem is not None or self._queued:
            return
        self._queued = True
        try:
            self._executor.submit(self._catch_up_job)
        except RuntimeError:  # shut down meanwhile
            self._queued = False

    def idle(self) -> Future[None]:
        """Done once every job queued so far has run (for tests and for a clean exit)."""
        try:
            return self._executor.submit(lambda: None)
        except RuntimeError:
            done: Future[None] = Future()
            done.set_result(None)
            return done

    def close(self) -> None:
        """Close the knowledge base after the running job; queued jobs find it closed."""
        if self._closed:
            return
        self._closed = True
        with suppress(RuntimeError):  # shut down already
            self._executor.submit(self._close_kb)
        self._executor.shutdown(wait=False)

    # --- from a worker thread ------------------------------------------------------------------
    def search(self, text: str, limit: int, cancelled: Callable[[], bool]) -> list[MeaningHit]:
        """Blocks the calling (worker) thread until the index thread has searched, or until
        ``cancelled``: a search made pointless frees its thread at once (no pile of threads
        waiting behind a long catch-up)."""
        if self.problem is not None:
            raise MeaningUnavailable(self.problem)
        try:
            future = self._executor.submit(self._search_job, text, limit, cancelled)
        except RuntimeError:
            raise MeaningUnavailable("the history is closed") from None
        while True:
            try:
                return future.result(timeout=CANCEL_CHECK_S)
            except TimeoutError:
                if cancelled():
                    future.cancel()  # never starts if it has not yet; else its result is dropped
                    return []

    # --- on the index thread -------------------------------------------------------------------
    def _catch_up_job(self) -> None:
        self._queued = False
        try:
            more = self._catch_up_step()
        except MeaningUnavailable:
            return
        if more:  # go on after whatever search was asked for meanwhile
            self._submit_catch_up()

    def _search_job(self, text: str, limit: int, cancelled: Callable[[], bool]) -> list[MeaningHit]:
        while not cancelled() and self._catch_up_step():  # today's questions first
            pass
        if cancelled():  # a newer search is queued behind this one
            return []
        index = self._open()
        return self._guarded(lambda: index.search(text, limit))

    def _catch_up_step(self) -> bool:
        """Index one batch of what is missing; True when more may be missing."""
        if self._done >= self._wanted:
            return False
        wanted = self._wanted
        index = self._open()
        added = self._guarded(lambda: index.catch_up(limit=CATCH_UP_BATCH, wait_s=0.0))
        if added < CATCH_UP_BATCH:  # all caught up, or another process holds the lock
            self._done = wanted
            return False
        return True

    def _open(self) -> HistoryIndex:
        if self._closed:
            raise MeaningUnavailable("the history is closed")
        if self.problem is not None:
            raise MeaningUnavailable(self.problem)
        if self._index is None:
            from core.store.history_index import HistoryIndex
            from core.store.kb import KnowledgeBase

            self._kb = self._guarded(lambda: KnowledgeBase.open(self._configured()))
            self._index = HistoryIndex(self._kb, self._db)
        return self._index

    def _configured(self) -> Settings:
        if self._settings is None:  # not handed over: the configuration as `quorum` finds it
            from core.config import load_settings

            self._settings = load_settings()
        return self._settings

    def _guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except MeaningUnavailable:
            raise
        except Exception as exc:  # StoreError, ConfigError, chromadb's untyped errors
            self.problem = " ".join(str(exc).split()) or type(exc).__name__
            raise MeaningUnavailable(self.problem) from None

    def _close_kb(self) -> None:
        if self._kb is not None:
            kb, self._kb, self._index = self._kb, None, None
            with suppress(Exception):  # closing at exit: nothing left to tell anyone
                kb.close()


class _IndexingRecorder:
    """A `HistoryWriter` that has the meaning index caught up once its turn is written."""

    def __init__(self, writer: Recorder, ended: Callable[[], None]) -> None:
        self._writer = writer
        self._ended = ended

    def apply(self, event: Event) -> None:
        self._writer.apply(event)

    def close(self) -> None:
        try:
            self._writer.close()
        finally:
            with suppress(Exception):  # the index is derived: the turn is saved regardless
                self._ended()

    def restart(self, models: Sequence[ModelSpec]) -> Recorder:
        return _IndexingRecorder(self._writer.restart(models), self._ended)

    def __getattr__(self, name: str) -> Any:  # the writer's own attributes (error, handle…)
        return getattr(self._writer, name)


class StoreHistory:
    persistent = True

    def __init__(self, store: HistoryStore, settings: Settings | None = None) -> None:
        self.store = store
        self._session_id: str | None = None  # created with the first question, not at start
        self.meaning = MeaningIndex(store.path, settings)

    @property
    def session_id(self) -> str:
        if self._session_id is None:
            self._session_id = self.store.new_session()
        return self._session_id

    @classmethod
    def open(cls, settings: Settings | None = None) -> StoreHistory:
        return cls(HistoryStore.open(), settings)

    def recent_queries(self, limit: int = 500) -> list[str]:
        return self.store.recent_queries(limit)

    def record(self, query: str, models: Sequence[ModelSpec]) -> Recorder:
        writer = HistoryWriter(self.store, self.session_id, query, models)
        return _IndexingRecorder(writer, self.meaning.catch_up_soon)

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

    def find_by_words(self, text: str, limit: int = 50) -> list[QueryMatch]:
        return [
            QueryMatch(t.session_id, t.seq, t.query, t.created_at)
            for t in self.store.search(text, limit)
        ]

    def find_by_meaning(
        self, text: str, limit: int = 20, cancelled: Callable[[], bool] = lambda: False
    ) -> list[QueryMatch]:
        if len(text.strip()) < MIN_MEANING_CHARS:
            return []
        hits = self.meaning.search(text, limit, cancelled)
        turns = {
            (t.session_id, t.seq): t
            for t in self.store.turn_summaries([(h.session_id, h.seq) for h in hits])
        }
        return [
            QueryMatch(h.session_id, h.seq, turn.query, turn.created_at, "meaning", h.snippet)
            for h in hits
            if (turn := turns.get((h.session_id, h.seq))) is not None  # deleted since indexed
        ]

    def meaning_unavailable(self) -> str | None:
        return self.meaning.problem

    def session_queries(self, session_id: str) -> list[QueryRecord]:
        return query_records(self.store.load_session(session_id))

    def conversation(self, model: str, max_turns: int, follow_up: str = "own") -> list[Message]:
        if self._session_id is None:
            return []
        return self.store.conversation(self._session_id, model, max_turns, follow_up=follow_up)

    def export(self, fmt: ExportFormat = "md") -> Path:
        if self._session_id is None:
            return write_export(None, fmt)
        return write_export(self.store.load_session(self._session_id), fmt)

    def close(self) -> None:
        self.meaning.close()
        self.store.close()
