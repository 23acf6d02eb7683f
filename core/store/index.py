"""The vector index: a chromadb collection, embedded (``PersistentClient``) or on a server.

chromadb is imported on first use. Quorum always hands chromadb the vectors itself and always
attaches its own embedding function, so chromadb's default one (which downloads a model) is
never created or called. The collection records which embedder made its vectors; opening it
with another is `EmbeddingMismatch`, which says how to rebuild. Only one process may write an
embedded chromadb folder at a time: writers take `WriterLock` first (see `core.store.catalog`
for how the others' work is caught up).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.store.embedder import Embedder, EmbeddingError, Vector

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

KB_COLLECTION = "quorum_kb"
HISTORY_COLLECTION = "quorum_history"


class IndexError_(Exception):
    """The vector index cannot be used (unreachable server, broken folder); says why."""


class EmbeddingMismatch(IndexError_):
    """The collection was built with another embedder."""


@dataclass(frozen=True, slots=True)
class VectorHit:
    id: str
    similarity: float  # cosine similarity, 1 = same direction


class WriterLock:
    """An advisory lock file beside the chromadb folder: one writer at a time, across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def hold(self, wait_s: float = 30.0) -> Iterator[bool]:
        """Yields True when held; False when another process kept it for ``wait_s``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.05)  # polling a lock held by another process
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _embedding_function(embedder: Embedder) -> Any:
    """chromadb's EmbeddingFunction protocol over ours, registered so a reopened collection
    rebuilds it from its stored config instead of falling back to chromadb's default."""
    from chromadb.api.types import EmbeddingFunction
    from chromadb.utils.embedding_functions import (
        known_embedding_functions,
        register_embedding_function,
    )

    class QuorumEmbeddingFunction(EmbeddingFunction[list[str]]):
        def __init__(self, inner: Embedder | None, config: dict[str, Any]) -> None:
            self._inner = inner
            self._config = config

        def __call__(self, input: list[str]) -> Any:
            if self._inner is None:
                raise EmbeddingError("Quorum passes its own vectors; nothing to embed here")
            import numpy as np

            return [np.asarray(v, dtype=np.float32) for v in self._inner.embed(input)]

        @staticmethod
        def name() -> str:
            return "quorum"

        def get_config(self) -> dict[str, Any]:
            return dict(self._config)

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> QuorumEmbeddingFunction:
            return QuorumEmbeddingFunction(None, config)

        def default_space(self) -> Any:
            return "cosine"

        def supported_spaces(self) -> Any:
            return ["cosine"]

        def validate_config_update(
            self, old_config: dict[str, Any], new_config: dict[str, Any]
        ) -> None:
            if old_config.get("embedder") != new_config.get("embedder"):
                raise EmbeddingMismatch("the embedder of a collection cannot change")

        @staticmethod
        def validate_config(config: dict[str, Any]) -> None:
            return None

    if "quorum" not in known_embedding_functions:
        register_embedding_function(QuorumEmbeddingFunction)  # type: ignore[no-untyped-call]
    ef_class = known_embedding_functions["quorum"]
    return ef_class(embedder, {"embedder": embedder.name})


def make_client(directory: Path, url: str | None) -> ClientAPI:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except ImportError as exc:  # pragma: no cover - a dependency
        raise IndexError_(f"chromadb is not installed: {exc}") from None
    settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        parts = urlsplit(url)
        try:
            return chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=settings,
            )
        except Exception as exc:  # chromadb raises plain Exception/ValueError when unreachable
            raise IndexError_(f"cannot reach the Chroma server at {url}: {exc}") from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(directory), settings=settings)
    except Exception as exc:
        raise IndexError_(f"cannot open the vector store in {directory}: {exc}") from None


class VectorIndex:
    """One collection: add, delete, query by vector. Metadata carries the embedder's name."""

    def __init__(self, client: ClientAPI, embedder: Embedder, name: str = KB_COLLECTION) -> None:
        self._client = client
        self._embedder = embedder
        self.name = name
        self._collection: Collection | None = None

    @property
    def collection(self) -> Collection:
        if self._collection is None:
            self._collection = self._open()
        return self._collection

    def _open(self) -> Collection:
        ef = _embedding_function(self._embedder)
        try:
            existing = {c.name for c in self._client.list_collections()}
            if self.name in existing:
                collection = self._client.get_collection(self.name, embedding_function=ef)
                built_with = (collection.metadata or {}).get("embedder")
                if built_with != self._embedder.name:
                    raise EmbeddingMismatch(
                        f"the vector store was built with the embedder {built_with!r}, but "
                        f"[store] embedding is now {self._embedder.name!r}; run "
                        "`quorum kb rebuild` to re-embed everything with the new one "
                        "(or set the embedding back)"
                    )
                return collection
            return self._client.create_collection(
                self.name,
                embedding_function=ef,
                metadata={"embedder": self._embedder.name, "hnsw:space": "cosine"},
            )
        except IndexError_:
            raise
        except Exception as exc:
            raise IndexError_(f"cannot open the vector collection {self.name!r}: {exc}") from None

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Vector],
        metadatas: Sequence[dict[str, str | int]],
        documents: Sequence[str],
    ) -> None:
        if ids:
            self.collection.upsert(
                ids=list(ids),
                embeddings=_rows(vectors),
                metadatas=list(metadatas),
                documents=list(documents),
            )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.collection.delete(ids=list(ids))

    def count(self) -> int:
        return int(self.collection.count())

    def query(self, vector: Vector, limit: int) -> list[VectorHit]:
        if limit <= 0:
            return []
        total = self.count()
        if total == 0:
            return []
        result = self.collection.query(
            query_embeddings=_rows([vector]), n_results=min(limit, total), include=["distances"]
        )
        ids = result["ids"][0]
        distances = (result.get("distances") or [[]])[0]
        return [VectorHit(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def drop(self) -> None:
        with suppress(Exception):  # absent already: nothing to drop
            self._client.delete_collection(self.name)
        self._collection = None


def _rows(vectors: Sequence[Vector]) -> list[Sequence[float] | Sequence[int]]:
    return [list(v) for v in vectors]
