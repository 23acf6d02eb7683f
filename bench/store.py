"""The vector store: ingest overhead, query latency at scale, retrieval's cost to the first token
and to the first paint, and retrieval quality. Ratios against baselines measured in this run.

    .venv/bin/python bench/store.py            # everything (~10 min on 2 cores)
    .venv/bin/python bench/store.py --quick    # 10k chunks only, fewer queries
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._app_start import launch  # noqa: E402
from bench.store_quality import QUESTIONS, evaluate, write_corpus  # noqa: E402
from core.config import StoreSettings  # noqa: E402
from core.store.documents import Chunk  # noqa: E402
from core.store.embedder import BuiltinEmbedder  # noqa: E402
from core.store.ingest import ingest  # noqa: E402
from core.store.kb import KnowledgeBase, embedding_text  # noqa: E402
from tests.chroma_server import chroma_server  # noqa: E402


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def mixed_corpus(folder: Path) -> None:
    """About 1 MB of real text in every supported kind: Python's reference topics (text), this
    repository's Markdown and Python files, and the topics again as HTML."""
    import html
    import pydoc_data.topics

    write_corpus(folder / "txt")
    for source in [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("core/**/*.py")]:
        target = folder / "repo" / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    pages = folder / "html"
    pages.mkdir()
    for topic, text in sorted(pydoc_data.topics.topics.items())[:30]:
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
        head = f"<html><head><title>{topic}</title></head>"
        page = f"{head}<body><h1>{topic}</h1>{paragraphs}</body></html>"
        (pages / f"{topic}.html").write_text(page, encoding="utf-8")


def bench_ingest(embedder: BuiltinEmbedder, work: Path) -> None:
    corpus = work / "corpus"
    mixed_corpus(corpus)
    size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
    kb = KnowledgeBase(StoreSettings(), root=work / "ingest-store", embedder=embedder)
    started = time.perf_counter()
    report = ingest(kb, [corpus])
    total = time.perf_counter() - started
    texts = [embedding_text(c.headings, c.title, c.text) for c in kb.catalog.all_chunks()]
    started = time.perf_counter()
    embedder.embed(texts)
    embed_only = time.perf_counter() - started
    again = time.perf_counter()
    ingest(kb, [corpus])
    unchanged = time.perf_counter() - again
    print(f"\n## Ingest of a {size / 1e6:.2f} MB mixed corpus ({report.files} files)\n")
    row("chunks", "ingest s", "chunks/s", "embedder alone s", "ingest / embedder", "re-ingest s")
    print("|---|---|---|---|---|---|")
    print(
        f"| {report.chunks} | {total:.1f} | {report.chunks / total:.0f} | {embed_only:.1f} | "
        f"{total / embed_only:.3f} | {unchanged:.2f} |"
    )
    if report.skipped:
        print(f"skipped: {[(s.path.name, s.reason) for s in report.skipped][:5]}")
    kb.close()


def synthetic(kb: KnowledgeBase, count: int, dimension: int, rng: random.Random) -> None:
    """``count`` chunks with random unit vectors and texts of real-looking words."""
    words = [w for t in QUESTIONS for w in t[0].lower().split()] + [f"term{i}" for i in range(5000)]
    batch = 5000
    for start in range(0, count, batch):
        n = min(batch, count - start)
        path = f"/synthetic/file{start // batch}.txt"
        chunks = [
            Chunk(" ".join(rng.choices(words, k=60)), path, "t", ("t",), i, i, "line", i)
            for i in range(n)
        ]
        raw = numpy.random.default_rng(start).standard_normal((n, dimension))
        vectors = (raw / numpy.linalg.norm(raw, axis=1, keepdims=True)).tolist()
        kb.catalog.replace_file(path, f"s{start}", 1, "text", path, chunks, vectors)
    kb.sync()


def bench_queries(
    embedder: BuiltinEmbedder, work: Path, sizes: Sequence[int], queries: int
) -> None:
    rng = random.Random(7)
    questions = [q for q, _ in QUESTIONS]
    print("\n## Query latency, query embedding included (ms)\n")
    print("| chunks | store | mode | p50 | p95 |")
    print("|---|---|---|---|---|")
    for size in sizes:
        local = KnowledgeBase(
            StoreSettings(min_score=0.0), root=work / f"q{size}", embedder=embedder
        )
        synthetic(local, size, embedder.dimension, rng)
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(chroma_server(work / f"server{size}"))
            remote = KnowledgeBase(
                StoreSettings(min_score=0.0, url=url), root=work / f"q{size}", embedder=embedder
            )
            remote.catalog.mark_all_unindexed()  # push the same chunks to the server
            remote.sync()
            for label, kb in (("embedded", local), ("chroma server", remote)):
                for mode in ("vector", "hybrid"):
                    for q in questions[:5]:  # warm caches and the HNSW index
                        kb.search(q, mode=mode)  # type: ignore[arg-type]
                    times = []
                    for i in range(queries):
                        q = questions[i % len(questions)]
                        t0 = time.perf_counter()
                        kb.search(q, mode=mode)  # type: ignore[arg-type]
                        times.append((time.perf_counter() - t0) * 1000)
                    print(
                        f"| {size:,} | {label} | {mode} | {statistics.median(times):.1f} | "
                        f"{percentile(times, 0.95):.1f} |"
                    )
        local.close()


