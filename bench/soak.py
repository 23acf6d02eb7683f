"""Load and soak: many consecutive questions in ONE process, resources before, during and after.

    .venv/bin/python -m bench.soak                  # 500 x 8 HTTP models, 50 local, 50 in the TUI
    .venv/bin/python -m bench.soak --quick          # 60 x 8, 12 local, 12 in the TUI
    .venv/bin/python -m bench.soak --parts http --questions 200

Parts (each in this same process, one after another, on the code paths the app and the CLI use):

- http:  ``bench/_server.py`` in a process of its own serves ``--models`` scripted models, the
         wire protocols mixed (OpenAI, Anthropic, Gemini, Ollama in turn). One long-lived httpx
         client and `ProviderSet` (as the app keeps them); per question a `FanOut` with the
         consensus stage as ``quorum ask`` builds it (`core.cli.ask.consensus_stage`: the built-in
         embedder, the first model as synthesizer) and the turn recorded by ``quorum ask``'s own
         `core.cli.recording.recording` (HistoryStore + HistoryWriter) into a real SQLite history
         under a temporary ``QUORUM_HOME``.
- local: the bundled council (``core.paths.bundled_config_path()``, ``provider = "local"``) with
         ``max_tokens`` cut to ``--local-tokens``, the same loop.
- tui:   `tui.app.QuorumApp` headless (as bench/tui_stream.py drives it) with the same 8 bench
         models and its own SQLite history; ``app.send`` per question, waiting until it is idle.

Sampled every ``--every`` questions: RSS (VmRSS), open fds, socket fds, established TCP
connections from this process to the server's port (/proc/net/tcp* against our socket inodes),
threads (Python's and the kernel's count), running asyncio tasks, child processes (the bench
server excluded) and seconds per question. Reported: start (nothing opened yet), before (after
the warm-up), 25/50/75/100 %, after (everything closed, still in the event loop) and after the
event loop ended; growth from warm-up to the end as a difference and a ratio, and one verdict per
resource. The verdicts never fail the run: they are a reading of the numbers.

"No growth beyond noise": RSS grows by less than 10 MB or 5 % from warm-up to the end (the
median of the second half's samples over the first half's, so that one sample falling on a
transient does not decide; the two end points are printed too); a count (fds,
sockets, connections, threads, tasks, children) sampled between questions ends no higher than
the highest it reached in the first half after warm-up (a pool's or a timer's normal swing), and
is released: no higher than after the warm-up once everything is closed (threads and children:
once the event loop has ended, since anyio keeps its idle worker threads until then). A
background sampler (every 0.1 s) also records each resource's peak while answers stream, per
half; what the process still holds after close (fd targets, thread names) is listed against the
warm-up and the start.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import io
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from bench._soak_probe import (
    COUNTS,
    Probe,
    Sample,
    difference,
    held,
)
from bench.local_council import QUESTIONS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._server import model_id  # noqa: E402
from core.config import ModelSpec, Settings  # noqa: E402
from core.consensus.settings import ConsensusSettings  # noqa: E402

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama")
RSS_NOISE_MB = 10.0
RSS_NOISE_SHARE = 0.05


def question(i: int) -> str:
    return f"Question {i}: {QUESTIONS[i % len(QUESTIONS)]}"


@dataclass(slots=True)
class Plan:
    """When to sample: the warm-up's end, 25/50/75/100 %, and every ``every`` questions."""

    questions: int
    warmup: int
    every: int
    marks: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.warmup = min(self.warmup, max(1, self.questions - 1))
        for share in (25, 50, 75, 100):
            at = max(self.warmup + 1, round(self.questions * share / 100))
            self.marks.setdefault(min(at, self.questions), f"{share} %")
        self.marks[self.warmup] = "before"

    def label(self, i: int) -> str | None:
        if i in self.marks:
            return self.marks[i]
        if i > self.warmup and (i - self.warmup) % self.every == 0:
            return ""
        return None


