"""How the default local council performs on this machine.

    .venv/bin/python -m bench.local_council [--tokens 96] [--rounds 2]

For every local member of the bundled config.toml: time to first token and tokens/s when it
runs alone, then when all members run at once (the same fan-out the app runs), and the
process's peak memory. Each answer is forced to exactly ``--tokens`` tokens (end-of-turn tokens
banned) so that every run does the same work; every run gets a question the member has not
seen, so llama.cpp's prompt cache cannot make one phase look faster than the other.

If members really generate in parallel, the council's combined tokens/s ("together") is
higher than one member's alone, up to the number of cores free. The machine may be shared, so
the same run measures a baseline: how much faster N threads of plain GIL-free work (SHA-256 of
1 MiB buffers) go than one. The council's speed-up should track that baseline, not exceed it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import anyio

from core.config import ModelSpec, load_settings
from core.engine import FanOut
from core.paths import bundled_config_path
from core.providers.base import Provider
from core.providers.local import LocalProvider
from core.results import FanoutResult

NO_END_OF_TURN = {"logit_bias": {"0": -100.0, "2": -100.0}}
QUESTIONS = (
    "Explain how a bicycle works.",
    "Describe the water cycle.",
    "Why do we have seasons on Earth?",
    "How does a refrigerator keep food cold?",
    "What makes a good cup of tea?",
    "How do airplanes stay in the air?",
    "Explain what a computer program is.",
    "Why is the sky blue?",
    "How do plants make their food?",
    "What is the purpose of a library?",
)


class _Local:
    def __init__(self, provider: LocalProvider) -> None:
        self.provider = provider

    def get(self, name: str) -> Provider:
        if name != "local":
            raise KeyError(name)
        return self.provider


@dataclass(frozen=True)
class Sample:
    ttft_ms: float
    tokens: int
    tokens_per_s: float


async def ask(
    provider: LocalProvider, specs: Sequence[ModelSpec], question: str
) -> dict[str, Sample]:
    result = FanoutResult()
    async with FanOut(specs, _Local(provider), question).run() as events:
        async for event in events:
            result.apply(event)
    samples = {}
    for name, response in result.responses.items():
        s = response.stats
        if not response.ok or s.ttft_ms is None or s.tokens_per_s is None:
            raise SystemExit(f"{name} did not answer: {response.error_text}")
        samples[name] = Sample(s.ttft_ms, s.tokens_out or 0, s.tokens_per_s)
    return samples


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parallel_baseline(threads: int, hashes: int = 150) -> float:
    """Throughput of ``threads`` threads of GIL-free work relative to one thread."""
    buffer = bytes(1 << 20)

    def work() -> None:
        for _ in range(hashes):
            hashlib.sha256(buffer).digest()

    def rate(n: int) -> float:
        workers = [threading.Thread(target=work) for _ in range(n)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return n * hashes / (time.perf_counter() - started)

    return statistics.median(rate(threads) / rate(1) for _ in range(3))


async def measure(members: Sequence[ModelSpec], rounds: int) -> None:
    provider = LocalProvider(local_members=len(members))
    questions: Iterator[str] = itertools.cycle(QUESTIONS)
    try:
        started = time.perf_counter()
        await provider.preload(members)
        load_s = time.perf_counter() - started
        await ask(provider, members, next(questions))  # warm-up: first-run costs aside
        alone: dict[str, list[Sample]] = {m.name: [] for m in members}
        together: dict[str, list[Sample]] = {m.name: [] for m in members}
        walls_alone: list[float] = []
        walls_together: list[float] = []
        cores_used: list[float] = []
        for _ in range(rounds):
            wall = 0.0
            for member in members:
                t0 = time.perf_counter()
                alone[member.name].append(
                    (await ask(provider, [member], next(questions)))[member.name]
                )
                wall += time.perf_counter() - t0
            walls_alone.append(wall)
            t0, cpu0 = time.perf_counter(), cpu_seconds()
            for name, sample in (await ask(provider, members, next(questions))).items():
                together[name].append(sample)
            walls_together.append(time.perf_counter() - t0)
            cores_used.append((cpu_seconds() - cpu0) / walls_together[-1])
        baseline = await anyio.to_thread.run_sync(parallel_baseline, len(members))
        report(provider, members, alone, together, walls_alone, walls_together, load_s)
        print(
            f"cores busy while all ran (CPU time / wall): {statistics.median(cores_used):.2f} · "
            f"baseline: {len(members)} threads of GIL-free work = x{baseline:.2f} one thread"
        )
    finally:
        await provider.aclose()


def report(
    provider: LocalProvider,
    members: Sequence[ModelSpec],
    alone: dict[str, list[Sample]],
    together: dict[str, list[Sample]],
    walls_alone: list[float],
    walls_together: list[float],
    load_s: float,
) -> None:
    def med(samples: list[Sample], field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples)

    threads = provider.loaded()
    header = ("member", "threads", "ttft alone", "tok/s alone", "ttft together", "tok/s together")
    rows = [header]
    for m in members:
        rows.append(
            (
                m.name,
                str(threads.get(m.name, "?")),
                f"{med(alone[m.name], 'ttft_ms'):.0f} ms",
                f"{med(alone[m.name], 'tokens_per_s'):.1f}",
                f"{med(together[m.name], 'ttft_ms'):.0f} ms",
                f"{med(together[m.name], 'tokens_per_s'):.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    solo_rate = statistics.mean(med(alone[m.name], "tokens_per_s") for m in members)
    council_rate = sum(med(together[m.name], "tokens_per_s") for m in members)
    wall_alone = statistics.median(walls_alone)
    wall_together = statistics.median(walls_together)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print()
    print(
        f"members {len(members)} · cores {os.cpu_count()} · tokens per answer "
        f"{together[members[0].name][0].tokens} · rounds {len(walls_alone)}"
    )
    print(f"load (all members, background preload): {load_s:.2f} s")
    print(
        f"one member alone: {solo_rate:.1f} tok/s · all at once: {council_rate:.1f} tok/s "
        f"combined = x{council_rate / solo_rate:.2f} throughput"
    )
    print(
        f"wall: members one after another {wall_alone:.2f} s · all at once "
        f"{wall_together:.2f} s → ratio {wall_together / wall_alone:.2f} "
        f"(1.00 = no parallelism, {1 / len(members):.2f} = perfect)"
    )
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")
    load1, _, _ = os.getloadavg()
    print(f"machine load average at the end: {load1:.2f} (other processes compete for the cores)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=96, help="tokens per answer")
    parser.add_argument("--rounds", type=int, default=2, help="measurement rounds")
    args = parser.parse_args(argv)
    settings = load_settings(bundled_config_path())
    members = [
        replace(m, max_tokens=args.tokens, extra_body={**m.extra_body, **NO_END_OF_TURN})
        for m in settings.enabled_models
        if m.provider == "local"
    ]
    if not members:
        print("the bundled config has no local members", file=sys.stderr)
        return 2
    anyio.run(measure, members, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
