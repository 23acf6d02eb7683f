"""``quorum`` command line: argument parsing and dispatch. Exit codes: 0 at least one model
answered, 1 every model failed, 2 usage or configuration error."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from core.argtypes import positive_float
from core.config import ConfigError, ModelSpec, Settings, load_settings, with_overrides
from core.history_cli import add_ask_options, recording
from core.history_cli import add_commands as add_history_commands
from core.history_cli import run as run_history_command

EXIT_OK, EXIT_ALL_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"quorum: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quorum", description="Ask many language models at once.")
    parser.add_argument("--config", metavar="PATH", help="configuration file to use")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ask = sub.add_parser("ask", help="ask every configured model, print answers and timings")
    ask.add_argument("prompt", help="the question ('-' reads it from standard input)")
    ask.add_argument("--config", metavar="PATH", dest="sub_config", help=argparse.SUPPRESS)
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

    models = sub.add_parser("models", help="list the configured models")
    models.add_argument("--config", metavar="PATH", dest="sub_config", help=argparse.SUPPRESS)
    models.add_argument(
        "--check",
        action="store_true",
        help="probe every endpoint concurrently: reachability and latency",
    )
    models.add_argument("--json", action="store_true", help="machine-readable output")
    add_history_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_path = getattr(args, "sub_config", None) or args.config
    try:
        settings = load_settings(config_path)
        if args.command == "ask":
            return _ask(args, settings)
        history_status = run_history_command(args, settings)
        if history_status is not None:
            return history_status
        if args.command == "models":
            from core.probe import run_models_command

            return run_models_command(settings, check=args.check, as_json=args.json)
        return _launch_tui(settings)
    except ConfigError as exc:
        sys.stderr.write(f"quorum: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("quorum: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`quorum ask ... | head`): stop quietly, and keep Python's
        # final flush of stdout from complaining too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ALL_FAILED


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from core.ask import OutputMode, run_ask

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


def _launch_tui(settings: Settings) -> int:
    try:
        from tui.app import run_app
    except ImportError as exc:  # pragma: no cover - a broken install
        sys.stderr.write(f"quorum: the terminal app is unavailable: {exc}\n")
        return EXIT_USAGE
    return run_app(settings)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
