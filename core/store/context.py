"""Retrieved context for one question: the knowledge base's best sources, or nothing.

A store that fails (unreachable server, a changed embedder) costs a one-line warning, never the
question: it goes out without sources. An empty knowledge base is answered from SQLite alone,
without loading the embedder or chromadb.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.config import Settings
from core.events import Source

if TYPE_CHECKING:
    from core.store.kb import KnowledgeBase

Warn = Callable[[str], None]


def retrieve(settings: Settings, question: str, *, warn: Warn) -> tuple[Source, ...]:
    """Open the knowledge base for this one question (``quorum ask``), unless [store] rag is off."""
    if not settings.store.rag:
        return ()
    from core.store.kb import KnowledgeBase, StoreError

    try:
        kb = KnowledgeBase.open(settings)
    except StoreError as exc:
        warn(unavailable(exc))
        return ()
    with kb:
        return search(kb, question, warn=warn)


def search(kb: KnowledgeBase, question: str, *, warn: Warn) -> tuple[Source, ...]:
    """The sources for ``question`` from a knowledge base kept open (the app's)."""
    from core.store.kb import StoreError

    try:
        return kb.search(question)
    except StoreError as exc:
        warn(unavailable(exc))
        return ()


def unavailable(exc: Exception) -> str:
    return f"no sources from the knowledge base for this question: {exc}"
