"""How the terminal app keeps up with many fast streams: Quorum's pane renderer against a
baseline that writes every token to Textual's MarkdownStream, in the same run.

    .venv/bin/python bench/tui_stream.py                 # 8 and 16 panes, 100 tok/s, 20 s
    .venv/bin/python bench/tui_stream.py --panes 4 --seconds 5

The provider server runs in its own process (so its CPU is not counted); the app runs headless
in this one, and every frame is also turned into terminal output (as a real terminal would need).

Measures, per mode and pane count:
  show/stream  time until the app has drawn every answer completely, over the stream's own
               duration (send → the server's last byte); 1.00 means it kept pace
  fps          frames drawn per second while streaming
  key p50/p95  key press in the prompt → the frame that shows it, while streaming (ms)
  stall p99    event-loop lateness of a 10 ms ticker (ms)
  cpu          the app process's CPU time over wall time while streaming (1.0 = one core)
and once: launch → first paint of a fresh `quorum`-like process with 8 panes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._app_start import launch  # noqa: E402

CORPUS = """\
## Choosing a store

A local **SQLite** file is usually the right first choice: it needs no server, it is fast for a
single writer, and it survives crashes thanks to its journal. When several processes write at
once, or the data must be shared across machines, move to *Postgres*.

Things to weigh:

- how many processes write at the same time
- whether the data must outlive the machine
- backups, and how you would restore one
- the cost of operating one more service

1. Start with SQLite and WAL mode.
2. Measure before moving anything.
3. Migrate only the tables that need it.

```python
import sqlite3

conn = sqlite3.connect("quorum.db")
conn.execute("PRAGMA journal_mode=WAL")
for row in conn.execute("SELECT id, query FROM turns ORDER BY id DESC LIMIT 5"):
    print(row)
```

> A store you never have to think about is worth more than a clever one.

In short: keep it simple, keep it local, and keep a `backup` script next to it.

