"""What the consensus costs when the last answer arrives, and whether the UI notices.

    .venv/bin/python -m bench.consensus [--sizes 8,16,32] [--tokens 500] [--repeat 5]

For N answers of about ``--tokens`` tokens each (real prose: Python's reference topics), the
first N-1 are measured in as they would have arrived; then the time from the last answer's
arrival to the updated figures (agreement, medoid, outliers, support, unique claims) is taken.
The floor is the embedder's own time on that last answer's sentences, measured in the same run
(target: at most 1.3 times the floor at 8 answers). The rest is arithmetic over cached vectors
and the sentence matches of earlier pairs (kept by the tracker): only the new answer's pairs
are compared, so it grows with N, not N squared.

Then the UI question: the same measurement runs in a worker thread, as the app runs it, while
the event loop answers a 10 ms "key" timer; the lateness of those timers (p50/p95), against
the same timer with nothing running, says whether a key press would wait.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from core.consensus.sentences import split_sentences
from core.consensus.tracker import ConsensusTracker
from core.store.embedder import BuiltinEmbedder

KEY_S = 0.010


def answers(embedder: BuiltinEmbedder, count: int, tokens: int) -> list[str]:
    """``count`` distinct answers of about ``tokens`` tokens, from real reference prose."""
    import pydoc_data.topics

    texts = [t for _, t in sorted(pydoc_data.topics.topics.items())]
    prose = " ".join(p for t in texts for p in t.split("\n\n") if not p.startswith(" "))
    sentences = iter(split_sentences(prose))
    out = []
    for _ in range(count):  # whole sentences (the embedder truncates one text at 256 tokens)
        answer: list[str] = []
        size = 0
        while size < tokens:
            sentence = next(sentences, None)
            if sentence is None:
                raise SystemExit(f"not enough reference prose for {count} answers")
            answer.append(sentence)
            size += embedder.count_tokens(sentence)
        out.append(" ".join(answer))
    return out


def last_answer_ms(embedder: BuiltinEmbedder, texts: Sequence[str]) -> tuple[float, float]:
    """(tracker update for the last answer, the embedder alone on its sentences), in ms."""
    names = [f"m{i}" for i in range(len(texts))]
    tracker = ConsensusTracker(embedder, names)
    for name, text in zip(names[:-1], texts[:-1], strict=True):
        tracker.add(name, text)
    sentences = split_sentences(texts[-1])
    start = time.perf_counter()
    embedder.embed(sentences)
    floor = time.perf_counter() - start
    start = time.perf_counter()
    tracker.add(names[-1], texts[-1])
    update = time.perf_counter() - start
    return update * 1000, floor * 1000


async def key_lateness(work: object | None) -> list[float]:
    """How late a 10 ms timer fires (ms), while ``work`` runs in a thread (or nothing)."""
    late: list[float] = []
    task = asyncio.create_task(asyncio.to_thread(work)) if callable(work) else None
    deadline = time.perf_counter() + 1.0
    while (task is not None and not task.done()) or (
        task is None and time.perf_counter() < deadline
    ):
        start = time.perf_counter()
        await asyncio.sleep(KEY_S)
        late.append((time.perf_counter() - start - KEY_S) * 1000)
    if task is not None:
        await task
    return late


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,16,32")
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    embedder = BuiltinEmbedder()
    embedder.load()
    texts = answers(embedder, max(sizes), args.tokens)
    embedder.embed(split_sentences(texts[0]))  # warm the session

    print(f"## Consensus update on the last answer (~{args.tokens} tokens each)\n")
    print("| answers | update p50 ms | floor p50 ms | update ÷ floor | update p95 ms |")
    print("|---|---|---|---|---|")
    for n in sizes:
        runs = [last_answer_ms(embedder, texts[:n]) for _ in range(args.repeat)]
        updates, floors = [u for u, _ in runs], [f for _, f in runs]
        ratio = statistics.median(u / f for u, f in runs)
        print(
            f"| {n} | {statistics.median(updates):.0f} | {statistics.median(floors):.0f} "
            f"| {ratio:.2f}x | {pct(updates, 0.95):.0f} |"
        )

    def measure_all() -> None:
        tracker = ConsensusTracker(embedder, [f"m{i}" for i in range(8)])
        for i, text in enumerate(texts[:8]):
            tracker.add(f"m{i}", text)

    idle = asyncio.run(key_lateness(None))
    busy = asyncio.run(key_lateness(measure_all))
    print("\n## A 10 ms key timer while 8 answers are measured in a worker thread\n")
    print("| | timers | lateness p50 ms | lateness p95 ms |")
    print("|---|---|---|---|")
    for label, late in (("idle loop", idle), ("while measuring", busy)):
        print(f"| {label} | {len(late)} | {pct(late, 0.5):.1f} | {pct(late, 0.95):.1f} |")


if __name__ == "__main__":
    main()
