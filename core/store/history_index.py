"""History found by meaning: a vector index derived from the history database.

SQLite (``core.history``) stays the source of truth. Every question and every finished answer is
embedded into the ``quorum_history`` collection under a key (``q:<turn id>``, ``a:<response
id>``); the keys already indexed are listed in the knowledge base's catalog, so catching up is
"embed what SQLite has and the list lacks", safe to repeat, and done by whoever holds the
writer lock. Another process that finds the lock held simply leaves the work to the holder or to
the next search. Answers are embedded from their first ``ANSWER_TOKENS`` tokens: enough to say
what an answer is about, and about 40 ms each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.history import HistoryStore
from core.history.records import TurnSummary
from core.store.index import HISTORY_COLLECTION, VectorIndex
from core.store.kb import KnowledgeBase, StoreError
from core.store.retrieval import fuse

ANSWER_CHARS = 1200  # about 250 tokens: what the model reads of an answer anyway
BATCH = 64


@dataclass(frozen=True, slots=True)
class MeaningHit:
    session_id: str
    seq: int
    similarity: float
    snippet: str  # the question or the start of the answer that matched


class HistoryIndex:
    def __init__(self, kb: KnowledgeBase, history_db: Path) -> None:
        self._kb = kb
        self._db = history_db

    @property
    def index(self) -> VectorIndex:
        return self._kb.collection(HISTORY_COLLECTION)

    def _missing(self, limit: int) -> list[tuple[str, str, str, int]]:
        """(key, text, session_id, seq) for what SQLite has and the index lacks."""
        try:
            conn = sqlite3.connect(f"file:{self._db}?mode=ro", uri=True, timeout=3.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history {self._db}: {exc}") from None
        try:
            rows = conn.execute(
                "SELECT 'q:' || t.id, t.query, t.session_id, t.seq FROM turns t"
                " UNION ALL SELECT 'a:' || r.id, substr(r.text, 1, ?), t.session_id, t.seq"
                " FROM responses r JOIN turns t ON t.id = r.turn_id"
                " WHERE r.state = 'done' AND r.text != ''",
                (ANSWER_CHARS,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the history {self._db}: {exc}") from None
        finally:
            conn.close()
        known = self._kb.catalog.history_keys()
        return [r for r in rows if r[0] not in known][:limit]

    def catch_up(self, limit: int = 10_000, wait_s: float = 0.0) -> int:
        """Embed what is missing (at most ``limit`` texts); returns how many were added."""
        with self._kb.lock.hold(wait_s) as held:
            if not held:
                return 0
            missing = self._missing(limit)
            for start in range(0, len(missing), BATCH):
                part = missing[start : start + BATCH]
                vectors = self._kb.embed([text for _, text, _, _ in part])
                self.index.upsert(
                    [key for key, _, _, _ in part],
                    vectors,
                    [{"session_id": s, "seq": q} for _, _, s, q in part],
                    [text for _, text, _, _ in part],
                )
                self._kb.catalog.add_history_keys([key for key, _, _, _ in part])
            return len(missing)

    def search(self, text: str, limit: int = 20, min_score: float = 0.35) -> list[MeaningHit]:
        """Turns whose question or an answer is close in meaning to ``text``, best first."""
        if not self._kb.catalog.history_keys():
            return []
        vector = self._kb.embed([text])[0]
        hits = self._kb.guarded(lambda: self.index.query(vector, limit * 3))
        if not hits:
            return []
        got = self._kb.guarded(
            lambda: self.index.collection.get(
                ids=[h.id for h in hits], include=["metadatas", "documents"]
            )
        )
        meta = {
            i: (m or {}, d or "")
            for i, m, d in zip(
                got["ids"], got["metadatas"] or [], got["documents"] or [], strict=False
            )
        }
        out: dict[tuple[str, int], MeaningHit] = {}
        for hit in hits:
            if hit.similarity < min_score or hit.id not in meta:
                continue
            m, doc = meta[hit.id]
            key = (str(m.get("session_id", "")), int(str(m.get("seq", 0))))
            if key not in out:
                out[key] = MeaningHit(key[0], key[1], hit.similarity, doc)
            if len(out) == limit:
                break
        return list(out.values())


@dataclass(frozen=True, slots=True)
class HistoryMatch:
    turn: TurnSummary
    snippet: str  # what matched by meaning ("" when only the words matched)
    by: str  # "words" | "meaning" | "words+meaning"


def search_history(
    settings: Settings,
    store: HistoryStore,
    text: str,
    limit: int,
    *,
    warn: Callable[[str], None],
) -> list[HistoryMatch]:
    """Past turns by their words (FTS5) and by meaning (the vector index), fused by rank.

    The index is caught up first; a store that cannot run costs a warning and leaves the
    word matches."""
    by_words = store.search(text, limit)
    meaning: list[MeaningHit] = []
    try:
        with KnowledgeBase.open(settings) as kb:
            index = HistoryIndex(kb, store.path)
            index.catch_up(wait_s=5.0)
            meaning = index.search(text, limit)
    except StoreError as exc:
        warn(f"searching by words only: {exc}")
    word_keys = [(t.session_id, t.seq) for t in by_words]
    meaning_keys = {(h.session_id, h.seq): h for h in meaning}
    ranked = [key for key, _ in fuse([word_keys, list(meaning_keys)])][:limit]
    summaries = {(t.session_id, t.seq): t for t in by_words}
    missing = [key for key in ranked if key not in summaries]
    summaries.update({(t.session_id, t.seq): t for t in store.turn_summaries(missing)})
    out = []
    for key in ranked:
        if key not in summaries:
            continue  # deleted since it was indexed
        hit = meaning_keys.get(key)
        by = "+".join(
            name for name, found in (("words", key in set(word_keys)), ("meaning", hit)) if found
        )
        out.append(HistoryMatch(summaries[key], hit.snippet if hit else "", by))
    return out
