"""History recording for ``quorum ask``: ``--no-history``, ``--session ID``, ``--continue``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from core.cli.table import cell
from core.cli.usertext import argument
from core.config import ConfigError, ModelSpec, Settings
from core.history import HistoryError, HistoryStore, HistoryWriter
from core.providers.base import Message

_TITLE_CHARS = 80


def add_ask_options(ask: argparse.ArgumentParser) -> None:
    """``--no-history``, ``--session ID`` and ``--continue`` for ``quorum ask``."""
    ask.add_argument("--no-history", action="store_true", help="do not record this question")
    where = ask.add_mutually_exclusive_group()
    where.add_argument(
        "--session",
        metavar="ID",
        type=argument("--session", allow_empty=False),
        help="add this question to a session (models see its history)",
    )
    where.add_argument(
        "--continue",
        dest="continue_session",
        action="store_true",
        help="add this question to the most recent session",
    )


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
    block ends. A history that cannot be used (it cannot be opened, or the session or turn
    cannot be written: locked by another process, read-only, damaged) costs a warning, not the
    answer. When the user asked for a session explicitly it is a ConfigError instead, before any
    model is asked: answering outside the session they named would leave a gap in it.
    """
    err = err or sys.stderr
    wants_session = bool(args.session or args.continue_session)
    if args.no_history or not settings.history:
        if wants_session:
            why = "--no-history" if args.no_history else "[history] enabled = false"
            raise ConfigError(f"--session/--continue need the history, which {why} turns off")
        yield Recording()
        return
    store: HistoryStore | None = None
    try:
        store = HistoryStore.open()
        session_id, conversations = _session_for(store, settings, args, prompt, models)
        writer = HistoryWriter(store, session_id, prompt, models)
    except HistoryError as exc:
        if store is not None:
            store.close()
        if wants_session:
            raise ConfigError(str(exc)) from None
        err.write(f"quorum: not recording this question: {exc}\n")
        yield Recording()
        return
    try:
        yield Recording(writer, conversations)
    finally:
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
        return store.new_session(cell(prompt, _TITLE_CHARS)), {}
    turns = settings.history_turns
    return session_id, {
        m.name: store.conversation(session_id, m.name, turns, follow_up=settings.follow_up)
        for m in models
    }
