"""``quorum history``, ``quorum export`` and ``quorum import``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from core.cli.argtypes import positive_int
from core.cli.glyphs import unicode_ok
from core.cli.table import cell, format_table
from core.cli.usertext import argument
from core.config import Settings
from core.export import FORMATS, ExportFormat, ExportFormatError, export_session, import_session
from core.history import HistoryError, HistoryStore
from core.sanitize import strip_control

COMMANDS = ("history", "export", "import")
_OK, _USAGE = 0, 2


def add_parsers(sub: Any) -> None:
    """Register ``history``, ``export`` and ``import`` on an argparse subparsers object."""
    history = sub.add("history", help="list recent sessions, or search them")
    history.add_argument(
        "-s",
        "--search",
        metavar="TEXT",
        type=argument("--search"),
        help="find questions and answers",
    )
    history.add_argument("--limit", type=positive_int, default=20, metavar="N")
    history.add_argument("--json", action="store_true", help="machine-readable output")

    export = sub.add("export", help="write a session as Markdown, JSON or HTML")
    export.add_argument(
        "session",
        nargs="?",
        metavar="SESSION_ID",
        type=argument("the session id"),
        help="id (or its start)",
    )
    export.add_argument("--last", action="store_true", help="the most recent session")
    export.add_argument("-f", "--format", choices=FORMATS, default="md", dest="fmt")
    export.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")

    restore = sub.add("import", help="restore a session from a JSON export")
    restore.add_argument("file", metavar="FILE", help="a `quorum export --format json` file")


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        with HistoryStore.open() as store:
            if args.command == "history":
                return _history(store, args, settings, out)
            if args.command == "export":
                return _export(store, args, out)
            return _import(store, args, out)
    except (HistoryError, ExportFormatError) as exc:
        sys.stderr.write(f"quorum: {strip_control(str(exc))}\n")
        return _USAGE


def _history(store: HistoryStore, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.search is not None:
        from core.store.history_index import search_history

        def warn(message: str) -> None:
            sys.stderr.write(f"quorum: {message}\n")

        matches = search_history(settings, store, args.search, args.limit, warn=warn)
        if args.json:
            found = [
                {**dataclasses.asdict(m.turn), "matched_by": m.by, "snippet": m.snippet}
                for m in matches
            ]
            _dump({"turns": found}, out)
        elif not matches:
            out.write(f"no questions or answers match {cell(args.search, 60)!r}\n")
        else:
            rows: list[tuple[str, ...]] = [
                ("SESSION", "TURN", "ASKED", "ANSWERS", "MATCHED", "QUESTION", "SNIPPET")
            ]
            rows += [
                (
                    m.turn.session_id,
                    str(m.turn.seq),
                    _when(m.turn.created_at),
                    f"{m.turn.answered}/{m.turn.models}",
                    m.by,
                    cell(m.turn.query, 50),
                    cell(m.snippet, 40) if m.snippet != m.turn.query else "",
                )
                for m in matches
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
            (s.id, _when(s.updated_at), str(s.turn_count), cell(s.last_query or "", 60))
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
        data = sys.stdin.buffer.read() if args.file == "-" else source.read_bytes()
        text = data.decode("utf-8")  # an export is UTF-8: anything else is not one
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"cannot read {source}: {exc}") from None
    try:
        session_id = import_session(store, text)
    except ExportFormatError as exc:
        raise HistoryError(f"{source}: {exc}") from None
    out.write(f"imported session {session_id}\n")
    return _OK


# --- output helpers ----------------------------------------------------------------------------
def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    out.write(format_table(rows))


def _dump(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, ensure_ascii=not unicode_ok(out), indent=2) + "\n")
