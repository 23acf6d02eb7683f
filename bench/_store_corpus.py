"""Corpora for bench/store.py: a ~1 MB mixed corpus of real local files, and synthetic indexes.

Nothing is downloaded. The mixed corpus is Python's own reference topics (``pydoc_data``, text),
this repository's Markdown and ``core/`` Python files, IDLE's help page (Python's docs as HTML,
shipped in the standard library) and a real PDF from ``/usr/share/doc`` when one is there
(otherwise a small one written by the tests' PDF builder).

Synthetic indexes have random unit vectors (no structure: the hardest case for HNSW) and, as
texts, windows of 150 consecutive words at random offsets in the Python reference topics: real
sentences, so keyword queries match about as many chunks as they would in real notes (words
sampled one by one would spread every common word over most chunks). They are cached by size
under the work folder (`synthetic_dir`), the vectors rebuilt only when the recipe changes.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import numpy

from core.config import StoreSettings
from core.store.documents import Chunk
from core.store.embedder import Embedder
from core.store.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_FILE_CHUNKS = 5000
SYNTHETIC_WORDS = 150  # about a 200-token chunk
SYNTHETIC_RECIPE = "windows-150-v2"  # part of the cache folders' names: change it with _fill


def write_topics(folder: Path) -> list[Path]:
    """Python's reference topics, one text file per topic (79 files, about 465 KB)."""
    import pydoc_data.topics

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for topic, text in sorted(pydoc_data.topics.topics.items()):
        path = folder / f"{topic}.txt"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _local_pdf() -> Path | None:
    docs = Path("/usr/share/doc")
    found = sorted(docs.glob("*/*.pdf"), key=lambda p: p.stat().st_size) if docs.is_dir() else []
    small = [p for p in found if 20_000 < p.stat().st_size < 400_000]
    return small[0] if small else None


def mixed_corpus(folder: Path) -> dict[str, int]:
    """Writes the corpus; returns bytes per kind."""
    write_topics(folder / "txt")
    sources = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("core/**/*.py")]
    for source in sources:
        target = folder / "repo" / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (folder / "html").mkdir(parents=True, exist_ok=True)
    idle_help = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    idle_help = idle_help / "idlelib" / "help.html"
    if idle_help.is_file():
        shutil.copyfile(idle_help, folder / "html" / "idle-help.html")
    else:  # Python built without IDLE: the reference topics as HTML pages instead
        import html
        import pydoc_data.topics

        for topic, text in sorted(pydoc_data.topics.topics.items())[:20]:
            body = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
            page = f"<html><head><title>{topic}</title></head><body><h1>{topic}</h1>{body}"
            (folder / "html" / f"{topic}.html").write_text(page + "</body></html>", "utf-8")
    (folder / "pdf").mkdir(parents=True, exist_ok=True)
    pdf = _local_pdf()
    if pdf is not None:
        shutil.copyfile(pdf, folder / "pdf" / pdf.name)
    else:
        from tests.test_store_readers import make_pdf

        pages = [t[:3000] for t in sorted(_topics_text().values())[:20]]
        (folder / "pdf" / "topics.pdf").write_bytes(make_pdf(pages, "Topics"))
    sizes: dict[str, int] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            kind = path.relative_to(folder).parts[0]
            kind = "py" if path.suffix == ".py" else "md" if path.suffix == ".md" else kind
            sizes[kind] = sizes.get(kind, 0) + path.stat().st_size
    return sizes


def _topics_text() -> dict[str, str]:
    import pydoc_data.topics

    return dict(pydoc_data.topics.topics)


def word_pool() -> list[str]:
    """Every word of the reference topics, in order (topic by topic, sorted by name)."""
    return [w for _, text in sorted(_topics_text().items()) for w in text.split()]


def synthetic_dir(work: Path, size: int, what: str = "synthetic") -> Path:
    return work / f"{what}-{size}-{SYNTHETIC_RECIPE}"


def synthetic_kb(
    root: Path, count: int, embedder: Embedder, *, url: str | None = None
) -> KnowledgeBase:
    """A knowledge base of ``count`` synthetic chunks under ``root`` (built once, then reused);
    with ``url`` the same chunks are pushed to that Chroma server unless it has them already."""
    settings = StoreSettings(min_score=0.0, url=url)
    kb = KnowledgeBase(settings, root=root, embedder=embedder)
    if kb.catalog.stats()["chunks"] != count:
        kb.close()
        shutil.rmtree(root, ignore_errors=True)
        kb = KnowledgeBase(settings, root=root, embedder=embedder)
        _fill(kb, count, embedder.dimension)
    if url is not None and kb.index.count() != count:
        kb.catalog.mark_all_unindexed()  # push the same chunks to the server
    kb.sync()
    return kb


def _fill(kb: KnowledgeBase, count: int, dimension: int) -> None:
    rng = random.Random(count)
    words = word_pool()
    last = len(words) - SYNTHETIC_WORDS
    kb.check_embedder()
    for start in range(0, count, SYNTHETIC_FILE_CHUNKS):
        n = min(SYNTHETIC_FILE_CHUNKS, count - start)
        path = f"/synthetic/file{start // SYNTHETIC_FILE_CHUNKS}.txt"
        offsets = [rng.randrange(last) for _ in range(n)]
        chunks = [
            Chunk(" ".join(words[o : o + SYNTHETIC_WORDS]), path, "t", ("t",), i, i, "line", i)
            for i, o in enumerate(offsets)
        ]
        raw = numpy.random.default_rng(start).standard_normal((n, dimension))
        vectors = (raw / numpy.linalg.norm(raw, axis=1, keepdims=True)).tolist()
        kb.catalog.replace_file(path, f"s{start}", 1, "text", path, chunks, vectors)
