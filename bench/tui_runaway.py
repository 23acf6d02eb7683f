"""A runaway answer in the terminal app (issue #11): 16 panes each streaming one paragraph that
never ends (no blank line: a model repeating itself, or base64), at full speed, against the same
panes streaming normal Markdown at full speed, in the same process.

    .venv/bin/python bench/tui_runaway.py                    # 16 panes, 60 s per mode
    .venv/bin/python bench/tui_runaway.py --seconds 20 --before HEAD~1
    .venv/bin/python bench/tui_runaway.py --rate 200        # a fast model, not the socket's pace

The provider server runs in its own process and sends as fast as the app reads (TCP
backpressure); the app runs headless in this one, every frame also turned into terminal output.
``--before REV`` adds a run with the pane renderer of that commit (`tui/blocks.py`,
`tui/markdown.py`, `tui/widgets/stream_view.py`, `tui/widgets/pane.py` loaded from git), so
before and after are measured on the same machine in the same minute.

Measures, per mode, while streaming:
  recv MB      the text the app took in (all panes), and MB/s
  fps          frames drawn per second
  key p50/p95  key press in the prompt → the frame that shows it (ms)
  stall p99    event-loop lateness of a 10 ms ticker (ms)
  / normal      key p95 and stall p99 over the normal-Markdown run's
Target: key p95 < 50 ms with 16 runaway panes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import multiprocessing as mp
import os
import random
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.tui_stream import (  # noqa: E402
    _wait_port,
    bench_settings,
    free_port,
    percentile,
    tokens,
)

WORDS = "the model keeps saying the same thing over and over again as it goes on".split()  # noqa: SIM905


def _pieces(kind: str, index: int) -> Iterator[str]:
    """Tokens forever: normal Markdown, repeated words, or base64 (no space at all)."""
    if kind == "normal":
        corpus = tokens(2000)
        while True:
            yield from corpus
    if index % 2:
        rng = random.Random(index)
        while True:
            yield base64.b64encode(rng.randbytes(12)).decode()
    while True:
        for word in WORDS:
            yield word + " "


def _frames(kind: str, index: int, seconds: float, rate: float) -> Iterator[tuple[float, bytes]]:
    from tests.loopback import sse

    base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}

    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse({**base, "choices": [choice]})

    yield 0.0, chunk({"role": "assistant", "content": ""})
    deadline = time.monotonic() + seconds
    for count, piece in enumerate(_pieces(kind, index)):
        if rate:
            if time.monotonic() > deadline:
                break
            yield 1 / rate, chunk({"content": piece})
        elif count % 32 == 0:
            if time.monotonic() > deadline:
                break
            yield 1e-4, chunk({"content": piece})  # a pause lets the socket drain: backpressure
        else:
            yield 0.0, chunk({"content": piece})
    yield 0.0, chunk({}, "stop") + b"data: [DONE]\n\n"


def _serve(port: int, names: list[str], kind: str, seconds: float, rate: float) -> None:
    from tests.loopback import LoopbackServer, Reply

    server = LoopbackServer(port=port)
    for index, name in enumerate(names):
        server.script(name, Reply(parts=_frames(kind, index, seconds, rate)))  # type: ignore[arg-type]
    asyncio.run(server.serve_forever())


# --- the renderer of an earlier commit, for a before/after in one run ------------------------
_OLD = ("tui.blocks", "tui.markdown", "tui.widgets.stream_view", "tui.widgets.pane")


def load_renderer(rev: str) -> type[Any]:
    """`ModelPane` as it was at ``rev``, with the blocks, Markdown and view modules of then."""
    import tui.widgets.pane  # noqa: F401  (the current modules, put back afterwards)

    saved = {name: sys.modules[name] for name in _OLD}
    try:
        for name in _OLD:
            path = name.replace(".", "/") + ".py"
            source = subprocess.run(
                ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True
            ).stdout.decode()
            module = types.ModuleType(name)
            module.__file__ = str(ROOT / path)
            sys.modules[name] = module
            exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
        pane: type[Any] = sys.modules["tui.widgets.pane"].ModelPane
    finally:
        sys.modules.update(saved)
    return pane


@dataclass
class Result:
    mode: str
    received_mb: float
    seconds: float
    fps: float
    key_p50: float
    key_p95: float
    stall_p99: float


async def run_mode(
    mode: str,
    panes: int,
    seconds: float,
    rate: float,
    pane_class: type[Any] | None,
    paced: bool = True,
) -> Result:
    from textual import events

    from core.config import ModelSpec
    from core.events import TextDelta
    from tui.app import QuorumApp
    from tui.history_bridge import MemoryHistory
    from tui.widgets.prompt import PromptArea

    kind = "normal" if mode == "normal" else "runaway"
    names = [f"m{i:02d}" for i in range(panes)]
    port = free_port()
    server = mp.get_context("spawn").Process(
        target=_serve, args=(port, names, kind, seconds + 5, rate), daemon=True
    )
    server.start()
    _wait_port(port)
    extra: dict[str, Any] = {}
    if "max_answer_chars" in {f.name for f in dataclasses.fields(ModelSpec)}:
        extra["max_answer_chars"] = 10**10  # measure the drawing, not the answer cap
    settings = bench_settings(names, port, seconds, **extra)
    app = QuorumApp(settings, history=MemoryHistory())
    app.consensus.stage = lambda: None  # type: ignore[method-assign]
    if not paced:
        app._intake = None  # type: ignore[assignment]  # every stream at its own speed
    if pane_class is not None:
        cls = pane_class

        def new_pane(spec: Any) -> Any:
            pane = cls(spec.name, spec.provider, show_figures=app.show_figures)
            app.panes[spec.name] = pane
            return pane

        app._new_pane = new_pane  # type: ignore[method-assign]
    received = [0]
    apply = app.apply_event

    def counted(event: Any) -> None:
        if isinstance(event, TextDelta):
            received[0] += len(event.text)
        apply(event)

    app.apply_event = counted  # type: ignore[method-assign]
    frames: list[float] = []
    presses: list[tuple[float, int]] = []
    latencies: list[float] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is None:
            return
        now = time.monotonic()
        render = getattr(renderable, "render_segments", None)
        if render is not None:
            render(app.console)
        frames.append(now)
        typed = app.query_one(PromptArea).text.count("x")
        while presses and presses[0][1] <= typed:
            latencies.append((now - presses.pop(0)[0]) * 1000)

    app._display = display  # type: ignore[method-assign]
    lateness: list[float] = []

    async def ticker() -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lateness.append((time.monotonic() - start - 0.01) * 1000)

    async with app.run_test(size=(240, 72)) as pilot:
        await pilot.pause()
        prompt = app.query_one(PromptArea)
        tick_task = asyncio.get_running_loop().create_task(ticker())
        app.send("Say it again.")
        sent_at = time.monotonic()
        frames.clear()
        typed = 0
        while time.monotonic() - sent_at < seconds:
            await asyncio.sleep(0.25)
            if prompt.has_focus:
                typed += 1
                presses.append((time.monotonic(), typed))
                app.post_message(events.Key("x", "x"))
        took = time.monotonic() - sent_at
        got = received[0]
        tick_task.cancel()
        app.action_cancel_all()
    server.terminate()
    server.join(5)
    return Result(
        mode,
        got / 1e6,
        took,
        len(frames) / took,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(lateness, 0.99),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--panes", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=0.0, help="tokens/s per pane; 0: full speed")
    parser.add_argument("--before", metavar="REV", help="also run the pane renderer of REV")
    parser.add_argument(
        "--unpaced", action="store_true", help="also run without the intake pacer (core.pacing)"
    )
    args = parser.parse_args()
    before = load_renderer(args.before) if args.before else None
    speed = f"{args.rate:g} tok/s per pane" if args.rate else "full speed"
    print(f"{args.panes} panes, {speed}, {args.seconds:g} s per mode; cpus={os.cpu_count()}")
    print(
        "| mode | recv MB | MB/s | fps | key p50 ms | key p95 ms | stall p99 ms | "
        "key p95 / normal | stall p99 / normal |"
    )
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    runs: list[tuple[str, type[Any] | None, bool]] = [
        ("normal", None, True),
        ("runaway", None, True),
    ]
    if args.unpaced:
        runs.append(("runaway unpaced", None, False))
    if before is not None:
        runs.append((f"runaway @ {args.before}", before, True))
    normal: Result | None = None
    for mode, pane_class, paced in runs:
        kind = "normal" if mode == "normal" else "runaway"
        r = asyncio.run(run_mode(kind, args.panes, args.seconds, args.rate, pane_class, paced))
        r = dataclasses.replace(r, mode=mode)
        normal = normal or r
        print(
            f"| {r.mode} | {r.received_mb:.1f} | {r.received_mb / r.seconds:.2f} | {r.fps:.1f} | "
            f"{r.key_p50:.0f} | {r.key_p95:.0f} | {r.stall_p99:.0f} | "
            f"{r.key_p95 / normal.key_p95:.2f} | {r.stall_p99 / normal.stall_p99:.2f} |",
            flush=True,
        )
        if mode == "runaway":
            verdict = "met" if r.key_p95 < 50 else "NOT met"
            print(f"target key p95 < 50 ms with runaway panes: {verdict}", flush=True)


if __name__ == "__main__":
    main()
