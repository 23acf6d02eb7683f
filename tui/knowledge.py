"""The app's knowledge base: opened, warmed and searched on one background thread of its own.

After the first paint the app asks for a warm-up: the knowledge base is opened (SQLite only) and,
when it holds anything, the embedder and chromadb are loaded, so the first question does not
wait for them. Every use runs in order on that thread, so the event loop never waits for the
store, and a question asked during the warm-up waits for it there. While retrieval is off nothing
is opened; an empty knowledge base is never warmed (its searches are one SQLite count). A failing
store (unreachable, a changed embedder) costs a one-line note per question, as in `quorum ask`,
and the question goes out without sources.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from core.config import Settings
from core.events import Source

if TYPE_CHECKING:  # the store loads the embedder and chromadb: only on the knowledge thread
    from core.store.embedder import Embedder
    from core.store.kb import KnowledgeBase

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Retrieved:
    sources: tuple[Source, ...] = ()
    problem: str | None = None  # why there are no sources, when the store failed


class AppKnowledge:
    def __init__(
        self, settings: Settings, *, embedder: Callable[[], Embedder] | None = None
    ) -> None:
        """``embedder``: the app's one embedder (shared with the consensus), made on first use."""
        self.settings = settings
        self._embedder = embedder
        self.enabled = settings.store.rag  # the palette's "Retrieval" toggle
        self.empty: bool | None = None  # known once the knowledge base has been opened
        self._executor: ThreadPoolExecutor | None = None
        self._kb: KnowledgeBase | None = None
        self._closed = False

    # --- from the event loop (never blocks) -----------------------------------------------
    def warm_soon(self) -> None:
        """Load what a search needs in the background (the app calls it after first paint)."""
        if self.enabled:
            self._submit(self._warm)

    def toggle(self) -> bool:
        self.enabled = not self.enabled
        self.warm_soon()
        return self.enabled

    async def retrieve(self, question: str) -> Retrieved:
        """The sources for ``question`` (none while retrieval is off), searched off the loop."""
        if not self.enabled or not question.strip():
            return Retrieved()
        future = self._submit(lambda: self._search(question))
        return Retrieved() if future is None else await asyncio.wrap_future(future)

    def idle(self) -> Future[None] | None:
        """Done once every job queued so far has run (for tests)."""
        return self._submit(lambda: None)

    def close(self) -> None:
        """Close the knowledge base after the running job."""
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            with suppress(RuntimeError):
                self._executor.submit(self._close_kb)
            self._executor.shutdown(wait=False)

    def _submit(self, job: Callable[[], T]) -> Future[T] | None:
        if self._closed:
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quorum-kb")
        try:
            return self._executor.submit(job)
        except RuntimeError:  # shut down meanwhile
            return None

    # --- on the knowledge thread --------------------------------------------------------------
    def _open(self) -> KnowledgeBase:
        if self._kb is None:
            from core.store.kb import KnowledgeBase

            shared = self._embedder() if self._embedder is not None else None
            self._kb = KnowledgeBase.open(self.settings, embedder=shared)
        return self._kb

    def _warm(self) -> None:
        if self._closed:
            return
        # A failure here is reported by the question that meets it, with its own note.
        with suppress(Exception):
            kb = self._open()
            self.empty = kb.is_empty()
            if not self.empty:
                kb.warm()

    def _search(self, question: str) -> Retrieved:
        from core.store.context import search, unavailable

        problems: list[str] = []
        try:
            kb = self._open()
            sources = search(kb, question, warn=problems.append)
            self.empty = not sources and kb.is_empty()
        except Exception as exc:  # opening failed, or the catalog itself did
            return Retrieved((), " ".join(unavailable(exc).split()))
        return Retrieved(sources, problems[0] if problems else None)

    def _close_kb(self) -> None:
        if self._kb is not None:
            kb, self._kb = self._kb, None
            with suppress(Exception):  # closing at exit: nothing left to tell anyone
                kb.close()


NO_SOURCES = (
    "No sources for this question: retrieval was off, or nothing in the knowledge base matched."
)


def toggle_note(on: bool, empty: bool | None) -> str:
    """What the palette's toggle says it did."""
    if not on:
        return "Retrieval off: the next questions go without sources from the knowledge base."
    note = "Retrieval on: the next questions bring their best sources from the knowledge base."
    if empty:
        note += " It is empty for now: `quorum ingest PATH` adds files."
    return note
