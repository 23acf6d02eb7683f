"""The knowledge base's source of truth: one SQLite file of files, chunks, vectors and keywords.

chromadb holds a derived copy of the vectors for fast similarity search (`core.store.index`);
this file holds everything needed to rebuild it without embedding again. SQLite (WAL) lets
several processes write at once, which a chromadb folder does not: every writer records here,
and whoever holds the index lock copies what the index lacks (rows with ``indexed = 0``, and the
ids in ``tombstones``). Keyword search is FTS5 with BM25 over the same chunks.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.store.documents import Chunk, location

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    title TEXT NOT NULL,
    headings TEXT NOT NULL,
    unit TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    indexed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_pending ON chunks(indexed) WHERE indexed = 0;
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS history_keys (key TEXT PRIMARY KEY);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, content='chunks', content_rowid='rowid', tokenize='unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, title, text)
        VALUES ('delete', old.rowid, old.title, old.text);
    INSERT OR IGNORE INTO tombstones(id) VALUES (old.id);
END;
"""
HEADING_SEP = "\x1f"
_FTS_TOKEN = re.compile(r"[^\W_]+")  # unicode61: runs of letters and digits
# BM25 scores every chunk a keyword query matches (about 1 µs each at 100k chunks): the most
# chunks a query's candidate terms may match together (see `fts_query`)
MATCH_BUDGET = 5000
_VOCAB = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, row)"
)


