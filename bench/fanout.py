"""How close the fan-out gets to the physical limit, and what it costs per streamed token.

    .venv/bin/python bench/fanout.py            # N = 1, 8, 32, 128 (about 5 minutes)
    .venv/bin/python bench/fanout.py --quick    # N = 1, 8, 32, one run each

N models stream ``--tokens`` tokens each over ``--duration`` s from a loopback server running in
its own process (bench/_server.py), each with its own first-token delay (spread over 0.05-0.5 s;
the slowest model is listed last, the worst place for it, and is the same scripted model at
every N). For every N the same workload runs:

- quorum:        `core.engine.FanOut` with the real providers, as ``quorum ask`` runs it;
- quorum+uvloop: the same on uvloop's event loop (when uvloop is installed);
- httpx floor:   a bare ``httpx.AsyncClient`` loop that only reads the same streams (the CPU
                 floor any httpx-based engine pays; quorum's own overhead is the difference);
- socket floor:  a bare asyncio protocol reading them (the event loop's own floor);
- threads:       ``ThreadPoolExecutor(max_workers=N)`` of blocking ``httpx.Client`` calls that
                 parse the SSE and collect the text (the usual "just use threads" fix);
- sequential:    the same blocking call in a loop (wall = sum of all models' times).

A second table runs the same streams from memory (an ``httpx.MockTransport`` that hands over one
frame per event-loop pass, no sockets, no pacing), through quorum and through a bare httpx loop:
their difference is the CPU of Quorum's own code per token (SSE decoding, the provider decoder,
ModelRun, the event stream and its consumer), free of the network's noise.

Reported: wall time / the slowest model's own time when run alone through quorum (measured in
the same run; 1.0 is the physical limit), and client-process CPU time (user + sys, every thread)
per streamed token. Ratios are medians over ``--repeat`` runs; the machine may be noisy, so only
figures from one run should be compared with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # also runnable as `python bench/fanout.py`

from bench._server import model_id  # noqa: E402
from core.config import ModelSpec  # noqa: E402
from core.engine import FanOut  # noqa: E402
from core.events import Failed, Finished, TextDelta  # noqa: E402
from core.providers import ProviderSet, make_client  # noqa: E402
from tests.loopback import openai_stream  # noqa: E402

FASTEST_TTFT_S = 0.05
SLOWEST_TTFT_S = 0.5


@dataclass(frozen=True, slots=True)
class Workload:
    base_url: str
    n: int
    tokens: int
    duration_s: float

    def ttft(self, i: int) -> float:
        """The last model is the slowest (the worst place for it: it is started last); the
        others spread up from the fastest."""
        if self.n == 1:
            return SLOWEST_TTFT_S
        return FASTEST_TTFT_S + (SLOWEST_TTFT_S - FASTEST_TTFT_S) * i / (self.n - 1)

    def model_ids(self) -> list[str]:
        return [model_id(self.ttft(i), self.tokens, self.duration_s) for i in range(self.n)]

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    @property
    def total_tokens(self) -> int:
        return self.n * self.tokens

    def nominal_s(self, i: int) -> float:
        """What the server's script takes for model i: the delay, then one frame per interval
        for every token plus the finish, usage and [DONE] frames."""
        return self.ttft(i) + (self.tokens + 3) * self.duration_s / self.tokens


@dataclass(frozen=True, slots=True)
class Measured:
    wall_s: float
    cpu_s: float
    tokens: int  # streamed text deltas actually received


def _cpu() -> float:
    return time.process_time()  # user + sys of this process, all threads


def _body(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "benchmark"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


# --- quorum -----------------------------------------------------------------------------------
async def _quorum(work: Workload) -> Measured:
    specs = [
        ModelSpec(
            name=f"m{i:03d}",
            provider="openai",
            model=model,
            base_url=f"{work.base_url}/v1",
            api_key="bench",
        )
        for i, model in enumerate(work.model_ids())
    ]
    async with make_client(work.n) as client:
        return await _drain(FanOut(specs, ProviderSet(client), "benchmark"), work)


async def _drain(fanout: FanOut, work: Workload) -> Measured:
    """Consume a fan-out as `quorum ask` does; any model not streaming all its tokens aborts."""
    tokens = 0
    failures: list[str] = []
    cpu, start = _cpu(), time.perf_counter()
    async with fanout.run() as events:
        async for event in events:
            if isinstance(event, TextDelta):
                tokens += 1
            elif isinstance(event, Failed):
                failures.append(f"{event.model}: {event.kind}: {event.message}")
            elif isinstance(event, Finished) and event.stats.tokens_out != work.tokens:
                failures.append(f"{event.model}: {event.stats.tokens_out} tokens")
    wall, cpu = time.perf_counter() - start, _cpu() - cpu
    if failures:
        raise SystemExit("quorum run failed: " + "; ".join(failures[:3]))
    return Measured(wall, cpu, tokens)


# --- httpx floor ------------------------------------------------------------------------------
async def _httpx_floor(work: Workload) -> Measured:
    chunks = 0

    async def read(client: httpx.AsyncClient, model: str) -> None:
        nonlocal chunks
        async with client.stream("POST", work.url, json=_body(model)) as response:
            async for _ in response.aiter_bytes():
                chunks += 1

    async with make_client(work.n) as client:
        cpu, start = _cpu(), time.perf_counter()
        async with anyio.create_task_group() as group:
            for model in work.model_ids():
                group.start_soon(read, client, model)
        wall, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(wall, cpu, work.total_tokens)


# --- in memory: Quorum's own CPU per token, without sockets ----------------------------------
class _Frames(httpx.AsyncByteStream):
    """One recorded frame per event-loop pass, as a socket delivering one token per read."""

    def __init__(self, frames: Sequence[bytes]) -> None:
        self._frames = frames

    async def __aiter__(self) -> Any:
        for frame in self._frames:
            await anyio.lowlevel.checkpoint()
            yield frame


def _memory_client(tokens: int) -> httpx.AsyncClient:
    frames = [part for _, part in openai_stream([f"t{i} " for i in range(tokens)]).parts]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Frames(frames)
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def _quorum_in_memory(work: Workload) -> Measured:
    specs = [
        ModelSpec(
            name=f"m{i:03d}",
            provider="openai",
            model=f"m{i}",
            base_url="http://memory/v1",
            api_key="bench",
        )
        for i in range(work.n)
    ]
    async with _memory_client(work.tokens) as client:
        return await _drain(FanOut(specs, ProviderSet(client), "benchmark"), work)


async def _httpx_in_memory(work: Workload) -> Measured:
    async def read(client: httpx.AsyncClient) -> None:
        async with client.stream("POST", "http://memory/v1/chat/completions") as response:
            async for _ in response.aiter_bytes():
                pass

    async with _memory_client(work.tokens) as client:
        cpu, start = _cpu(), time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(work.n):
                group.start_soon(read, client)
        wall, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(wall, cpu, work.total_tokens)


# --- socket floor -----------------------------------------------------------------------------
class _Drain(asyncio.Protocol):
    """Receives one chunked response and throws it away: the event loop's own cost."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self._done = done

    def data_received(self, data: bytes) -> None:
        if data.endswith(b"0\r\n\r\n") and not self._done.done():
            self._done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_exception(exc or ConnectionError("closed before the end"))


