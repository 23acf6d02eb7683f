"""``quorum history``, ``quorum export``, ``quorum import`` and history recording for ``ask``.

`add_commands(subparsers)` registers the three commands; `run(args, settings)` runs one of them
and returns its exit code, or None when ``args.command`` is not one of them. `recording(...)`
is the context manager ``quorum ask`` wraps its fan-out in.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from core.argtypes import positive_int
from core.ask import format_table
from core.config import ConfigError, ModelSpec, Settings
from core.export import FORMATS, ExportFormat, ExportFormatError, export_session, import_session
from core.history import HistoryError, HistoryStore, HistoryWriter
from core.providers.base import Message
from core.sanitize import strip_control

COMMANDS = ("history", "export", "import")
_OK, _USAGE = 0, 2
_TITLE_CHARS = 80


def add_commands(sub: Any) -> None:
    """Register ``history``, ``export`` and ``import`` on an argparse subparsers object."""
    history = sub.add_parser("history", help="list recent sessions, or search them")
    history.add_argument("--config", metavar="PATH", dest="sub_config", help=argparse.SUPPRESS)
    history.add_argument("-s", "--search", metavar="TEXT", help="find questions and answers")
    history.add_argument("--limit", type=positive_int, default=20, metavar="N")
    history.add_argument("--json", action="store_true", help="machine-readable output")

    export = sub.add_parser("export", help="write a session as Markdown, JSON or HTML")
    export.add_argument("--config", metavar="PATH", dest="sub_config", help=argparse.SUPPRESS)
    export.add_argument("session", nargs="?", metavar="SESSION_ID", help="id (or its start)")
    export.add_argument("--last", action="store_true", help="the most recent session")
    export.add_argument("-f", "--format", choices=FORMATS, default="md", dest="fmt")
    export.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")

    restore = sub.add_parser("import", help="restore a session from a JSON export")
    restore.add_argument("--config", metavar="PATH", dest="sub_config", help=argparse.SUPPRESS)
    restore.add_argument("file", metavar="FILE", help="a `quorum export --format json` file")


def add_ask_options(ask: argparse.ArgumentParser) -> None:
    """``--no-history``, ``--session ID`` and ``--continue`` for ``quorum ask``."""
    ask.add_argument("--no-history", action="store_true", help="do not record this question")
    where = ask.add_mutually_exclusive_group()
    where.add_argument(
        "--session", metavar="ID", help="add this question to a session (models see its history)"
    )
    where.add_argument(
        "--continue",
        dest="continue_session",
        action="store_true",
        help="add this question to the most recent session",
    )


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int | None:
    if args.command not in COMMANDS:
        return None
    out = out or sys.stdout
    try:
        with HistoryStore.open() as store:
            if args.command == "history":
                return _history(store, args, out)
            if args.command == "export":
                return _export(store, args, out)
            return _import(store, args, out)
    except (HistoryError, ExportFormatError) as exc:
        sys.stderr.write(f"quorum: {exc}\n")
        return _USAGE


def _history(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    if args.search is not None:
        turns = store.search(args.search, args.limit)
        if args.json:
            _dump({"turns": [dataclasses.asdict(t) for t in turns]}, out)
        elif not turns:
            out.write(f"no questions or answers match {_cell(args.search, 60)!r}\n")
        else:
            rows: list[tuple[str, ...]] = [("SESSION", "TURN", "ASKED", "ANSWERS", "QUESTION")]
            rows += [
                (
                    t.session_id,
                    str(t.seq),
                    _when(t.created_at),
                    f"{t.answered}/{t.models}",
                    _cell(t.query, 60),
                )
                for t in turns
            ]
            _table(rows, out)
        return _OK
    sessions = store.list_sessions(args.limit)
    if args.json:
        _dump({"sessions": [dataclasses.asdict(s) for s in sessions]}, out)
    elif not sessions:
        out.write(f"no history yet in {store.path}\n")
    else:
        listing: list[tuple[str, ...]] = [("SESSION", "UPDATED", "TURNS", "LAST QUESTION")]
        listing += [
            (s.id, _when(s.updated_at), str(s.turn_count), _cell(s.last_query or "", 60))
            for s in sessions
        ]
        _table(listing, out)
    return _OK


def _export(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    if args.last == (args.session is not None):
        raise HistoryError("give either a SESSION_ID or --last")
    if args.last:
        session_id = store.latest_session_id()
        if session_id is None:
            raise HistoryError(f"no sessions yet in {store.path}")
    else:
        session_id = store.resolve_session(args.session)
    fmt: ExportFormat = args.fmt
    text = export_session(store.load_session(session_id), fmt)
    if args.output is None:
        out.write(text)
        return _OK
    target = Path(args.output).expanduser()
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write {target}: {exc.strerror or exc}") from None
    sys.stderr.write(f"wrote session {session_id} to {target}\n")
    return _OK


def _import(store: HistoryStore, args: argparse.Namespace, out: TextIO) -> int:
    source = Path(args.file).expanduser()
    try:
        text = sys.stdin.read() if args.file == "-" else source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"cannot read {source}: {exc}") from None
    try:
        session_id = import_session(store, text)
    except ExportFormatError as exc:
        raise HistoryError(f"{source}: {exc}") from None
    out.write(f"imported session {session_id}\n")
    return _OK


# --- recording `quorum ask` ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Recording:
    """What ``ask`` needs: the writer (None when history is off) and each model's conversation."""

    writer: HistoryWriter | None = None
    conversations: Mapping[str, Sequence[Message]] = field(default_factory=dict)


