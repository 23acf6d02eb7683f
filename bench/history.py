"""History store with a large history vs an empty one, measured in the same run.

    .venv/bin/python bench/history.py                 # 100,000 responses (about a minute)
    .venv/bin/python bench/history.py --responses 20000

The large history is 4 models per turn, 10 turns per session, answers of ~60 words drawn from a
3,000-word vocabulary (Zipf-like, so some words are in most answers and some in very few). It is
loaded through `HistoryStore.add_session` (the import path, FTS triggers included). Reported for
both databases: store open, recent-queries (500) and session-list (100) time, FTS search latency
over a mix of common, rare, two-word and prefix queries (p50/p95), and what recording costs per
streamed token (`HistoryWriter.apply`, flushes included). The ratio column is large / empty.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._app_start import launch
from core.config import ModelSpec
from core.events import FanoutFinished, Finished, ModelStats, Started, TextDelta
from core.history import HistoryStore, HistoryWriter
from core.history.records import ResponseRecord, SessionRecord, TurnRecord
from core.history.sqlite import DB_NAME

MODELS = ("gpt", "claude", "gemini", "local")
TURNS_PER_SESSION = 10
WORDS_PER_ANSWER = 60


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


def populate(store: HistoryStore, responses: int, words: list[str], rng: random.Random) -> None:
    weights = [1 / (rank + 1) for rank in range(len(words))]

    def sentence(n: int) -> str:
        return " ".join(rng.choices(words, weights, k=n))

    sessions = max(1, responses // (len(MODELS) * TURNS_PER_SESSION))
    stamp = "2026-01-01T00:00:00+00:00"
    for s in range(sessions):
        turns = tuple(
            TurnRecord(
                seq=t + 1,
                query=sentence(8) + "?",
                created_at=stamp,
                state="done",
                finished_at=stamp,
                wall_ms=1234.5,
                responses=tuple(
                    ResponseRecord(
                        model=m,
                        provider="openai",
                        model_id=m,
                        state="done",
                        text=sentence(WORDS_PER_ANSWER),
                        ttft_ms=100.0,
                        total_ms=900.0,
                        tokens_out=WORDS_PER_ANSWER,
                        attempts=1,
                        updated_at=stamp,
                    )
                    for m in MODELS
                ),
            )
            for t in range(TURNS_PER_SESSION)
        )
        store.add_session(SessionRecord(f"s{s:06d}", None, stamp, stamp, turns))


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def record_cost_us(store: HistoryStore, tokens: int) -> float:
    """µs of `HistoryWriter.apply` per streamed token (4 models interleaved, flushes included)."""
    specs = [ModelSpec(name=m, provider="openai", model=m) for m in MODELS]
    sid = store.new_session("bench")
    start = time.perf_counter()
    writer = HistoryWriter(store, sid, "bench question", specs)
    for m in MODELS:
        writer.apply(Started(m, "openai", 1))
    for i in range(tokens):
        writer.apply(TextDelta(MODELS[i % len(MODELS)], "token "))
    for m in MODELS:
        writer.apply(Finished(m, "stop", ModelStats()))
    writer.apply(FanoutFinished(1.0))
    writer.close()
    return (time.perf_counter() - start) * 1e6 / tokens


def measure(path: Path, queries: list[str], tokens: int) -> dict[str, float]:
    opened: list[HistoryStore] = []

    def open_and_recall() -> None:
        store = HistoryStore.open(path)
        store.recent_queries(500)
        opened.append(store)

    open_recall = timed(open_and_recall, 7)
    for store in opened:
        store.close()
    with HistoryStore.open(path) as store:
        recent = timed(lambda: store.recent_queries(500), 20)
        listing = timed(lambda: store.list_sessions(100), 20)
        search: list[float] = []
        for query in queries:
            search += timed(lambda q=query: store.search(q, 50), 3)  # type: ignore[misc]
        cost = statistics.median(record_cost_us(store, tokens) for _ in range(3))
    return {
        "open + recent queries (median ms)": statistics.median(open_recall),
        "recent_queries(500) (median ms)": statistics.median(recent),
        "list_sessions(100) (median ms)": statistics.median(listing),
        "search p50 (ms)": p(search, 0.5),
        "search p95 (ms)": p(search, 0.95),
        "recording cost (µs / token)": cost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens per recording run")
    args = parser.parse_args()
    rng = random.Random(7)
    words = vocabulary(rng)
    queries = (
        words[:10]  # the most common words
        + words[-10:]  # rare words
        + [f"{a} {b}" for a, b in zip(words[5:15], words[100:110], strict=True)]
        + [w[:3] for w in words[200:210]]  # prefixes
        + ["nothingmatcheshere", "zzzzzz qqqqqq"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        empty, large = Path(tmp) / "empty.sqlite3", Path(tmp) / "large.sqlite3"
        HistoryStore.open(empty).close()
        start = time.perf_counter()
        with HistoryStore.open(large) as store:
            populate(store, args.responses, words, rng)
        load_s = time.perf_counter() - start
        size_mb = sum(f.stat().st_size for f in Path(tmp).glob("large.sqlite3*")) / 1e6
        base = measure(empty, queries, args.tokens)
        full = measure(large, queries, args.tokens)
        for label, db in (("empty DB", empty), ("large", large)):
            home = Path(tmp) / f"home-{label.split()[0]}"
            home.mkdir()
            (home / DB_NAME).symlink_to(db)
            runs = [launch(4, home=home) for _ in range(3)]
            target = base if label == "empty DB" else full
            target["app launch → first paint (ms)"] = statistics.median(
                r.first_paint_s * 1000 for r in runs
            )
            target["app launch → history loaded (ms)"] = statistics.median(
                r.history_loaded_s * 1000 for r in runs
            )
    print(
        f"history of {args.responses:,} responses ({args.responses // len(MODELS):,} turns): "
        f"loaded in {load_s:.1f} s, {size_mb:.0f} MB; {len(queries)} search queries x 3"
    )
    header = ("metric", "empty DB", f"{args.responses:,} responses", "ratio")
    rows = [header] + [
        (
            name,
            f"{base[name]:.3f}",
            f"{full[name]:.3f}",
            f"{full[name] / base[name]:.1f}x" if base[name] else "-",
        )
        for name in base
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