async def soak(
    name: str,
    plan: Plan,
    probe: Probe,
    ask: Callable[[int], Awaitable[str | None]],
    close: Callable[[], Awaitable[None]] | None = None,
) -> Part:
    """Ask ``plan.questions`` questions through ``ask`` (a problem comes back as a string),
    sampling as planned; then ``close`` and the after sample."""
    gc.collect()
    probe.take("start", 0)
    probe.held["start"] = held()
    problems: list[str] = []
    walls: list[float] = []
    done = 0
    half = next(at for at, label in plan.marks.items() if label == "50 %")

    def phase() -> str | None:
        return None if done < plan.warmup else "first" if done < half else "second"

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(probe.sample_during, 0.1, phase)
            for i in range(1, plan.questions + 1):
                t0 = time.perf_counter()
                problem = await ask(i)
                walls.append(time.perf_counter() - t0)
                if problem is not None:
                    problems.append(f"q{i}: {problem}")
                label = plan.label(i)
                if label is not None:
                    probe.take(label, i)
                if label == "before":
                    probe.held["before"] = held()
                done = i
            group.cancel_scope.cancel()
    finally:
        if close is not None:
            await close()
    if close is not None:
        await settled(probe, plan.questions)
    return Part(name, plan, probe, problems, walls)


async def settled(probe: Probe, questions: int) -> None:
    gc.collect()
    await anyio.sleep(0.5)  # closed connections and finishing threads settle
    probe.take("after (closed)", questions)
    probe.held["closed"] = held()


@dataclass(slots=True)
class Part:
    name: str
    plan: Plan
    probe: Probe
    problems: list[str]
    walls: list[float]
    notes: list[str] = field(default_factory=list)


# --- part 1: the bench server -----------------------------------------------------------------
def start_server() -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench._server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("PORT "):
        server.kill()
        raise SystemExit(f"the bench server did not start: {line!r}")
    return server, int(line.split()[1])


def bench_specs(port: int, n: int, tokens: int) -> tuple[ModelSpec, ...]:
    specs = []
    for i in range(n):
        protocol = PROTOCOLS[i % len(PROTOCOLS)]
        root = f"http://127.0.0.1:{port}"
        specs.append(
            ModelSpec(
                name=f"m{i:02d}-{protocol}",
                provider=protocol,
                model=model_id(0.01 + 0.005 * i, tokens, 0.1),
                base_url=f"{root}/v1" if protocol == "openai" else root,
                api_key="bench-key",
                max_tokens=64,
            )
        )
    return tuple(specs)


def bench_settings(specs: Sequence[ModelSpec], home: Path) -> Settings:
    return Settings(
        path=home / "config.toml",
        models=tuple(specs),
        consensus=ConsensusSettings(synthesizer=specs[0].name),
    )


_ASK_ARGS = argparse.Namespace(no_history=False, session=None, continue_session=False)


def check(result: Any, models: Sequence[ModelSpec], synthesis: bool) -> str | None:
    """What went wrong in one question, if anything."""
    bad = [f"{n}: {r.state} {r.error or ''}" for n, r in result.responses.items() if not r.ok]
    if len(result.responses) != len(models):
        bad.append(f"{len(result.responses)} of {len(models)} models answered")
    if result.consensus is None:
        bad.append("no consensus")
    if synthesis and not result.synthesis.ok:
        bad.append(f"synthesis {result.synthesis.state}")
    return "; ".join(bad) or None


class CliLoop:
    """``quorum ask``'s loop, many times over one long-lived client and provider set."""

    def __init__(self, settings: Settings, models: Sequence[ModelSpec], synthesis: bool) -> None:
        from core.providers import ProviderSet, make_client

        self.settings = settings
        self.models = tuple(models)
        self.synthesis = synthesis
        self.client = make_client(len(settings.models))
        self.providers = ProviderSet(self.client)

    async def ask(self, i: int) -> str | None:
        from core.cli.ask import consensus_stage
        from core.cli.recording import recording
        from core.engine import FanOut
        from core.results import FanoutResult

        prompt = question(i)
        stage = consensus_stage(self.settings, self.models, prompt, (), synthesis=self.synthesis)
        result = FanoutResult()
        errors = io.StringIO()
        with recording(self.settings, _ASK_ARGS, prompt, self.models, err=errors) as rec:
            fanout = FanOut(
                self.models,
                self.providers,
                prompt,
                conversations=rec.conversations,
                stages=(stage,),
            )
            async with fanout.run() as events:
                async for event in events:
                    result.apply(event)
                    if rec.writer is not None:
                        rec.writer.apply(event)
        json.dumps(result.to_json())  # what `ask --json` prints
        problem = check(result, self.models, self.synthesis)
        if errors.getvalue():
            problem = f"{problem or ''} {errors.getvalue().strip()}".strip()
        return problem

    async def close(self) -> None:
        await self.providers.aclose()
        await self.client.aclose()


