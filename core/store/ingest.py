"""Ingest: files and folders → chunks → vectors → the knowledge base, idempotent by content.

A file whose SHA-256 is already recorded costs a read and a hash, nothing more; a changed file's
old chunks are replaced in the same transaction as its new ones; ``prune`` drops recorded files
under the given folders that are gone. One bad file is skipped with its reason; the others go on.
Chunks of several files are embedded together (the built-in embedder batches by length, which
works better over many files than over one), then each file is written in its own transaction:
an interrupted ingest leaves whole files, and the rest is picked up by the next run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.store.chunking import chunk_document
from core.store.documents import Chunk, SkipFile
from core.store.files import Skipped, discover
from core.store.kb import KnowledgeBase, embedding_text
from core.store.readers import read_document

CHUNK_TOKENS = 200  # leaves room under the built-in model's 256 for the heading trail
OVERLAP_TOKENS = 32
EMBED_BATCH = 256  # chunks embedded in one call, from as many files as it takes


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    path: str
    outcome: str  # "added" | "updated" | "unchanged" | "skipped"


@dataclass(slots=True)
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    indexed: bool = True  # False: another process holds the index and will catch it up

    @property
    def files(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_json(self) -> dict[str, object]:
        return {
            "files": self.files,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "chunks": self.chunks,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
            "indexed": self.indexed,
        }


@dataclass(frozen=True, slots=True)
class _Pending:
    """A read and chunked file waiting for its vectors."""

    key: str
    path: Path
    sha256: str
    size: int
    kind: str
    title: str
    chunks: list[Chunk]
    new: bool


def ingest(
    kb: KnowledgeBase,
    paths: Sequence[Path],
    *,
    prune: bool = False,
    excludes: Sequence[str] = (),
    include_hidden: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport()
    kb.check_embedder()
    found: list[Path] = []
    for item in discover(paths, excludes=excludes, include_hidden=include_hidden):
        if isinstance(item, Skipped):
            report.skipped.append(item)
        else:
            found.append(item)
    max_bytes = int(kb.settings.max_file_mb * 1_000_000)
    done = 0

    def finished(path: Path, outcome: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(Progress(done, len(found), str(path), outcome))

    batch: list[_Pending] = []
    for path in found:
        key = str(path.resolve())
        if any(p.key == key for p in batch):  # the same file twice: written once, then unchanged
            _write(kb, batch, report, finished)
            batch = []
        pending = _read_file(kb, path, key, max_bytes, report)
        if isinstance(pending, str):
            finished(path, pending)
            continue
        batch.append(pending)
        if sum(len(p.chunks) for p in batch) >= EMBED_BATCH:
            _write(kb, batch, report, finished)
            batch = []
    _write(kb, batch, report, finished)
    if prune:
        report.removed = _prune(kb, paths)
    report.indexed = kb.sync()
    report.seconds = time.perf_counter() - started
    return report


def _read_file(
    kb: KnowledgeBase, path: Path, key: str, max_bytes: int, report: IngestReport
) -> _Pending | str:
    """The file's chunks, or its outcome when there is nothing to embed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.skipped.append(Skipped(path, f"unreadable: {exc.strerror or exc}"))
        return "skipped"
    digest = hashlib.sha256(data).hexdigest()
    previous = kb.catalog.file_hash(key)
    if previous == digest:
        report.unchanged += 1
        return "unchanged"
    try:
        document = read_document(path, max_bytes=max_bytes)
    except SkipFile as exc:
        report.skipped.append(Skipped(path, exc.reason))
        return "skipped"
    embedder = kb.embedder
    chunks = chunk_document(
        document,
        count_tokens=embedder.count_tokens,
        max_tokens=min(CHUNK_TOKENS, embedder.max_tokens - 24),
        overlap_tokens=OVERLAP_TOKENS,
    )
    if not chunks:
        report.skipped.append(Skipped(path, "no text"))
        return "skipped"
    return _Pending(
        key, path, digest, len(data), document.kind, document.title, chunks, previous is None
    )


def _write(
    kb: KnowledgeBase,
    batch: Sequence[_Pending],
    report: IngestReport,
    finished: Callable[[Path, str], None],
) -> None:
    """Embed the batch's chunks in one call, then record each file in its own transaction."""
    texts = [embedding_text(c.headings, c.title, c.text) for p in batch for c in p.chunks]
    if not texts:
        return
    t0 = time.perf_counter()
    vectors = kb.embed(texts)
    report.embed_seconds += time.perf_counter() - t0
    start = 0
    for p in batch:
        end = start + len(p.chunks)
        kb.catalog.replace_file(
            p.key, p.sha256, p.size, p.kind, p.title, p.chunks, vectors[start:end]
        )
        start = end
        report.chunks += len(p.chunks)
        if p.new:
            report.added += 1
        else:
            report.updated += 1
        finished(p.path, "added" if p.new else "updated")


def _prune(kb: KnowledgeBase, paths: Sequence[Path]) -> int:
    gone: list[str] = []
    for root in paths:
        for entry in kb.catalog.files(str(root.resolve())):
            if not Path(entry.path).is_file():
                gone.append(entry.path)
    return kb.catalog.remove_files(gone) if gone else 0