async def _socket_floor(work: Workload) -> Measured:
    """The same streams read by a bare asyncio protocol, no HTTP library: the loop's floor."""
    loop = asyncio.get_running_loop()
    url = httpx.URL(work.url)
    host, port = url.host, url.port or 80

    async def read(model: str) -> None:
        done: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(lambda: _Drain(done), host, port)
        body = json.dumps(_body(model)).encode()
        transport.write(
            b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (url.raw_path, host.encode(), len(body), body)
        )
        try:
            await done
        finally:
            transport.close()

    cpu, start = _cpu(), time.perf_counter()
    await asyncio.gather(*(read(m) for m in work.model_ids()))
    wall, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(wall, cpu, work.total_tokens)


# --- blocking baselines -----------------------------------------------------------------------
def _blocking_answer(client: httpx.Client, url: str, model: str) -> int:
    """What the usual hand-written client does: stream, split SSE lines, parse, collect."""
    text: list[str] = []
    with client.stream("POST", url, json=_body(model)) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            for choice in json.loads(payload).get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    text.append(content)
    return len(text)


def _blocking_client(n: int) -> httpx.Client:
    limits = httpx.Limits(max_connections=n + 2, max_keepalive_connections=n + 2)
    return httpx.Client(limits=limits, timeout=60.0)