@contextmanager
def recording(
    settings: Settings,
    args: argparse.Namespace,
    prompt: str,
    models: Sequence[ModelSpec],
    err: TextIO | None = None,
) -> Iterator[Recording]:
    """Record one ``ask`` run: a new session, or a turn of ``--session ID`` / ``--continue``.

    The turn is written on entry (before the fan-out starts) and closed on exit, however the
    block ends. A history that cannot be opened costs a warning, not the answer, unless the
    user asked for a session explicitly (then it is a ConfigError).
    """
    err = err or sys.stderr
    wants_session = bool(args.session or args.continue_session)
    if args.no_history or not settings.history:
        if wants_session:
            why = "--no-history" if args.no_history else "[history] enabled = false"
            raise ConfigError(f"--session/--continue need the history, which {why} turns off")
        yield Recording()
        return
    try:
        store = HistoryStore.open()
    except HistoryError as exc:
        if wants_session:
            raise ConfigError(str(exc)) from None
        err.write(f"quorum: not recording this question: {exc}\n")
        yield Recording()
        return
    writer: HistoryWriter | None = None
    try:
        try:
            session_id, conversations = _session_for(store, settings, args, prompt, models)
            writer = HistoryWriter(store, session_id, prompt, models)
        except HistoryError as exc:
            raise ConfigError(str(exc)) from None
        yield Recording(writer, conversations)
    finally:
        if writer is not None:
            writer.close()
            if writer.error is not None:
                err.write(f"quorum: {writer.error}\n")
        store.close()


def _session_for(
    store: HistoryStore,
    settings: Settings,
    args: argparse.Namespace,
    prompt: str,
    models: Sequence[ModelSpec],
) -> tuple[str, dict[str, list[Message]]]:
    if args.session:
        session_id = store.resolve_session(args.session)
    elif args.continue_session:
        latest = store.latest_session_id()
        if latest is None:
            raise HistoryError("--continue: there is no earlier session yet")
        session_id = latest
    else:
        return store.new_session(_cell(prompt, _TITLE_CHARS)), {}
    turns = settings.history_turns
    return session_id, {m.name: store.conversation(session_id, m.name, turns) for m in models}


# --- output helpers ----------------------------------------------------------------------------
def _cell(text: str, width: int) -> str:
    line = " ".join(strip_control(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    out.write(format_table(rows))


def _dump(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
