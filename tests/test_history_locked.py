"""A history database that another process keeps locked: ``quorum ask`` still answers (with a
warning instead of recording), an explicit ``--continue`` is refused before any model is asked,
``quorum import`` is refused in one line, and a lock that appears mid-stream stops the recording
with one message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.events import Started, TextDelta
from core.export import export_session
from core.history import HistoryStore, HistoryWriter
from core.history.sqlite import default_path
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import model, quorum
from tests.test_export import recorded_session
from tests.test_history import spec_of

# Takes the write lock the way any writer would, then holds it until its stdin is closed.
_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@contextmanager
def write_lock_held_by_another_process(db: Path) -> Iterator[None]:
    with subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline() == "locked\n"
            yield
        finally:
            holder.stdin.close()
            assert holder.wait(timeout=30) == 0


def everything_stored(db: Path) -> list[tuple[object, ...]]:
    with HistoryStore.open(db) as store:
        return [(s.id, s.turn_count, s.last_query) for s in store.list_sessions()]


@pytest.fixture
def config(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    loopback.script("gpt", openai_stream(["Four", "."]))
    return write_config(models=[model(loopback, "openai", "gpt")])


def test_ask_answers_while_another_process_holds_the_history_lock(
    loopback: LoopbackServer, config: Path
) -> None:
    HistoryStore.open().close()  # an existing history, as after a first `quorum ask`
    with write_lock_held_by_another_process(default_path()):
        result = quorum("ask", "--config", str(config), "What is 2+2?")

    assert result.returncode == 0, result.stderr
    assert "Four." in result.stdout
    warning = (
        f"quorum: not recording this question: the history database {default_path()} "
        "is locked by another process"
    )
    assert warning in result.stderr
    assert result.stderr.count("not recording") == 1
    assert everything_stored(default_path()) == []  # nothing half-written once the lock goes


def test_continue_with_a_locked_history_is_refused_before_asking(
    loopback: LoopbackServer, config: Path
) -> None:
    assert quorum("ask", "--config", str(config), "First question").returncode == 0
    before = everything_stored(default_path())
    with write_lock_held_by_another_process(default_path()):
        result = quorum("ask", "--continue", "--config", str(config), "Second question")

    assert result.returncode == 2
    assert result.stderr.startswith("quorum: the history database ")
    assert "is locked by another process" in result.stderr
    assert result.stdout == ""
    assert len(loopback.requests_for("gpt")) == 1  # the second question was never sent
    assert everything_stored(default_path()) == before


def test_a_lock_taken_mid_stream_stops_recording_with_one_message(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite3") as store:
        sid = store.new_session()
        writer = HistoryWriter(store, sid, "q", [spec_of("a")], flush_interval=0.0, timer=False)
        with write_lock_held_by_another_process(store.path):
            writer.apply(Started("a", "openai", 1))  # this flush meets the lock
            first = writer.error
            writer.apply(TextDelta("a", "more text"))
        writer.apply(TextDelta("a", "after the lock is gone"))
        writer.close()
        assert first is not None and first.startswith("history recording stopped: ")
        assert "locked" in first
        assert writer.error == first  # said once; nothing retried after it stopped
        (turn,) = store.load_session(sid).turns
        assert turn.responses[0].text == ""


def test_import_into_a_locked_history_is_refused_in_one_line(tmp_path: Path) -> None:
    with HistoryStore.open() as store:
        text = export_session(store.load_session(recorded_session(store)), "json")
    export = tmp_path / "s.json"
    export.write_text(text, encoding="utf-8")
    before = everything_stored(default_path())
    with write_lock_held_by_another_process(default_path()):
        result = quorum("import", str(export))

    assert result.returncode == 2
    assert result.stderr == (
        f"quorum: the history database {default_path()} is locked by another process "
        "(still busy after 3 s)\n"
    )
    assert everything_stored(default_path()) == before