_COLD = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from core.config import StoreSettings
from core.store.kb import KnowledgeBase
kb = KnowledgeBase(StoreSettings(), root=Path(sys.argv[1]))
kb.search("How do I chain a new exception to the one being handled?")
print(time.perf_counter() - t0)
"""


def bench_first_token(embedder: BuiltinEmbedder, work: Path) -> None:
    corpus = work / "ttft-corpus"
    write_corpus(corpus)
    root = work / "ttft-store"
    kb = KnowledgeBase(StoreSettings(), root=root, embedder=embedder)
    ingest(kb, [corpus])
    warm = []
    for q, _ in QUESTIONS:
        t0 = time.perf_counter()
        kb.search(q)
        warm.append((time.perf_counter() - t0) * 1000)
    cold = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _COLD, str(root)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        cold.append(float(out.stdout.split()[-1]) * 1000)
    empty = KnowledgeBase(StoreSettings(), root=work / "empty-store", embedder=embedder)
    none = []
    for q, _ in QUESTIONS:
        t0 = time.perf_counter()
        empty.search(q)
        none.append((time.perf_counter() - t0) * 1000)
    print("\n## What retrieval adds before the first token (ms, 79 documents)\n")
    print("| case | p50 | p95 |")
    print("|---|---|---|")
    p50, p95 = statistics.median, lambda v: percentile(v, 0.95)
    row("empty knowledge base (SQLite check only)", f"{p50(none):.2f}", f"{p95(none):.2f}")
    row("warm (model loaded, index open)", f"{p50(warm):.1f}", f"{p95(warm):.1f}")
    row("cold (new process: imports, model load, open)", f"{p50(cold):.0f}", f"{max(cold):.0f}")


def bench_first_paint(work: Path) -> None:
    """The app's first paint with an empty store vs a full knowledge base in the same home."""
    empty_home = work / "paint-empty"
    full_home = work / "paint-full"
    corpus = work / "paint-corpus"
    write_corpus(corpus)
    kb = KnowledgeBase(StoreSettings(), root=full_home / "store")
    ingest(kb, [corpus])
    kb.close()
    rows = {"empty": [], "full": []}
    for _ in range(3):
        rows["empty"].append(launch(4, home=empty_home).first_paint_s)
        start = launch(4, home=full_home)
        rows["full"].append(start.first_paint_s)
    e, f = statistics.median(rows["empty"]), statistics.median(rows["full"])
    print("\n## First paint (4 panes, fresh process, median of 3)\n")
    print("| no knowledge base s | 79-document knowledge base s | ratio | heavy modules at start |")
    print("|---|---|---|---|")
    print(f"| {e:.3f} | {f:.3f} | {f / e:.2f} | {start.heavy_modules} |")


def bench_quality(embedder: BuiltinEmbedder, work: Path) -> None:
    corpus = work / "quality-corpus"
    write_corpus(corpus)
    kb = KnowledgeBase(StoreSettings(min_score=0.0), root=work / "quality-store", embedder=embedder)
    ingest(kb, [corpus])
    results = evaluate(lambda q, mode: kb.search(q, mode=mode, top_k=5))
    print(f"\n## Retrieval quality ({len(QUESTIONS)} questions, Python reference topics)\n")
    print("| mode | recall@5 | MRR |")
    print("|---|---|---|")
    for r in results:
        print(f"| {r.mode} | {r.recall_at_5:.3f} | {r.mrr:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("ingest", "queries", "ttft", "paint", "quality"))
    args = parser.parse_args()
    embedder = BuiltinEmbedder()
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        steps = {
            "quality": lambda: bench_quality(embedder, work),
            "ingest": lambda: bench_ingest(embedder, work),
            "ttft": lambda: bench_first_token(embedder, work),
            "paint": lambda: bench_first_paint(work),
            "queries": lambda: bench_queries(
                embedder,
                work,
                [10_000] if args.quick else [10_000, 100_000],
                50 if args.quick else 200,
            ),
        }
        for name, step in steps.items():
            if args.only in (None, name):
                step()


if __name__ == "__main__":
    main()
