"""`KnowledgeBase`: the catalog (SQLite), the vector index (chromadb) and the embedder together.

    with KnowledgeBase.open(settings) as kb:
        sources = kb.search("how do I rotate the keys?")     # -> tuple[Source, ...]

Opening is cheap: SQLite only. The embedder and chromadb load on the first search or write, and
`is_empty` answers without them, so a question costs nothing extra while the knowledge base is
empty. Files live under ``<data dir>/store/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from core import paths
from core.config import ModelSpec, Settings, StoreSettings
from core.events import Source
from core.store.catalog import Catalog, PendingVectors, StoredChunk
from core.store.embedder import BuiltinEmbedder, Embedder, EmbeddingError, HttpEmbedder
from core.store.index import (
    HISTORY_COLLECTION,
    KB_COLLECTION,
    EmbeddingMismatch,
    IndexError_,
    VectorIndex,
    WriterLock,
    make_client,
)
from core.store.retrieval import Mode, cosine, rank

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

SYNC_BATCH = 1000
T = TypeVar("T")


class StoreError(Exception):
    """The knowledge base cannot do what was asked; the message says why (and what to do)."""


def store_dir() -> Path:
    return paths.data_dir() / "store"


def make_embedder(store: StoreSettings, models: Sequence[ModelSpec]) -> Embedder:
    if store.embedding == "builtin":
        return BuiltinEmbedder()
    kind, _, model = store.embedding.partition(":")
    serving = [m for m in models if m.name == store.embedding_model] or [
        m for m in models if m.provider == kind
    ]
    spec = serving[0]  # the config loader checked that one exists
    return HttpEmbedder(kind, model, spec.base_url, spec.resolve_api_key())


class KnowledgeBase:
    def __init__(
        self,
        settings: StoreSettings,
        models: Sequence[ModelSpec] = (),
        *,
        root: Path | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.root = root or store_dir()
        self._models = tuple(models)
        self._embedder = embedder
        self.catalog = _open_catalog(self.root / "catalog.sqlite3")
        self._client: ClientAPI | None = None
        self._indexes: dict[str, VectorIndex] = {}
        self.lock = WriterLock(self.root / "writer.lock")

    @classmethod
    def open(cls, settings: Settings, **kwargs: object) -> KnowledgeBase:
        return cls(settings.store, settings.models, **kwargs)  # type: ignore[arg-type]

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.catalog.close()
        client, self._client = self._client, None
        self._indexes.clear()
        # chromadb keeps a store's System (its SQLite files, its worker threads) in a
        # process-wide cache until the last client on that path is closed (older releases
        # have no close: there it stays until the process exits).
        release = getattr(client, "close", None)
        if release is not None:
            release()

    # --- parts, loaded on first use -------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings, self._models)
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        """The knowledge base's collection."""
        return self.collection(KB_COLLECTION)

    def collection(self, name: str) -> VectorIndex:
        """A collection of this store (one chromadb client per store, shared by them)."""
        if name not in self._indexes:
            if self._client is None:
                try:
                    self._client = make_client(self.root / "chroma", self.settings.url)
                except IndexError_ as exc:
                    raise StoreError(str(exc)) from None
            self._indexes[name] = VectorIndex(self._client, self.embedder, name)
        return self._indexes[name]

    def warm(self) -> None:
        """Load the embedder and open the index now (the TUI calls this after first paint)."""
        self.embedder.embed(["warm-up"])
        if not self.is_empty():
            self.guarded(lambda: self.index.count())

    def check_embedder(self) -> None:
        """The catalog's vectors must come from the configured embedder."""
        built_with = self.catalog.meta("embedder")
        if built_with is None:
            self.catalog.set_meta("embedder", self.embedder.name)
        elif built_with != self.embedder.name:
            raise StoreError(
                f"the knowledge base was built with the embedder {built_with!r}, but [store] "
                f"embedding is now {self.embedder.name!r}; run `quorum kb rebuild` to re-embed "
                "it with the new one (or set the embedding back)"
            )

    def is_empty(self) -> bool:
        if self.settings.url:
            return bool(self.guarded(lambda: self.index.count() == 0))
        return not self.catalog.has_chunks()

    # --- reading ----------------------------------------------------------------------------
    def search(
        self, query: str, *, top_k: int | None = None, mode: Mode = "hybrid"
    ) -> tuple[Source, ...]:
        """The best chunks for ``query``, best first; () when the knowledge base is empty."""
        if self.is_empty():
            return ()
        self.check_embedder()
        top_k = top_k or self.settings.top_k
        pool = max(4 * top_k, 20)
        vector = self.embed([query])[0]
        vector_hits: list[tuple[str, float]] = []
        if mode != "keyword":
            hits = self.guarded(lambda: self.index.query(vector, pool))
            vector_hits = [(h.id, h.similarity) for h in hits]
        keyword_hits = self.catalog.keyword_search(query, pool) if mode != "vector" else []
        missing = [i for i in keyword_hits if i not in dict(vector_hits)]
        similarity = {i: cosine(vector, v) for i, v in self.catalog.vectors(missing).items()}
        ranked = rank(
            vector_hits,
            keyword_hits,
            similarity,
            top_k=top_k,
            min_score=self.settings.min_score,
            mode=mode,
        )
        chunks = self.catalog.chunks([r.id for r in ranked])
        remote = [r.id for r in ranked if r.id not in chunks]
        if remote:  # a shared server knows chunks that other machines ingested
            chunks.update(self.guarded(lambda: self._remote_chunks(remote)))
        return tuple(_source(chunks[r.id], r.similarity) for r in ranked if r.id in chunks)

    def _remote_chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        got = self.index.collection.get(ids=list(ids), include=["documents", "metadatas"])
        out: dict[str, StoredChunk] = {}
        for item, doc, meta in zip(
            got["ids"], got["documents"] or [], got["metadatas"] or [], strict=False
        ):
            m = dict(meta or {})
            out[item] = StoredChunk(
                item,
                str(m.get("path", "")),
                str(m.get("title", "")),
                tuple(h for h in str(m.get("headings", "")).split("\x1f") if h),
                str(m.get("unit", "line")),
                int(str(m.get("start", 0))),
                int(str(m.get("end", 0))),
                doc or "",
            )
        return out

    # --- writing ----------------------------------------------------------------------------
    def sync(self, wait_s: float = 30.0) -> bool:
        """Copy into the vector index what it lacks. False when another process holds the
        writer lock: it catches the index up (from this same catalog) before it lets go."""
        with self.lock.hold(wait_s) as held:
            if not held:
                return False
            while True:
                batch = self.catalog.pending(SYNC_BATCH)
                if not batch.ids and not batch.tombstones:
                    return True
                self.guarded(partial(self._apply, batch))
                self.catalog.mark_indexed(batch.ids, batch.tombstones)

    def _apply(self, batch: PendingVectors) -> None:
        self.index.delete(batch.tombstones)
        self.index.upsert(batch.ids, batch.vectors, batch.metadatas, batch.documents)

    def rebuild(self) -> int:
        """Re-embed every chunk with the configured embedder and rebuild the index."""
        rows = self.catalog.all_chunks()
        vectors: dict[str, list[float]] = {}
        for start in range(0, len(rows), 256):
            part = rows[start : start + 256]
            embedded = self.embed([embedding_text(c.headings, c.title, c.text) for c in part])
            vectors.update((c.id, v) for c, v in zip(part, embedded, strict=True))
        with self.lock.hold() as held:
            if not held:
                raise StoreError("another Quorum process is writing the knowledge base; try again")
            for name in (KB_COLLECTION, HISTORY_COLLECTION):  # both were in the old space
                self.guarded(self.collection(name).drop)
                self._indexes.pop(name, None)
            self.catalog.clear_history_keys()
            self.catalog.set_vectors(vectors)
            self.catalog.mark_all_unindexed()
            self.catalog.set_meta("embedder", self.embedder.name)
        self.sync()
        return len(rows)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors from the configured embedder; its failures become StoreError."""
        try:
            return self.embedder.embed(texts)
        except EmbeddingError as exc:
            raise StoreError(str(exc)) from None

    def guarded(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except StoreError:
            raise
        except (IndexError_, EmbeddingMismatch) as exc:
            raise StoreError(str(exc)) from None
        except Exception as exc:  # chromadb's own errors are untyped
            where = self.settings.url or str(self.root / "chroma")
            raise StoreError(f"the vector store at {where} failed: {exc}") from None


def embedding_text(headings: Sequence[str], title: str, text: str) -> str:
    """What is embedded for a chunk: its heading trail (or title), then its text."""
    return f"{' › '.join(headings) or title}\n{text}"


def _open_catalog(path: Path) -> Catalog:
    from core.store.catalog import CatalogError

    try:
        return Catalog.open(path)
    except CatalogError as exc:
        raise StoreError(str(exc)) from None


def _source(chunk: StoredChunk, similarity: float) -> Source:
    return Source(
        id=chunk.id,
        source=chunk.source,
        title=" › ".join(chunk.headings) or chunk.title,
        location=chunk.location,
        score=max(0.0, min(1.0, similarity)),
        text=chunk.text,
    )
