"""Retrieved context for one question: the knowledge base's best sources, or nothing.

A store that fails (unreachable server, a changed embedder) costs a one-line warning, never the
question: it goes out without sources. An empty knowledge base is answered from SQLite alone,
without loading the embedder or chromadb.
"""

from __future__ import annotations

from collections.abc import Callable

from core.config import Settings
from core.events import Source


def retrieve(
    settings: Settings, question: str, *, warn: Callable[[str], None]
) -> tuple[Source, ...]:
    if not settings.store.rag:
        return ()
    from core.store.kb import KnowledgeBase, StoreError

    try:
        with KnowledgeBase.open(settings) as kb:
            return kb.search(question)
    except StoreError as exc:
        warn(f"no sources from the knowledge base for this question: {exc}")
        return ()
