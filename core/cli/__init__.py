"""``quorum`` command line: the parser and dispatch, one module per command family.

Each family module (`ask`, `models`, `history`, `kb`, `doctor`) has ``add_parsers(sub)``, which
registers its commands, and ``run(args, settings)``, which runs one of them and returns the exit
code. The modules keep heavy imports inside their commands, so ``quorum --help`` stays fast.
Exit codes: 0 at least one model answered, 1 every model failed, 2 usage or configuration error;
``quorum doctor``: 0 nothing broken (warnings allowed), 1 something broken.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from core import paths
from core.cli import ask, doctor, glyphs, history, kb, models, web
from core.cli.exits import EXIT_ALL_FAILED, EXIT_USAGE
from core.config import ConfigError, Settings, load_settings
from core.privacy import exposed_key_warning, keep_private, tighten
from core.sanitize import strip_control

FAMILIES = (ask, models, history, kb, doctor, web)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"quorum: error: {strip_control(message)}\n")
        raise SystemExit(EXIT_USAGE)


class _Version(argparse.Action):
    """``--version``: read from the installed distribution only when asked (start-up stays fast)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("quorum-tui")
        except PackageNotFoundError:
            number = "(not installed)"
        sys.stdout.write(f"quorum {number}\n")
        raise SystemExit(0)


class Subcommands:
    """Adds subcommands that all accept ``--config`` after their name too."""

    def __init__(self, sub: Any) -> None:
        self._sub = sub

    def add(self, name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._sub.add_parser(name, help=help)
        parser.add_argument("--config", metavar="PATH", dest="sub_config", help=argparse.SUPPRESS)
        return parser

    def nested(self, parser: argparse.ArgumentParser, dest: str) -> Subcommands:
        """Actions under a command (``quorum kb list``), taking ``--config`` too."""
        return Subcommands(parser.add_subparsers(dest=dest, metavar="ACTION", required=True))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quorum", description="Ask many language models at once.")
    parser.add_argument("--config", metavar="PATH", help="configuration file to use")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = Subcommands(
        parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    )
    for family in FAMILIES:
        family.add_parsers(sub)
    return parser


class _Termination:
    """SIGTERM stops a command as Ctrl+C does (partial answers shown and kept as interrupted):
    it is passed on as SIGINT, whose handling (the event loop's, or KeyboardInterrupt) is safe
    wherever the process is; only the exit says which one it was."""

    received = False

    def __call__(self, signum: int, frame: object) -> None:
        self.received = True
        signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    glyphs.prepare_streams()
    keep_private()
    termination = _Termination()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, termination)
    args = build_parser().parse_args(argv)
    config_path = getattr(args, "sub_config", None) or args.config
    try:
        if args.command in doctor.COMMANDS:  # the config and data dir as they are: not loaded
            return doctor.run_doctor(config_path, as_json=args.json)  # nor tightened first
        settings = load_settings(config_path)
        tighten(paths.data_dir())
        exposed = exposed_key_warning(settings)
        if exposed and args.command is not None:  # the app shows it on its first screen
            sys.stderr.write(f"quorum: warning: {exposed}\n")
        for family in FAMILIES:
            if args.command in family.COMMANDS:
                code: int = family.run(args, settings)
                return code
        return _launch_tui(settings)
    except ConfigError as exc:
        sys.stderr.write(f"quorum: {strip_control(str(exc))}\n")  # it may quote model names
        return EXIT_USAGE
    except KeyboardInterrupt:
        if termination.received:
            sys.stderr.write("quorum: terminated\n")
            return 128 + signal.SIGTERM
        sys.stderr.write("quorum: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`quorum ask ... | head`): stop quietly, and keep Python's
        # final flush of stdout from complaining too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ALL_FAILED


def _launch_tui(settings: Settings) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Textual would draw escape codes into a file or pipe and wait for keys that never come.
        sys.stderr.write(
            "quorum: the terminal app needs a terminal (standard input and output must both be "
            'one); without one, ask with: quorum ask "your question"\n'
        )
        return EXIT_USAGE
    try:
        from tui.app import run_app
    except ImportError as exc:  # pragma: no cover - a broken install
        sys.stderr.write(f"quorum: the terminal app is unavailable: {exc}\n")
        return EXIT_USAGE
    return run_app(settings)