def history_counts(home: Path) -> str:
    path = next(home.rglob("*.sqlite3"), None) or next(home.rglob("*.db"), None)
    if path is None:
        return "no history file found"
    with closing(sqlite3.connect(path)) as db:
        turns = db.execute("SELECT count(*), count(consensus_json) FROM turns").fetchone()
        states = db.execute("SELECT state, count(*) FROM turns GROUP BY state").fetchall()
        responses = db.execute("SELECT count(*) FROM responses").fetchone()[0]
    size = path.stat().st_size + sum(
        p.stat().st_size for p in path.parent.glob(path.name + "-*") if p.is_file()
    )
    shown = ", ".join(f"{s} {n}" for s, n in states)
    return (
        f"history: {turns[0]} turns ({shown}), {turns[1]} with a consensus, {responses} "
        f"responses, {size / 1e6:.1f} MB on disk"
    )


def run_http(args: argparse.Namespace, home: Path) -> Part:
    server, port = start_server()
    try:
        specs = bench_specs(port, args.models, args.tokens)
        settings = bench_settings(specs, home)
        plan = Plan(args.questions, args.warmup, args.every)

        async def main() -> Part:
            probe = Probe(port, {server.pid})
            loop = CliLoop(settings, specs, synthesis=True)
            return await soak("http", plan, probe, loop.ask, loop.close)

        part = run_loop(main)
        part.probe.take("after (loop ended)", plan.questions)
        part.notes.append(
            f"{args.models} models ({', '.join(sorted({s.provider for s in specs}))}), "
            f"{args.tokens} tokens each over 0.1 s, synthesizer {specs[0].name}"
        )
        part.notes.append(history_counts(home))
        return part
    finally:
        server.terminate()
        server.wait(10)


def run_loop(main: Callable[[], Awaitable[Part]]) -> Part:
    uvloop = importlib.util.find_spec("uvloop") is not None  # as `quorum ask` runs
    part: Part = anyio.run(main, backend_options={"use_uvloop": uvloop})
    return part


