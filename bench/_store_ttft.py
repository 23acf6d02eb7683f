"""What retrieval adds to the first token (warm, in one process; cold, a fresh `quorum ask`) and
to the TUI's first paint, each against the same thing without it, measured in turns."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio
import tomli_w

from bench._app_start import launch
from bench._server import model_id
from bench.store_quality import QUESTIONS
from core.config import ModelSpec, StoreSettings
from core.engine import FanOut
from core.events import Failed, Source, TextDelta
from core.providers import ProviderSet, make_client
from core.store.embedder import BuiltinEmbedder
from core.store.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parent.parent
MODEL = model_id(0.0, 20, 0.02)  # first token at once: only the client's own time is measured


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


@contextmanager
def loopback() -> Iterator[str]:
    """bench/_server.py in its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._server"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        process.terminate()
        process.wait(10)


async def _first_token(
    specs: Sequence[ModelSpec],
    providers: ProviderSet,
    prompt: str,
    started: float,
    context: Sequence[Source],
) -> float:
    first = None
    async with FanOut(specs, providers, prompt, context=context).run() as events:
        async for event in events:
            if isinstance(event, TextDelta) and first is None:
                first = time.perf_counter()
            elif isinstance(event, Failed):
                raise SystemExit(f"loopback model failed: {event.message}")
    assert first is not None
    return (first - started) * 1000


def bench_first_token(embedder: BuiltinEmbedder, work: Path, topics_kb: Path, rounds: int) -> None:
    full = KnowledgeBase(StoreSettings(), root=topics_kb, embedder=embedder)
    empty = KnowledgeBase(StoreSettings(), root=work / "empty-store", embedder=embedder)
    full.warm()
    questions = [q for q, _ in QUESTIONS]
    warm: dict[str, list[float]] = {"none": [], "empty": [], "full": []}
    with loopback() as url:
        spec = ModelSpec(
            name="m",
            provider="openai",
            model=MODEL,
            base_url=f"{url}/v1",
            api_key="bench",
            max_retries=0,
        )

        async def run() -> None:
            async with make_client(1) as client:
                providers = ProviderSet(client)
                for q in questions[:3]:  # connection and code paths warmed
                    await _first_token([spec], providers, q, time.perf_counter(), ())
                for q in questions * 2:
                    t0 = time.perf_counter()
                    warm["none"].append(await _first_token([spec], providers, q, t0, ()))
                    t0 = time.perf_counter()
                    context = empty.search(q)
                    warm["empty"].append(await _first_token([spec], providers, q, t0, context))
                    t0 = time.perf_counter()
                    context = full.search(q)
                    warm["full"].append(await _first_token([spec], providers, q, t0, context))
                await providers.aclose()

        anyio.run(run)
        cold = _cold(url, work, topics_kb, questions, rounds)
    full.close()
    empty.close()
    chunks = KnowledgeBase(StoreSettings(), root=topics_kb).catalog.stats()["chunks"]
    print(
        f"\n## What retrieval adds to time-to-first-token (ms; knowledge base: 79 documents, "
        f"{chunks:,} chunks)\n"
    )
    print(
        f"The model is the loopback server's `{MODEL}` (first token at once), so the "
        "baseline is the client's own time to first token.\n"
    )
    _row("case", "p50", "p95", "added to p50", "p50 ÷ no retrieval")
    _row(*("---",) * 5)
    for title, samples, base in (
        ("warm: no retrieval (baseline)", warm["none"], warm["none"]),
        ("warm: empty knowledge base", warm["empty"], warm["none"]),
        ("warm: search (model loaded, index open)", warm["full"], warm["none"]),
        ("cold `quorum ask --no-rag` (baseline)", cold["no-rag"], cold["no-rag"]),
        ("cold `quorum ask`, empty knowledge base", cold["empty"], cold["no-rag"]),
        (
            "cold `quorum ask`, knowledge base (imports, model load, open, search)",
            cold["full"],
            cold["no-rag"],
        ),
    ):
        p50, b50 = statistics.median(samples), statistics.median(base)
        _row(title, f"{p50:.1f}", f"{_p95(samples):.1f}", f"{p50 - b50:+.1f}", f"{p50 / b50:.2f}")
    print(
        f"\n(warm: {len(warm['none'])} questions per row; cold: {rounds} fresh processes per "
        "row, measured from the process start to the first streamed token on its stdout)"
    )