class CatalogError(Exception):
    """The knowledge base file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: str
    source: str
    title: str
    headings: tuple[str, ...]
    unit: str
    start: int
    end: int
    text: str

    @property
    def location(self) -> str:
        return location(self.unit, self.start, self.end)


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    sha256: str
    size: int
    kind: str
    title: str
    chunks: int
    ingested_at: str


@dataclass(frozen=True, slots=True)
class PendingVectors:
    """What the vector index lacks: chunks to add (with their text and labels, so that a shared
    Chroma server can answer other machines too) and ids to delete."""

    ids: list[str]
    vectors: list[list[float]]
    documents: list[str]
    metadatas: list[dict[str, str | int]]
    tombstones: list[str]


def pack(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def unpack(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


def chunk_id(path: str, sha256: str, ordinal: int) -> str:
    return hashlib.sha256(f"{path}\0{sha256}\0{ordinal}".encode()).hexdigest()[:32]


STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "not",
        "of",
        "on",
        "or",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def query_terms(text: str) -> list[str]:
    """The content words of ``text``, folded: no FTS syntax from the user gets through, and stop
    words match nothing (a keyword hit means a real word)."""
    words = ["".join(ch for ch in w if ch.isalnum() or ch in "_-.") for w in text.split()]
    terms = {w.strip("-.").casefold() for w in words} - STOPWORDS
    return sorted(t for t in terms if any(ch.isalnum() for ch in t))


def fts_query(doc_counts: Mapping[str, int], budget: int | None = None) -> str | None:
    """An FTS5 query of quoted terms (``doc_counts``: how many chunks hold each) that BM25 can
    rank in bounded time: the rarest terms, while the chunks they are in add up to ``budget``,
    choose the candidates, and the commoner ones only add to the rank of candidates that hold
    them (BM25 gives them little weight anyway). When even the rarest term is in more than
    ``budget`` chunks, only chunks with every term are candidates."""
    budget = MATCH_BUDGET if budget is None else budget
    order = sorted(doc_counts, key=lambda t: (doc_counts[t], t))
    if not order:
        return None
    if len(order) > 1 and doc_counts[order[0]] > budget:
        return " AND ".join(f'"{t}"' for t in order)
    taken, matched = 1, doc_counts[order[0]]
    while taken < len(order) and matched + doc_counts[order[taken]] <= budget:
        matched += doc_counts[order[taken]]
        taken += 1
    rare = " OR ".join(f'"{t}"' for t in order[:taken])
    if taken == len(order):
        return rare
    common = " OR ".join(f'"{t}"' for t in order[taken:])
    return f"({rare}) OR (({rare}) AND ({common}))"


class Catalog:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Catalog:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.close()
                raise CatalogError(
                    f"{path} was written by a newer Quorum (schema {version}); upgrade Quorum"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute(_VOCAB)  # per connection, never written to the file
        except sqlite3.Error as exc:
            raise CatalogError(f"cannot open the knowledge base {path}: {exc}") from None
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- identity of the vector space ----------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- files -----------------------------------------------------------------------------
    def file_hash(self, path: str) -> str | None:
        row = self._conn.execute("SELECT sha256 FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else str(row[0])

    def replace_file(
        self,
        path: str,
        sha256: str,
        size: int,
        kind: str,
        title: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
    ) -> None:
        """Swap a file's chunks for new ones in one transaction (old ones become tombstones)."""
        rows = [
            (
                chunk_id(path, sha256, c.ordinal),
                path,
                c.ordinal,
                c.title,
                HEADING_SEP.join(c.headings),
                c.unit,
                c.start,
                c.end,
                c.text,
                pack(v),
            )
            for c, v in zip(chunks, vectors, strict=True)
        ]
        with self._transaction() as conn:
            conn.execute("DELETE FROM chunks WHERE path = ?", (path,))
            conn.execute(
                "INSERT OR REPLACE INTO files(path, sha256, size, kind, title, chunks)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (path, sha256, size, kind, title, len(rows)),
            )
            conn.executemany(
                "INSERT INTO chunks(id, path, ordinal, title, headings, unit, start, end, text,"
                " vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            # a re-ingested chunk with the same id is alive again, not a tombstone
            conn.executemany("DELETE FROM tombstones WHERE id = ?", [(r[0],) for r in rows])

    def remove_files(self, paths: Sequence[str]) -> int:
        with self._transaction() as conn:
            removed = 0
            for path in paths:
                conn.execute("DELETE FROM chunks WHERE path = ?", (path,))
                removed += conn.execute("DELETE FROM files WHERE path = ?", (path,)).rowcount
        return removed

    def files(self, under: str | None = None) -> list[FileEntry]:
        sql = "SELECT path, sha256, size, kind, title, chunks, ingested_at FROM files"
        params: tuple[str, ...] = ()
        if under is not None:
            sql += " WHERE path = ? OR path LIKE ? ESCAPE '\\'"
            escaped = under.rstrip("/")
            for special in ("\\", "%", "_"):
                escaped = escaped.replace(special, "\\" + special)
            params = (under, escaped + "/%")
        rows = self._conn.execute(sql + " ORDER BY path", params).fetchall()
        return [FileEntry(*row) for row in rows]

    def has_chunks(self) -> bool:
        return bool(self._conn.execute("SELECT EXISTS (SELECT 1 FROM chunks)").fetchone()[0])

    def stats(self) -> dict[str, int]:
        files, chunks = self._conn.execute(
            "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM chunks)"
        ).fetchone()
        pending = self._conn.execute("SELECT count(*) FROM chunks WHERE indexed = 0").fetchone()[0]
        size = self._conn.execute("SELECT coalesce(sum(size), 0) FROM files").fetchone()[0]
        return {"files": files, "chunks": chunks, "pending": pending, "bytes": size}

    # --- chunks ----------------------------------------------------------------------------
    def chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            "SELECT id, path, title, headings, unit, start, end, text FROM chunks"
            f" WHERE id IN ({marks})",
            list(ids),
        ).fetchall()
        return {r[0]: _stored(r) for r in rows}

    def keyword_search(self, text: str, limit: int) -> list[str]:
        """Chunk ids, best BM25 first (title weighted over text)."""
        try:
            match = self.keyword_query(text)
            if match is None:
                return []
            rows = self._conn.execute(
                # ranked before the join: reading every match's chunk row costs more than BM25
                "SELECT c.id FROM (SELECT rowid AS hit, bm25(chunks_fts, 2.0, 1.0) AS score"
                " FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score LIMIT ?) AS f"
                " JOIN chunks c ON c.rowid = f.hit ORDER BY f.score",
                (match, limit),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [r[0] for r in rows]

    def keyword_query(self, text: str, budget: int | None = None) -> str | None:
        """The FTS5 query `keyword_search` runs for ``text``."""
        terms = query_terms(text)
        if not terms:
            return None
        tokens = {t: _FTS_TOKEN.findall(t) for t in terms}  # "module-level" is a phrase
        words = sorted({w for parts in tokens.values() for w in parts})
        marks = ",".join("?" * len(words))
        found: dict[str, int] = dict(
            self._conn.execute(
                f"SELECT term, doc FROM temp.chunks_vocab WHERE term IN ({marks})", words
            ).fetchall()
        )
        counts = {t: min(found.get(w, 0) for w in parts) for t, parts in tokens.items()}
        return fts_query(counts, budget)

    # --- keeping the vector index in step --------------------------------------------------
    def pending(self, limit: int = 2000) -> PendingVectors:
        rows = self._conn.execute(
            "SELECT id, path, title, headings, unit, start, end, text, vector FROM chunks"
            " WHERE indexed = 0 LIMIT ?",
            (limit,),
        ).fetchall()
        gone = [r[0] for r in self._conn.execute("SELECT id FROM tombstones LIMIT ?", (limit,))]
        return PendingVectors(
            ids=[r[0] for r in rows],
            vectors=[unpack(r[8]) for r in rows],
            documents=[r[7] for r in rows],
            metadatas=[
                {
                    "path": r[1],
                    "title": r[2],
                    "headings": r[3],
                    "unit": r[4],
                    "start": r[5],
                    "end": r[6],
                }
                for r in rows
            ],
            tombstones=gone,
        )

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT id, vector FROM chunks WHERE id IN ({marks})", list(ids)
        ).fetchall()
        return {r[0]: unpack(r[1]) for r in rows}

    def all_chunks(self) -> list[StoredChunk]:
        """Every chunk, for re-embedding."""
        rows = self._conn.execute(
            "SELECT id, path, title, headings, unit, start, end, text FROM chunks ORDER BY rowid"
        ).fetchall()
        return [_stored(r) for r in rows]

    def set_vectors(self, vectors: Mapping[str, Sequence[float]]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE chunks SET vector = ?, indexed = 0 WHERE id = ?",
                [(pack(v), i) for i, v in vectors.items()],
            )

    def mark_indexed(self, ids: Sequence[str], tombstones: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.executemany("UPDATE chunks SET indexed = 1 WHERE id = ?", [(i,) for i in ids])
            conn.executemany("DELETE FROM tombstones WHERE id = ?", [(i,) for i in tombstones])

    def mark_all_unindexed(self) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE chunks SET indexed = 0")
            conn.execute("DELETE FROM tombstones")

    # --- which history texts the history collection holds --------------------------------
    def history_keys(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT key FROM history_keys")}

    def add_history_keys(self, keys: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO history_keys(key) VALUES (?)", [(k,) for k in keys]
            )

    def clear_history_keys(self) -> None:
        self._conn.execute("DELETE FROM history_keys")

    def clear(self) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM chunks")
            conn.execute("DELETE FROM files")
            conn.execute("DELETE FROM tombstones")
            conn.execute("DELETE FROM meta")


def _stored(r: Sequence[Any]) -> StoredChunk:
    headings = tuple(h for h in str(r[3]).split(HEADING_SEP) if h)
    return StoredChunk(r[0], r[1], r[2], headings, r[4], r[5], r[6], r[7])