# --- part 2: the local council ----------------------------------------------------------------
def run_local(args: argparse.Namespace, home: Path) -> Part:
    from core.config import load_settings
    from core.paths import bundled_config_path

    settings = load_settings(bundled_config_path())
    members = tuple(
        replace(m, max_tokens=args.local_tokens)
        for m in settings.enabled_models
        if m.provider == "local"
    )
    settings = replace(settings, models=members)
    plan = Plan(args.local, args.local_warmup, max(1, args.local // 10))

    async def main() -> Part:
        probe = Probe()
        loop = CliLoop(settings, members, synthesis=bool(settings.consensus.candidates))
        return await soak("local", plan, probe, loop.ask, loop.close)

    part = run_loop(main)
    part.probe.take("after (loop ended)", plan.questions)
    part.notes.append(
        f"{len(members)} local members ({', '.join(m.name for m in members)}), "
        f"max_tokens {args.local_tokens}"
    )
    part.notes.append(history_counts(home))
    return part


# --- part 3: the TUI, headless ----------------------------------------------------------------
def run_tui(args: argparse.Namespace, home: Path) -> Part:
    from tui.app import QuorumApp

    server, port = start_server()
    try:
        specs = bench_specs(port, args.models, args.tokens)
        settings = bench_settings(specs, home)
        plan = Plan(args.tui, min(args.warmup, max(1, args.tui // 5)), max(1, args.tui // 10))

        async def main() -> Part:
            probe = Probe(port, {server.pid})
            app = QuorumApp(settings)
            async with app.run_test(size=(200, 60)) as pilot:
                await pilot.pause()

                async def ask(i: int) -> str | None:
                    app.send(question(i))
                    deadline = time.monotonic() + 60
                    while app.busy and time.monotonic() < deadline:  # noqa: ASYNC110 (polled)
                        await asyncio.sleep(0.02)
                    await pilot.pause()
                    bad = [n for n, p in app.panes.items() if p.state.state != "done"]
                    if app.busy:
                        return "still busy after 60 s"
                    return f"not done: {', '.join(bad)}" if bad else None

                part = await soak("tui", plan, probe, ask)
            await settled(probe, plan.questions)  # the app closed its client as it exited
            return part

        part = asyncio.run(main())  # Textual runs on asyncio's own loop
        part.probe.take("after (loop ended)", part.plan.questions)
        part.notes.append(f"QuorumApp headless, {args.models} panes, history on")
        part.notes.append(history_counts(home))
        return part
    finally:
        server.terminate()
        server.wait(10)


# --- the report -------------------------------------------------------------------------------
def report(part: Part) -> None:
    samples = part.probe.samples
    shown = [s for s in samples if s.label]
    print(f"\n## {part.name}: {part.plan.questions} questions, warm-up {part.plan.warmup}\n")
    for note in part.notes:
        print(f"- {note}")
    head = ["sample", "question", "RSS MB", *(title for _, title in COUNTS), "s/question"]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for s in shown:
        rate = f"{s.s_per_q:.3f}" if s.s_per_q is not None else ""
        cells = [s.label, str(s.question), f"{s.rss_mb:.1f}"]
        cells += [str(getattr(s, key)) for key, _ in COUNTS]
        print("| " + " | ".join([*cells, rate]) + " |")
    for half, peak in part.probe.peak.items():
        if peak:
            cells = [f"peak while answering, {half} half", "", f"{peak['rss_mb']:.1f}"]
            cells += [f"{peak[k]:.0f}" for k, _ in COUNTS]
            print("| " + " | ".join([*cells, ""]) + " |")
    before = _one(samples, "before")
    end = _one(samples, "100 %")
    delta = [f"{end.rss_mb - before.rss_mb:+.1f}"]
    delta += [f"{getattr(end, k) - getattr(before, k):+d}" for k, _ in COUNTS]
    ratio = [_ratio(end.rss_mb, before.rss_mb)]
    ratio += [_ratio(getattr(end, k), getattr(before, k)) for k, _ in COUNTS]
    print("| end - before |  | " + " | ".join(delta) + " |  |")
    print("| end ÷ before |  | " + " | ".join(ratio) + " |  |")
    series = [
        f"{s.question}: {s.rss_mb:.0f}" for s in samples if s.question and "after" not in s.label
    ]
    print(f"\nRSS MB by question: {', '.join(series)}")
    first, last = _interval_walls(part)
    if first and last:
        print(
            f"seconds per question, median: first tenth after warm-up {first:.3f}, last tenth "
            f"{last:.3f} (last ÷ first {last / first:.2f}); {len(samples)} samples taken"
        )
    server = part.probe.server
    if "before" in server and "100 %" in server:
        # the "before" request's own connection is counted by the end's figure: take it out
        opened = server["100 %"][0] - server["before"][0] - 1
        requests = server["100 %"][1] - server["before"][1]
        print(
            f"connections the server accepted after warm-up: {opened} for {requests} model "
            f"requests = {opened / max(1, requests):.2f} per request (0 = every request on a "
            f"kept-alive connection, 1.00 = a new connection for each)"
        )
    for line in verdicts(part):
        print(line)
    marks = part.probe.held
    fds, threads = held()
    print(
        f"\nheld after close, against the warm-up: fds "
        f"{difference(marks['closed'][0], marks['before'][0])}; threads "
        f"{difference(marks['closed'][1], marks['before'][1])}"
    )
    print(
        f"held after the event loop ended, against the start (one-time: imports, libraries' "
        f"own pools): fds {difference(fds, marks['start'][0])}; threads "
        f"{difference(threads, marks['start'][1])}"
    )
    if part.problems:
        print(f"\n{len(part.problems)} questions had problems; the first: {part.problems[:3]}")
    else:
        print(f"\nevery one of the {part.plan.questions} questions answered in full")


def _one(samples: Sequence[Sample], label: str) -> Sample:
    return next(s for s in samples if s.label == label)


def _ratio(end: float, before: float) -> str:
    if before == 0:
        return "-" if end == 0 else "∞"
    return f"{end / before:.3f}"


def _interval_walls(part: Part) -> tuple[float | None, float | None]:
    after = part.walls[part.plan.warmup :]
    tenth = max(1, len(after) // 10)
    if len(after) < 2:
        return None, None
    return statistics.median(after[:tenth]), statistics.median(after[-tenth:])


def verdicts(part: Part) -> list[str]:
    samples = part.probe.samples
    start, before, end = _one(samples, "start"), _one(samples, "before"), _one(samples, "100 %")
    closed, ended = _one(samples, "after (closed)"), _one(samples, "after (loop ended)")
    half = next(s.question for s in samples if s.label == "50 %")
    first_half = [s for s in samples[1:] if before.question <= s.question <= half]
    second_half = [s for s in samples if half < s.question and not s.label.startswith("after")]
    lines = ["", "verdicts:"]
    grown = end.rss_mb - before.rss_mb
    allowed = max(RSS_NOISE_MB, RSS_NOISE_SHARE * before.rss_mb)
    first_mb = statistics.median(s.rss_mb for s in first_half)
    second_mb = statistics.median(s.rss_mb for s in second_half)
    spread = max(s.rss_mb for s in first_half) - min(s.rss_mb for s in first_half)
    text = (
        f"{grown:+.1f} MB from warm-up to the end ({end.rss_mb / before.rss_mb:.3f}x); median "
        f"of the second half's samples {second_mb - first_mb:+.1f} MB over the first half's "
        f"(whose own spread is {spread:.1f} MB); allowed < {allowed:.0f} MB"
    )
    if second_mb - first_mb < allowed:  # one sample can fall on a transient; medians do not
        lines.append(f"- RSS: no growth beyond noise: {text}")
    else:
        lines.append(f"- RSS: GROWS: {text}")
    first, second = part.probe.peak["first"], part.probe.peak["second"]
    for key, title in COUNTS:
        band = max(getattr(s, key) for s in first_half)
        value = getattr(end, key)
        # threads: anyio keeps its idle worker threads until the event loop ends
        after = ended if key in ("py_threads", "os_threads", "children") else closed
        which = "loop ended" if after is ended else "closed"
        back = getattr(after, key) <= getattr(before, key)
        peaks = ""
        steady = value <= band
        if key in first and key in second:  # in flight: depends on when a sample falls
            peaks = f"; in flight at most {first[key]:.0f}, then {second[key]:.0f}"
        text = (
            f"{getattr(start, key)} at start, {getattr(before, key)} after warm-up, "
            f"{value} at the end (first-half max {band}{peaks}), {getattr(after, key)} "
            f"after ({which})"
        )
        if steady and back:
            lines.append(f"- {title}: no growth beyond noise, released: {text}")
        elif steady:
            lines.append(f"- {title}: steady, NOT released after close: {text}")
        else:
            lines.append(f"- {title}: GROWS: {text}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--questions", type=int, default=500, help="HTTP part: questions")
    parser.add_argument("--models", type=int, default=8, help="HTTP and TUI parts: models")
    parser.add_argument("--tokens", type=int, default=24, help="tokens per bench answer")
    parser.add_argument("--warmup", type=int, default=20, help="questions before 'before'")
    parser.add_argument("--every", type=int, default=25, help="sample every N questions")
    parser.add_argument("--local", type=int, default=50, help="local part: questions")
    parser.add_argument(
        "--local-warmup",
        type=int,
        default=15,
        help="local part: questions before 'before' (llama.cpp's memory settles for tens)",
    )
    parser.add_argument("--local-tokens", type=int, default=16, help="local max_tokens")
    parser.add_argument("--tui", type=int, default=50, help="TUI part: questions (0: skip)")
    parser.add_argument(
        "--parts",
        default="http,local,tui",
        help="comma-separated: http, local, tui (default: all three)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="60 HTTP questions, 12 local, 12 in the TUI"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.questions, args.warmup, args.every = 60, 10, 10
        args.local, args.local_warmup, args.tui = 12, 4, 12
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    runners = {"http": run_http, "local": run_local, "tui": run_tui}
    unknown = [p for p in parts if p not in runners]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(runners)}")
    print(
        f"soak: pid {os.getpid()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}"
    )
    started = time.perf_counter()
    for name in parts:
        if (name == "tui" and args.tui <= 0) or (name == "local" and args.local <= 0):
            continue
        with tempfile.TemporaryDirectory(prefix=f"quorum-soak-{name}-") as tmp:
            home = Path(tmp)
            os.environ["QUORUM_HOME"] = str(home)  # the history goes here, not the user's
            t0 = time.perf_counter()
            part = runners[name](args, home)
            part.notes.append(f"took {time.perf_counter() - t0:.0f} s")
            report(part)
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