def _cold(
    url: str, work: Path, topics_kb: Path, questions: Sequence[str], rounds: int
) -> dict[str, list[float]]:
    config = work / "ttft-config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "history": {"enabled": False},
                "models": [
                    {
                        "name": "m",
                        "provider": "openai",
                        "model": MODEL,
                        "base_url": f"{url}/v1",
                        "api_key_env": "QUORUM_BENCH_KEY",
                        "max_retries": 0,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    full_home, empty_home = work / "ttft-home-full", work / "ttft-home-empty"
    if not (full_home / "store").exists():
        shutil.copytree(topics_kb, full_home / "store")
    empty_home.mkdir(exist_ok=True)
    cases = {
        "no-rag": (full_home, ["--no-rag"]),
        "empty": (empty_home, []),
        "full": (full_home, []),
    }
    out: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(rounds + 1):
        for name, (home, extra) in cases.items():
            ms = _ask(config, home, questions[i % len(questions)], extra)
            if i:  # the first round warms the disk cache
                out[name].append(ms)
    return out


def _ask(config: Path, home: Path, question: str, extra: list[str]) -> float:
    env = {
        **os.environ,
        "QUORUM_CONFIG": str(config),
        "QUORUM_HOME": str(home),
        "QUORUM_BENCH_KEY": "bench",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "ask", "--jsonl", *extra, question],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = None
    for line in process.stdout:
        if first is None and json.loads(line).get("type") == "text":
            first = time.perf_counter()
    err = process.stderr.read() if process.stderr else ""
    if process.wait(60) != 0 or first is None:
        raise SystemExit(f"quorum ask failed: {err[-500:]}")
    return (first - started) * 1000


def bench_first_paint(work: Path, topics_kb: Path, rounds: int) -> None:
    """The app's first paint with no knowledge base vs a full one in the same kind of home."""
    empty_home, full_home = work / "paint-home-empty", work / "paint-home-full"
    for home in (empty_home, full_home):
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    shutil.copytree(topics_kb, full_home / "store")
    launch(4, home=empty_home)  # warm the disk cache
    times: dict[str, list[float]] = {"empty": [], "full": []}
    heavy = set()
    opened = False
    for _ in range(rounds):
        times["empty"].append(launch(4, home=empty_home).first_paint_s * 1000)
        start = launch(4, home=full_home)
        times["full"].append(start.first_paint_s * 1000)
        heavy.add(start.heavy_modules)
        opened = opened or start.store_opened
    e, f = statistics.median(times["empty"]), statistics.median(times["full"])
    spread = statistics.pstdev(times["empty"] + times["full"])
    print(f"\n## First paint of the TUI (4 panes, fresh process, median of {rounds}, in turns)\n")
    _row(
        "no knowledge base ms",
        "79-document knowledge base ms",
        "difference ms",
        "ratio",
        "spread (stdev) ms",
        "heavy modules at first paint",
    )
    _row(*("---",) * 6)
    _row(
        f"{e:.0f}",
        f"{f:.0f}",
        f"{f - e:+.0f}",
        f"{f / e:.3f}",
        f"{spread:.0f}",
        ", ".join(sorted(heavy)),
    )
    print(
        "\nHeavy modules: chromadb, onnxruntime, tokenizers or llama_cpp imported when the first "
        "frame was painted (- for none). "
        + (
            "The app had opened the knowledge base (core.store.kb imported) by the time its "
            "history was loaded."
            if opened
            else "The app had not imported core.store.kb by the time its history was loaded: "
            "nothing of the knowledge base runs at start, so the two columns differ by noise only."
        )
    )