def _thread_pool(work: Workload) -> Measured:
    with _blocking_client(work.n) as client, ThreadPoolExecutor(max_workers=work.n) as pool:
        cpu, start = _cpu(), time.perf_counter()
        counts = list(pool.map(lambda m: _blocking_answer(client, work.url, m), work.model_ids()))
        wall, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(wall, cpu, sum(counts))


def _sequential(work: Workload) -> Measured:
    with _blocking_client(1) as client:
        cpu, start = _cpu(), time.perf_counter()
        counts = [_blocking_answer(client, work.url, m) for m in work.model_ids()]
        wall, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(wall, cpu, sum(counts))


# --- running and reporting --------------------------------------------------------------------
class Server:
    """bench/_server.py in a child process, so its CPU is not counted as the client's."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench._server"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise SystemExit("the benchmark server did not start")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def lateness(self) -> dict[str, float]:
        return dict(httpx.get(f"{self.url}/stats").json())

    def arrivals(self) -> list[float]:
        return list(httpx.get(f"{self.url}/arrivals").json())

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)


HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
Method = Callable[[Workload], Measured]


def _async(fn: Callable[[Workload], Any], *, uvloop: bool = False) -> Method:
    return lambda work: anyio.run(fn, work, backend_options={"use_uvloop": uvloop})


# (column, how to run it); every one of these runs --repeat times per N, interleaved.
ASYNC_METHODS: dict[str, Method] = {
    "quorum": _async(_quorum),
    **({"quorum+uvloop": _async(_quorum, uvloop=True)} if HAS_UVLOOP else {}),
    "httpx floor": _async(_httpx_floor),
    "socket floor": _async(_socket_floor),
}
IN_MEMORY: dict[str, Method] = {
    "quorum": _async(_quorum_in_memory),
    "httpx shell": _async(_httpx_in_memory),
}


@dataclass(frozen=True, slots=True)
class Row:
    n: int
    runs: dict[str, list[Measured]]
    sequential_s: float | None
    sequential_extrapolated: bool
    server_late_ms: float
    send_spread_ms: float  # quorum: first request to last request, at the server

    def wall(self, method: str) -> float:
        return statistics.median(r.wall_s for r in self.runs[method])

    def us_per_token(self, method: str) -> float:
        return statistics.median(r.cpu_s / r.tokens * 1e6 for r in self.runs[method])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Quorum fan-out benchmark: wall time vs the slowest model, CPU per token."
    )
    parser.add_argument("--sizes", default="1,8,32,128", help="comma-separated N (%(default)s)")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per model (%(default)s)")
    parser.add_argument(
        "--duration", type=float, default=2.0, help="seconds per stream (%(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per N (%(default)s)")
    parser.add_argument(
        "--sequential-max",
        type=int,
        default=32,
        help="run the sequential baseline up to this N, extrapolate above (%(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="N <= 32, one run each")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if args.quick:
        sizes, args.repeat, args.sequential_max = [n for n in sizes if n <= 32], 1, 8
    if not sizes or min(sizes) < 1 or args.tokens < 1 or args.repeat < 1 or args.duration <= 0:
        parser.error("--sizes, --tokens and --repeat must be >= 1 and --duration > 0")

    server = Server()
    try:
        alone, rows = _run_all(server, sizes, args)
    finally:
        server.close()
    _print_report(alone, rows, args)
    return 0


def _run_all(server: Server, sizes: list[int], args: argparse.Namespace) -> tuple[float, list[Row]]:
    def work(n: int) -> Workload:
        return Workload(server.url, n, args.tokens, args.duration)

    quorum = ASYNC_METHODS["quorum"]
    quorum(work(1))  # warm-up: imports, first connection
    alone = statistics.median(quorum(work(1)).wall_s for _ in range(max(3, args.repeat)))
    _progress(f"slowest model alone through quorum: {alone:.3f} s")
    rows: list[Row] = []
    reference: tuple[Workload, float] | None = None  # the largest sequential run measured
    for n in sizes:
        w = work(n)
        server.lateness()  # reset
        runs: dict[str, list[Measured]] = {name: [] for name in ASYNC_METHODS}
        spreads: list[float] = []
        for _ in range(args.repeat):
            for name, method in ASYNC_METHODS.items():
                server.arrivals()  # reset
                runs[name].append(method(w))
                if name == "quorum":
                    arrivals = server.arrivals()
                    spreads.append((max(arrivals) - min(arrivals)) * 1000)
        late = server.lateness()["max_late_ms"]
        runs["threads"] = [_thread_pool(w)]
        for name, method in IN_MEMORY.items():
            runs[f"memory {name}"] = [method(w) for _ in range(args.repeat)]
        sequential_s, extrapolated = None, False
        if n <= args.sequential_max:
            sequential_s = _sequential(w).wall_s
            reference = (w, sequential_s)
        elif reference is not None:
            # Scale the largest measured sequential time by the scripts' nominal totals.
            ref, ref_s = reference
            nominal = sum(w.nominal_s(i) for i in range(n))
            sequential_s = ref_s * nominal / sum(ref.nominal_s(i) for i in range(ref.n))
            extrapolated = True
        rows.append(Row(n, runs, sequential_s, extrapolated, late, statistics.median(spreads)))
        _progress(f"N={n} done")
    return alone, rows


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_table(title: str, header: Sequence[str], rows: list[list[str]]) -> None:
    table = [list(header), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"\n{title}")
    for r in table:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))


def _print_report(alone: float, rows: list[Row], args: argparse.Namespace) -> None:
    quorum_columns = [name for name in ASYNC_METHODS if name.startswith("quorum")]
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, httpx {httpx.__version__}"
        f"{', uvloop available' if HAS_UVLOOP else ''}"
    )
    print(
        f"workload: N models x {args.tokens} tokens over {args.duration:g} s each, first-token "
        f"delays {FASTEST_TTFT_S}-{SLOWEST_TTFT_S} s, OpenAI SSE, server in its own process"
    )
    print(
        f"slowest model alone through quorum: {alone:.3f} s (the denominator below); "
        f"medians of {args.repeat} run(s) per N"
    )

    def sequential(row: Row) -> str:
        if row.sequential_s is None:
            return "-"
        ratio = f"{row.sequential_s / alone:.2f}"
        return f"~{ratio} (extrapolated)" if row.sequential_extrapolated else ratio

    _print_table(
        "wall time / slowest model alone (physical limit 1.0; target <= 1.03 at N=128)",
        ["N", *quorum_columns, "threads", "sequential", "quorum send spread ms", "server lag ms"],
        [
            [
                str(row.n),
                *(f"{row.wall(c) / alone:.3f}" for c in quorum_columns),
                f"{row.wall('threads') / alone:.3f}",
                sequential(row),
                f"{row.send_spread_ms:.0f}",
                f"{row.server_late_ms:.1f}",
            ]
            for row in rows
        ],
    )
    _print_table(
        "client CPU (user+sys, all threads) per streamed token, µs (target <= 30 for quorum)",
        [
            "N",
            *quorum_columns,
            "quorum - httpx floor",
            "httpx floor",
            "socket floor",
            "threads",
        ],
        [
            [
                str(row.n),
                *(f"{row.us_per_token(c):.1f}" for c in quorum_columns),
                f"{row.us_per_token('quorum') - row.us_per_token('httpx floor'):.1f}",
                f"{row.us_per_token('httpx floor'):.1f}",
                f"{row.us_per_token('socket floor'):.1f}",
                f"{row.us_per_token('threads'):.1f}",
            ]
            for row in rows
        ],
    )
    _print_table(
        "in memory, no sockets: CPU per token, µs (the difference is Quorum's own code)",
        ["N", "quorum", "httpx shell", "quorum - shell"],
        [
            [
                str(row.n),
                f"{row.us_per_token('memory quorum'):.1f}",
                f"{row.us_per_token('memory httpx shell'):.1f}",
                f"{row.us_per_token('memory quorum') - row.us_per_token('memory httpx shell'):.1f}",
            ]
            for row in rows
        ],
    )
    print(
        "\nquorum = FanOut as `quorum ask` runs it (asyncio; +uvloop: the same on uvloop); "
        "httpx floor = httpx.AsyncClient only reading the same streams; socket floor = a bare "
        "asyncio protocol reading them; threads = ThreadPoolExecutor(max_workers=N) of blocking "
        "httpx.Client calls parsing the SSE (one run); sequential = the same calls in a loop; "
        "send spread = how long quorum took to get every request to the server (the slowest "
        "model is the last in the list); server lag = the latest any stream's last write came, "
        "vs its schedule."
    )


if __name__ == "__main__":
    raise SystemExit(main())
