"""Crash safety: the real ``quorum ask`` in a child process, killed with SIGKILL (or
interrupted with Ctrl+C) mid-stream.

A model streams three tokens and then stalls; the test waits (bounded, by polling the database)
until those tokens are durable — which needs the writer's timer, since no further event comes —
then kills the child. The database must open cleanly with the partial text kept and marked
interrupted, and the finished model's answer intact.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.history import HistoryStore
from core.history.sqlite import default_path
from tests.conftest import TEST_KEY, ConfigWriter
from tests.loopback import LoopbackServer, openai_stream

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

BEFORE_STALL = ["alpha ", "beta ", "gamma "]


def stored_text(db: Path, model: str) -> str | None:
    """The text stored so far for ``model``, read without touching the database's state."""
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT text FROM responses WHERE model = ?", (model,)).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created or not migrated yet
        return None
    return None if row is None else str(row[0])


def wait_until(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)  # polling interval, not synchronisation: the predicate decides
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl+C"])
def test_killed_mid_stream_keeps_flushed_text_and_reopens_cleanly(
    loopback: LoopbackServer, write_config: ConfigWriter, sig: signal.Signals
) -> None:
    # Starting after "quick" has finished, so that only the timer can flush the slow tokens.
    stalled = openai_stream([*BEFORE_STALL, "never ", "seen"], first_delay=0.3)
    parts = list(stalled.parts)
    parts[4] = (120.0, parts[4][1])  # after the role frame and three tokens: a long stall
    loopback.script("slow", dataclasses.replace(stalled, parts=parts))
    loopback.script("quick", openai_stream(["done ", "quickly"]))
    models = [
        {
            "name": name,
            "provider": "openai",
            "model": name,
            "base_url": f"{loopback.url}/v1",
            "api_key": TEST_KEY,
            "idle_timeout_s": 300.0,
            "timeout_s": 600.0,
        }
        for name in ("quick", "slow")
    ]
    config = write_config(models=models)
    db = default_path()
    child = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "ask", "Count slowly", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        flushed = wait_until(lambda: stored_text(db, "slow") == "".join(BEFORE_STALL))
        assert flushed, f"partial text never reached the database: {stored_text(db, 'slow')!r}"
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
    finally:
        child.send_signal(sig)
        child.wait(30)
    err = child.stderr.read().decode() if child.stderr else ""
    if sig == signal.SIGKILL:
        assert child.returncode == -signal.SIGKILL
    else:  # Ctrl+C: the writer closes the turn itself, with a message and no traceback
        assert (child.returncode, err) == (130, "quorum: interrupted\n")

    with HistoryStore.open() as store:
        (session,) = store.list_sessions()
        (turn,) = store.load_session(session.id).turns
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert turn.query == "Count slowly" and turn.state == "interrupted"
    quick, slow = turn.responses
    assert (quick.state, quick.text) == ("done", "done quickly")
    assert (slow.state, slow.text, slow.partial) == ("interrupted", "alpha beta gamma ", True)
    assert "never" not in slow.text
