"""``quorum ask``: run one fan-out and render its event stream as text, JSON or JSON lines."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal, TextIO

import anyio

from core.cli.argtypes import positive_float
from core.cli.recording import add_ask_options, recording
from core.cli.table import format_table
from core.config import ConfigError, ModelSpec, Settings, with_overrides
from core.engine import FanOut
from core.events import (
    Cancelled,
    Event,
    Failed,
    Finished,
    Retrying,
    TextDelta,
    event_to_dict,
)
from core.history import HistoryWriter
from core.providers import ProviderSet, make_client
from core.providers.base import Message
from core.results import FanoutResult, ModelResult

OutputMode = Literal["text", "json", "jsonl"]
COMMANDS = ("ask",)


def add_parsers(sub: Any) -> None:
    ask = sub.add("ask", help="ask every configured model, print answers and timings")
    ask.add_argument("prompt", help="the question ('-' reads it from standard input)")
    ask.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="ask only this model (repeatable)",
    )
    out = ask.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object when done")
    out.add_argument("--jsonl", action="store_true", help="print every event as a JSON line")
    ask.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="total time limit per model, in seconds",
    )
    add_ask_options(ask)


def run(args: argparse.Namespace, settings: Settings) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    models = _choose_models(settings, args.model)
    if args.timeout is not None:
        models = tuple(with_overrides(m, timeout_s=args.timeout) for m in models)
    mode: OutputMode = "json" if args.json else "jsonl" if args.jsonl else "text"
    with recording(settings, args, prompt, models) as rec:
        return run_ask(
            prompt, models, mode=mode, history=rec.writer, conversations=rec.conversations
        )


def _choose_models(settings: Settings, names: Sequence[str]) -> tuple[ModelSpec, ...]:
    # `--model a --model a` asks `a` once
    models = settings.select(list(dict.fromkeys(names))) if names else settings.enabled_models
    if not models:
        raise ConfigError(
            f"no enabled models in {settings.path}; add a [[models]] table or pass --model"
        )
    return models


def run_ask(
    prompt: str,
    models: Sequence[ModelSpec],
    *,
    mode: OutputMode,
    history: HistoryWriter | None = None,
    conversations: Mapping[str, Sequence[Message]] | None = None,
) -> int:
    run = partial(ask, history=history, conversations=conversations)
    result = anyio.run(
        run, prompt, models, mode, sys.stdout, sys.stderr, backend_options=_loop_options()
    )
    return 0 if result.any_ok else 1


def _loop_options() -> dict[str, bool]:
    """uvloop where it is installed: 10-25 % less CPU per streamed token (bench/fanout.py)."""
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}


async def ask(
    prompt: str,
    models: Sequence[ModelSpec],
    mode: OutputMode,
    out: TextIO,
    err: TextIO,
    *,
    history: HistoryWriter | None = None,
    conversations: Mapping[str, Sequence[Message]] | None = None,
) -> FanoutResult:
    """Run the fan-out; ``history`` (already begun, closed by its owner) records every event;
    ``conversations`` gives each model its own earlier turns."""
    result = FanoutResult()
    printer = TextPrinter(out, err, [m.name for m in models]) if mode == "text" else None
    async with make_client(len(models)) as client:
        providers = ProviderSet(client)
        try:
            fanout = FanOut(models, providers, prompt, conversations=conversations)
            async with fanout.run() as events:
                async for event in events:
                    result.apply(event)
                    if history is not None:
                        history.apply(event)
                    if mode == "jsonl":
                        out.write(json.dumps(event_to_dict(event), ensure_ascii=False) + "\n")
                        out.flush()
                    elif printer is not None:
                        printer.show(event)
        finally:
            await providers.aclose()
    if mode == "json":
        body = result.to_json()
        if history is not None:
            body["session_id"] = history.session_id  # `quorum export ID`, `ask --session ID`
        out.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    elif printer is not None:
        printer.summary(result)
    out.flush()
    return result


class TextPrinter:
    """Interleaved streams, each line labelled with its model; a timing table at the end."""

    def __init__(self, out: TextIO, err: TextIO, names: Sequence[str]) -> None:
        self.out = out
        self.err = err
        self.width = max((len(n) for n in names), default=4)
        self.pending: dict[str, str] = {}
        self.color = out.isatty()
        self._palette = {n: 31 + i % 6 for i, n in enumerate(names)}

    def _label(self, name: str) -> str:
        label = f"{name:<{self.width}} │ "
        return f"\x1b[{self._palette.get(name, 37)}m{label}\x1b[0m" if self.color else label

    def show(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            buffered = self.pending.get(event.model, "") + event.text
            *lines, rest = buffered.split("\n")
            for line in lines:
                self.out.write(self._label(event.model) + line + "\n")
            self.pending[event.model] = rest
            if lines:
                self.out.flush()
        elif isinstance(event, Finished | Failed | Cancelled):
            rest = self.pending.pop(event.model, "")
            if rest:
                self.out.write(self._label(event.model) + rest + "\n")
            if isinstance(event, Failed):
                status = f"HTTP {event.status}: " if event.status else ""
                self.out.write(
                    self._label(event.model) + f"✗ {event.kind}: {status}{event.message}\n"
                )
            elif isinstance(event, Cancelled):
                self.out.write(self._label(event.model) + "✗ cancelled\n")
            self.out.flush()
        elif isinstance(event, Retrying):
            self.err.write(
                f"{event.model}: retrying in {event.delay_s:.1f} s "
                f"(attempt {event.attempt}): {event.reason}\n"
            )

    def summary(self, result: FanoutResult) -> None:
        rows = [("model", "state", "ttft", "total", "tok out", "tok/s", "tries")]
        rows += [_row(r) for r in result.responses.values()]
        self.out.write("\n" + format_table(rows, right_aligned=range(2, 7)))
        wall = f"{result.wall_ms / 1000:.2f} s" if result.wall_ms is not None else "?"
        self.out.write(f"wall time {wall}\n")


def _row(r: ModelResult) -> tuple[str, str, str, str, str, str, str]:
    s = r.stats
    state = "ok" if r.ok else r.state
    return (
        r.model,
        state,
        _ms(s.ttft_ms),
        _ms(s.total_ms),
        "-" if s.tokens_out is None else str(s.tokens_out),
        "-" if s.tokens_per_s is None else f"{s.tokens_per_s:.1f}",
        str(s.attempts),
    )


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"
