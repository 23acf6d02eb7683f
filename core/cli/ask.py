"""``quorum ask``: run one fan-out and render its event stream as text, JSON or JSON lines.

Text goes to `LiveView` on a terminal (live status lines, each answer whole as it ends) and to
`TextPrinter` elsewhere (labelled lines); Ctrl+C shows what every model had said so far.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import anyio

from core.cli.argtypes import positive_float
from core.cli.glyphs import unicode_ok
from core.cli.live import LiveView
from core.cli.printer import TextPrinter
from core.cli.recording import add_ask_options, recording
from core.cli.usertext import argument, read_stdin
from core.config import ConfigError, ModelSpec, Settings, with_overrides
from core.engine import FanOut, FanoutStage
from core.events import Event, Source, event_to_dict
from core.history import HistoryWriter
from core.prompting import with_attachments
from core.providers import ProviderSet, make_client
from core.providers.base import Message
from core.results import FanoutResult

OutputMode = Literal["text", "json", "jsonl"]
COMMANDS = ("ask",)


def add_parsers(sub: Any) -> None:
    ask = sub.add("ask", help="ask every configured model, print answers and timings")
    ask.add_argument(
        "prompt",
        type=argument("the prompt"),
        help="the question ('-' reads it from standard input)",
    )
    ask.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        type=argument("a --model name"),
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
    ask.add_argument(
        "--file",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        dest="files",
        help="attach this file's whole text to the question (repeatable)",
    )
    ask.add_argument(
        "--no-rag",
        action="store_true",
        help="do not add sources from the knowledge base to the question",
    )
    ask.add_argument(
        "--no-synthesis",
        action="store_true",
        help="measure agreement but do not ask the synthesizer ([consensus] synthesizer)",
    )
    add_ask_options(ask)


def run(args: argparse.Namespace, settings: Settings) -> int:
    prompt = read_stdin("the prompt on standard input") if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    models = _choose_models(settings, args.model)
    if args.timeout is not None:
        models = tuple(with_overrides(m, timeout_s=args.timeout) for m in models)
    mode: OutputMode = "json" if args.json else "jsonl" if args.jsonl else "text"
    question = prompt  # what retrieval searches for: the words, not the attached files
    if args.files:
        from core.attachments import AttachmentError, read_attachments

        try:
            prompt = with_attachments(prompt, read_attachments(args.files))
        except AttachmentError as exc:
            raise ConfigError(str(exc)) from None
    context = () if args.no_rag else _retrieve(settings, question)
    stage = consensus_stage(settings, models, prompt, context, synthesis=not args.no_synthesis)
    with recording(settings, args, prompt, models) as rec:
        return run_ask(
            prompt,
            models,
            mode=mode,
            history=rec.writer,
            conversations=rec.conversations,
            context=context,
            stages=(stage,),
        )


def consensus_stage(
    settings: Settings,
    models: Sequence[ModelSpec],
    question: str,
    context: Sequence[Source],
    *,
    synthesis: bool,
) -> FanoutStage:
    """Agreement measured as answers end; the synthesizer (and its fallbacks) at the end."""
    from core.consensus.stage import ConsensusStage, synthesizers
    from core.consensus.tracker import ConsensusTracker
    from core.store.kb import make_embedder

    tracker = ConsensusTracker(
        make_embedder(settings.store, settings.models), [m.name for m in models]
    )
    return ConsensusStage(
        tracker,
        question,
        context=context,
        synthesizers=synthesizers(settings, synthesis=synthesis),
        instruction=settings.consensus.prompt,
    )


def _retrieve(settings: Settings, question: str) -> tuple[Source, ...]:
    from core.store.context import retrieve

    def warn(message: str) -> None:
        sys.stderr.write(f"quorum: {message}\n")

    return retrieve(settings, question, warn=warn)


def _choose_models(settings: Settings, names: Sequence[str]) -> tuple[ModelSpec, ...]:
    # `--model a --model a` asks `a` once
    models = settings.select(list(dict.fromkeys(names))) if names else settings.enabled_models
    if not models:
        raise ConfigError(
            f"no enabled models in {settings.path}; add a [[models]] table or pass --model"
        )
    return models


class Printer(Protocol):
    def running(self) -> AbstractAsyncContextManager[None]: ...
    def show(self, event: Event) -> None: ...
    def interrupted(self, result: FanoutResult) -> None: ...
    def summary(self, result: FanoutResult) -> None: ...


def make_printer(out: TextIO, err: TextIO, names: Sequence[str]) -> Printer:
    """The live view on a terminal that can move its cursor, labelled lines anywhere else."""
    if out.isatty() and os.environ.get("TERM") != "dumb":
        return LiveView(out, names)
    return TextPrinter(out, err, names)


def run_ask(
    prompt: str,
    models: Sequence[ModelSpec],
    *,
    mode: OutputMode,
    history: HistoryWriter | None = None,
    conversations: Mapping[str, Sequence[Message]] | None = None,
    context: Sequence[Source] = (),
    stages: Sequence[FanoutStage] = (),
) -> int:
    out, err = sys.stdout, sys.stderr
    result = FanoutResult()
    printer = make_printer(out, err, [m.name for m in models]) if mode == "text" else None
    run = partial(
        ask,
        result=result,
        printer=printer,
        history=history,
        conversations=conversations,
        context=context,
        stages=stages,
    )
    try:
        anyio.run(run, prompt, models, mode, out, backend_options=_loop_options())
    except KeyboardInterrupt:
        if printer is not None:
            printer.interrupted(result)  # then `main` says "interrupted"
        raise
    return 0 if result.any_ok else 1


def _loop_options() -> dict[str, bool]:
    """uvloop where it is installed: 10-25 % less CPU per streamed token (bench/fanout.py)."""
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}


async def ask(
    prompt: str,
    models: Sequence[ModelSpec],
    mode: OutputMode,
    out: TextIO,
    *,
    result: FanoutResult,
    printer: Printer | None = None,
    history: HistoryWriter | None = None,
    conversations: Mapping[str, Sequence[Message]] | None = None,
    context: Sequence[Source] = (),
    stages: Sequence[FanoutStage] = (),
) -> FanoutResult:
    """Run the fan-out, folding every event into ``result`` (kept by the caller, so that an
    interruption can still show it); ``history`` (already begun, closed by its owner) records
    every event; ``conversations`` gives each model its own earlier turns."""
    live = printer.running() if printer is not None else nullcontext()
    ascii_only = not unicode_ok(out)  # JSON can say anything in ASCII, losslessly
    async with make_client(len(models)) as client:
        providers = ProviderSet(client)
        try:
            fanout = FanOut(
                models,
                providers,
                prompt,
                conversations=conversations,
                context=context,
                stages=stages,
            )
            async with live, fanout.run() as events:
                async for event in events:
                    result.apply(event)
                    if history is not None:
                        history.apply(event)
                    if mode == "jsonl":
                        out.write(json.dumps(event_to_dict(event), ensure_ascii=ascii_only) + "\n")
                        out.flush()
                    elif printer is not None:
                        printer.show(event)
        finally:
            await providers.aclose()
    if mode == "json":
        body = result.to_json()
        if history is not None:
            body["session_id"] = history.session_id  # `quorum export ID`, `ask --session ID`
        # Written in pieces: never a second copy of the whole document (every answer) at once.
        json.dump(body, out, ensure_ascii=ascii_only, indent=2)
        out.write("\n")
    elif printer is not None:
        printer.summary(result)
    out.flush()
    return result
