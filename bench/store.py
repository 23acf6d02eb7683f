"""The vector store: ingest overhead, query latency at scale, retrieval's cost to the first token
and to the first paint, and retrieval quality. Ratios against baselines measured in this run.

    .venv/bin/python bench/store.py                     # everything (~18 min on 2 cores)
    .venv/bin/python bench/store.py --quick             # 10k chunks only, fewer repeats
    .venv/bin/python bench/store.py --keep /tmp/qbench  # keep and reuse the indexes (~10 min)
    .venv/bin/python bench/store.py --only queries      # one part

Measurements that run in turns (query modes, with and without retrieval) are interleaved
question by question, so a neighbour's load on the machine falls on both sides of a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._store_corpus import mixed_corpus, synthetic_dir, synthetic_kb, write_topics  # noqa: E402
from bench._store_ttft import bench_first_paint, bench_first_token  # noqa: E402
from bench.store_quality import QUESTIONS, bench_quality  # noqa: E402
from core.config import StoreSettings  # noqa: E402
from core.store.catalog import Catalog  # noqa: E402
from core.store.embedder import BuiltinEmbedder  # noqa: E402
from core.store.ingest import ingest  # noqa: E402
from core.store.kb import KnowledgeBase, embedding_text  # noqa: E402
from tests.chroma_server import chroma_server  # noqa: E402


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def header(*cells: str) -> None:
    row(*cells)
    row(*("---" for _ in cells))


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


# --- ingest -------------------------------------------------------------------------------------
def bench_ingest(embedder: BuiltinEmbedder, work: Path) -> None:
    """The whole ingest against the embedder alone on the same chunks: once in one call (its
    best batching: the target's baseline) and once per file (as ingest called it before it
    embedded several files' chunks together)."""
    corpus = work / "mixed-corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    sizes = mixed_corpus(corpus)
    store = work / "ingest-store"
    shutil.rmtree(store, ignore_errors=True)
    kb = KnowledgeBase(StoreSettings(), root=store, embedder=embedder)
    started = clock()
    report = ingest(kb, [corpus])
    ingest_wall, ingest_cpu = since(started)
    stored = kb.catalog.all_chunks()
    texts = [embedding_text(c.headings, c.title, c.text) for c in stored]
    by_file: dict[str, list[str]] = {}
    for chunk, text in zip(stored, texts, strict=True):
        by_file.setdefault(chunk.source, []).append(text)
    tokens = sum(embedder.count_tokens(t) for t in texts)
    started = clock()
    embedder.embed(texts)  # the same chunks, one call: the embedder's own throughput
    one_wall, one_cpu = since(started)
    started = clock()
    for group in by_file.values():
        embedder.embed(group)
    per_file_wall, per_file_cpu = since(started)
    started = clock()
    ingest(kb, [corpus])
    unchanged, _ = since(started)
    kb.close()
    total = sum(sizes.values())
    kinds = ", ".join(f"{k} {v / 1e3:.0f} KB" for k, v in sorted(sizes.items()))
    print(f"\n## Ingest of a {total / 1e6:.2f} MB mixed corpus ({kinds})\n")
    print(
        f"{report.files} files, {report.chunks} chunks, ~{tokens:,} tokens embedded; "
        f"skipped: {[(s.path.name, s.reason) for s in report.skipped] or 'none'}. "
        "Baselines: the built-in embedder alone on the same chunk texts, in one call, and in "
        "one call per file (as ingest called it before it batched across files).\n"
    )
    header(
        "measure",
        "ingest",
        "embedder, one call",
        "embedder, per file",
        "ingest ÷ one call",
        "ingest ÷ per file",
    )
    for name, value, one, per_file in (
        ("wall s", ingest_wall, one_wall, per_file_wall),
        ("CPU s", ingest_cpu, one_cpu, per_file_cpu),
    ):
        row(
            name,
            f"{value:.1f}",
            f"{one:.1f}",
            f"{per_file:.1f}",
            f"{value / one:.3f}",
            f"{value / per_file:.3f}",
        )
    row(
        "chunks/s",
        f"{report.chunks / ingest_wall:.1f}",
        f"{report.chunks / one_wall:.1f}",
        f"{report.chunks / per_file_wall:.1f}",
        "",
        "",
    )
    row(
        "tokens/s",
        f"{tokens / ingest_wall:,.0f}",
        f"{tokens / one_wall:,.0f}",
        f"{tokens / per_file_wall:,.0f}",
        "",
        "",
    )
    print(
        f"\ninside ingest: {report.embed_seconds:.1f} s in the embedder, "
        f"{ingest_wall - report.embed_seconds:.1f} s reading, chunking (token counting), SQLite "
        f"and chromadb; re-ingest of the unchanged corpus: {unchanged:.2f} s"
    )


# --- query latency ------------------------------------------------------------------------------
@contextlib.contextmanager
def stores(
    embedder: BuiltinEmbedder, work: Path, size: int, server: bool
) -> Iterator[dict[str, KnowledgeBase]]:
    root = synthetic_dir(work, size)
    started = time.perf_counter()
    local = synthetic_kb(root, size, embedder)
    out = {"embedded": local}
    with contextlib.ExitStack() as stack:
        if server:
            url = stack.enter_context(chroma_server(_fresh(synthetic_dir(work, size, "server"))))
            out["chroma server"] = synthetic_kb(root, size, embedder, url=url)
        took = time.perf_counter() - started
        print(f"(built or reopened the {size:,}-chunk indexes in {took:.0f} s)")
        try:
            yield out
        finally:
            for kb in out.values():
                kb.close()


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def parts(kb: KnowledgeBase, query: str) -> dict[str, float]:
    """One hybrid search taken apart (ms): what each step costs."""
    out: dict[str, float] = {}

    def timed(name: str, call: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        result = call()
        out[name] = (time.perf_counter() - t0) * 1000
        return result

    timed("is_empty", kb.is_empty)
    vector = timed("embed query", lambda: kb.embed([query])[0])
    timed("vector query", lambda: kb.index.query(vector, 20))  # type: ignore[arg-type]
    timed("keyword (FTS5)", lambda: kb.catalog.keyword_search(query, 20))
    return out


def keyword_matches(catalog: Catalog) -> float:
    """The median share of a store's chunks that a question's keyword query matches (how much
    BM25 has to rank: its cost grows with it)."""
    total = catalog.stats()["chunks"]
    matches = [m for m in (catalog.keyword_query(q) for q, _ in QUESTIONS) if m]
    with contextlib.closing(sqlite3.connect(f"file:{catalog.path}?mode=ro", uri=True)) as conn:
        shares: list[float] = [
            conn.execute(
                "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (m,)
            ).fetchone()[0]
            / total
            for m in matches
        ]
    return statistics.median(shares)


def bench_queries(
    embedder: BuiltinEmbedder,
    work: Path,
    sizes: Sequence[int],
    queries: int,
    server: bool,
    topics_kb: Path,
) -> None:
    questions = [q for q, _ in QUESTIONS]
    print("\n## Query latency, query embedding included (ms)\n")
    print(
        f"{queries} searches per row (top 5), the rows of one size interleaved query by query; "
        "synthetic chunks of 150 words with random vectors; the queries are embedded for real.\n"
    )
    lines: list[tuple[object, ...]] = []
    breakdowns: list[str] = []
    for size in sizes:
        with stores(embedder, work, size, server) as kbs:
            configs = [(label, mode) for label in kbs for mode in ("vector", "hybrid")]
            for q in questions[:5]:  # warm caches, connections and the HNSW index
                for label, mode in configs:
                    kbs[label].search(q, mode=mode)  # type: ignore[arg-type]
            times: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
            for i in range(queries):
                q = questions[i % len(questions)]
                for label, mode in configs:
                    t0 = time.perf_counter()
                    kbs[label].search(q, mode=mode)  # type: ignore[arg-type]
                    times[(label, mode)].append((time.perf_counter() - t0) * 1000)
            base = statistics.median(times[("embedded", "vector")])
            for (label, mode), samples in times.items():
                p50 = statistics.median(samples)
                lines.append(
                    (
                        f"{size:,}",
                        label,
                        mode,
                        f"{p50:.1f}",
                        f"{percentile(samples, 0.95):.1f}",
                        f"{p50 / base:.2f}",
                    )
                )
            split = [parts(kbs["embedded"], questions[i % len(questions)]) for i in range(40)]
            median = {k: statistics.median(s[k] for s in split) for k in split[0]}
            share = keyword_matches(kbs["embedded"].catalog)
            breakdowns.append(
                f"{size:,} embedded, hybrid, median of 40: "
                + ", ".join(f"{k} {v:.1f}" for k, v in median.items())
                + f"; the keyword query matches {share:.0%} of the chunks (median)"
            )
    header("chunks", "store", "mode", "p50", "p95", "p50 ÷ embedded vector p50")
    for line in lines:
        row(*line)
    print("\nwhere a hybrid search's time goes (ms; the rest is fusion and reading chunks):")
    for breakdown in breakdowns:
        print(f"- {breakdown}")
    with contextlib.closing(Catalog.open(topics_kb / "catalog.sqlite3")) as catalog:
        real = keyword_matches(catalog)
    print(
        f"- for comparison, in the real reference-topics knowledge base a question's keyword "
        f"query matches {real:.0%} of the chunks (median)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10k chunks only, fewer repeats")
    parser.add_argument(
        "--only", action="append", choices=("ingest", "queries", "ttft", "paint", "quality")
    )
    parser.add_argument("--sizes", default=None, help="query index sizes (default 10000,100000)")
    parser.add_argument("--queries", type=int, default=None, help="searches per row (200)")
    parser.add_argument("--no-server", action="store_true", help="skip the Chroma server rows")
    parser.add_argument("--keep", type=Path, help="work folder kept between runs (indexes reused)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    sizes = sizes or ([10_000] if args.quick else [10_000, 100_000])
    queries = args.queries or (60 if args.quick else 200)
    rounds = 3 if args.quick else 5
    embedder = BuiltinEmbedder()
    embedder.load()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quorum-bench-")))
        topics = work / "topics-corpus"
        write_topics(topics)
        topics_kb = work / "topics-store"  # ingested once: quality, first token, first paint
        with KnowledgeBase(StoreSettings(), root=topics_kb, embedder=embedder) as kb:
            ingest(kb, [topics])
        steps: dict[str, Callable[[], None]] = {
            "ingest": lambda: bench_ingest(embedder, work),
            "quality": lambda: bench_quality(embedder, topics_kb),
            "ttft": lambda: bench_first_token(embedder, work, topics_kb, rounds),
            "paint": lambda: bench_first_paint(work, topics_kb, rounds),
            "queries": lambda: bench_queries(
                embedder, work, sizes, queries, not args.no_server, topics_kb
            ),
        }
        for name, step in steps.items():
            if args.only is None or name in args.only:
                started = time.perf_counter()
                step()
                print(f"\n({name}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