"""


def tokens(count: int) -> list[str]:
    pieces = re.findall(r"\S+\s*|\s+", CORPUS)
    out: list[str] = []
    while len(out) < count:
        out.extend(pieces)
    return out[:count]


# --- the provider server, in a process of its own -------------------------------------------
def _serve(port: int, names: list[str], count: int, interval: float, ends: Any) -> None:
    from tests.loopback import LoopbackServer, Reply, openai_stream

    class Server(LoopbackServer):
        async def _send(self, reply: Reply, writer: asyncio.StreamWriter) -> bool:
            ok = await super()._send(reply, writer)
            ends.put(time.monotonic())
            return ok

    server = Server(port=port)
    body = tokens(count)
    for name in names:
        server.script(name, openai_stream(body, interval=interval, usage=None))
    asyncio.run(server.serve_forever())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the baseline: every token written to Textual's MarkdownStream ------------------------------
def baseline_app_class() -> type[Any]:
    from textual.app import ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown

    from core.events import ModelEvent, TextDelta
    from tui.app import QuorumApp
    from tui.widgets.pane import ModelPane

    class StreamPane(ModelPane):
        def compose(self) -> ComposeResult:
            yield self.header
            with VerticalScroll():
                yield Markdown()

        def on_mount(self) -> None:
            self.markdown = self.query_one(Markdown)
            self.stream = Markdown.get_stream(self.markdown)
            self.query_one(VerticalScroll).anchor()

        def apply(self, event: ModelEvent) -> None:
            self.state.apply(event)
            if isinstance(event, TextDelta):
                asyncio.get_running_loop().create_task(self.stream.write(event.text))

        def flush(self) -> None:
            self._dirty = False
            self.header.tick()

        @property
        def drawn_all(self) -> bool:
            return self.markdown.source == self.state.text and not self.stream._pending

    class BaselineApp(QuorumApp):
        def _new_pane(self, spec: Any) -> ModelPane:
            pane = StreamPane(spec.name, spec.provider)
            self.panes[spec.name] = pane
            return pane

    return BaselineApp


@dataclass
class Result:
    mode: str
    panes: int
    ratio: float
    gave_up: bool
    fps: float
    key_p50: float
    key_p95: float
    stall_p99: float
    cpu: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_mode(
    mode: str, panes: int, seconds: float, rate: float, give_up: float = 4.0
) -> Result:
    from textual import events

    from tui.app import QuorumApp
    from tui.history_bridge import MemoryHistory
    from tui.widgets.prompt import PromptArea

    count = int(seconds * rate)
    names = [f"m{i:02d}" for i in range(panes)]
    port = free_port()
    ctx = mp.get_context("spawn")
    ends = ctx.Queue()
    server = ctx.Process(target=_serve, args=(port, names, count, 1 / rate, ends), daemon=True)
    server.start()
    _wait_port(port)
    settings = bench_settings(names, port, seconds)
    cls = baseline_app_class() if mode == "baseline" else QuorumApp
    app = cls(settings, history=MemoryHistory())
    if mode == "no-consensus":  # the same app, without measuring the answers as they end
        app.consensus.stage = lambda: None  # type: ignore[method-assign]
    frames: list[float] = []
    presses: list[tuple[float, int]] = []
    latencies: list[float] = []
    state: dict[str, Any] = {"done_at": None}

    def drawn_all() -> bool:
        if app.busy:
            return False
        return all(
            getattr(p, "drawn_all", True) and p.state.state == "done" and not p._dirty
            for p in app.panes.values()
        )

    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is None:
            return
        now = time.monotonic()
        render = getattr(renderable, "render_segments", None)
        if render is not None:
            render(app.console)  # the terminal output a real terminal would receive
        frames.append(now)
        typed = app.query_one(PromptArea).text.count("x")
        while presses and presses[0][1] <= typed:
            latencies.append((now - presses.pop(0)[0]) * 1000)
        if state["done_at"] is None and state.get("sent") and drawn_all():
            state["done_at"] = now

    app._display = display  # type: ignore[method-assign]
    lateness: list[float] = []

    async def ticker() -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lateness.append((time.monotonic() - start - 0.01) * 1000)

    size = (200, 60) if panes <= 8 else (240, 72)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        prompt = app.query_one(PromptArea)
        tick_task = asyncio.get_running_loop().create_task(ticker())
        cpu0, sent_at = time.process_time(), time.monotonic()
        state["sent"] = True
        app.send("Which store should I use?")
        frames.clear()
        typed = 0
        while state["done_at"] is None:
            await asyncio.sleep(0.25)
            if app.busy and prompt.has_focus:
                typed += 1
                presses.append((time.monotonic(), typed))
                app.post_message(events.Key("x", "x"))
            if time.monotonic() - sent_at > seconds * give_up:
                state["done_at"] = time.monotonic()  # reported as "> give_up"
                state["gave_up"] = True
        cpu = (time.process_time() - cpu0) / (state["done_at"] - sent_at)
        tick_task.cancel()
    stream_end = max(ends.get(timeout=seconds * give_up) for _ in names)
    server.terminate()
    server.join(5)
    done_at = state["done_at"]
    window = [f for f in frames if f <= done_at]
    return Result(
        mode,
        panes,
        (done_at - sent_at) / (stream_end - sent_at),
        bool(state.get("gave_up")),
        len(window) / (done_at - sent_at),
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(lateness, 0.99),
        cpu,
    )


def bench_settings(names: Sequence[str], port: int, seconds: float, **extra: Any) -> Any:
    """Settings for ``names`` served by the bench server on ``port``, with deadlines far past
    a ``seconds``-long stream (a `core.config.Settings`; imported late, as the app is)."""
    from core.config import ModelSpec, Settings

    specs = tuple(
        ModelSpec(
            name=n,
            provider="openai",
            model=n,
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="bench-key",
            timeout_s=seconds * 10,
            idle_timeout_s=seconds * 10,
            **extra,
        )
        for n in names
    )
    return Settings(path=Path(tempfile.gettempdir()) / "bench-config.toml", models=specs)


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the bench server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--panes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["quorum", "baseline"],
        choices=["quorum", "no-consensus", "baseline"],
        help="no-consensus: the app without the consensus stage (its cost on keys and CPU)",
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=4.0,
        help="stop waiting after this many times the stream's duration",
    )
    args = parser.parse_args()
    print(f"{args.rate:g} tok/s per pane for {args.seconds:g} s; os.cpu_count()={os.cpu_count()}")
    print("| mode | panes | show/stream | fps | key p50 ms | key p95 ms | stall p99 ms | cpu |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for panes in args.panes:
        for mode in args.modes:
            r = asyncio.run(run_mode(mode, panes, args.seconds, args.rate, args.give_up))
            ratio = f"> {r.ratio:.1f} (gave up)" if r.gave_up else f"{r.ratio:.3f}"
            print(
                f"| {r.mode} | {r.panes} | {ratio} | {r.fps:.1f} | {r.key_p50:.0f} | "
                f"{r.key_p95:.0f} | {r.stall_p99:.0f} | {r.cpu:.2f} |",
                flush=True,
            )
    paints = [launch(8) for _ in range(3)]
    paint = statistics.median(p.first_paint_s for p in paints)
    heavy = paints[0].heavy_modules
    print(
        f"\nlaunch → first paint (8 panes, fresh process, median of 3): {paint:.3f} s; "
        f"heavy modules imported at start: {heavy}"
    )


if __name__ == "__main__":
    main()
