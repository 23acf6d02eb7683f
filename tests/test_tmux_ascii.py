"""The real ``quorum`` in a real terminal that cannot show Unicode (C locale, no UTF-8 mode)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tmux import QUORUM, Tmux, pytestmark  # noqa: F401  (skipped without tmux)
from tests.test_tui import model as tui_model

ANSWER = "# Plan\n\nA café, naïvely — in “quotes”.\n\n- one\n- two\n\n> quoted\n\n---\n\nEND"


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux(f"quorum-ascii-{uuid.uuid4().hex[:8]}")
    yield session
    subprocess.run(["tmux", "kill-session", "-t", session.name], capture_output=True)


def test_a_non_unicode_terminal_gets_ascii_frames_and_glyphs(
    tmux: Tmux, loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    loopback.script("alpha", openai_stream([ANSWER]))
    loopback.script("beta", openai_stream(["short"]))
    config = write_config(models=[tui_model(loopback, n) for n in ("alpha", "beta")])
    env = {
        "LC_ALL": "C",
        "PYTHONUTF8": "0",
        "QUORUM_CONFIG": str(config),
        "QUORUM_HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "NO_PROXY": "127.0.0.1",
    }
    command = " ".join([*(f"{k}={v}" for k, v in env.items()), str(QUORUM), "; sleep 30"])
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "30", "env " + command)
    tmux.wait_for(lambda s: "alpha" in s and "beta" in s)
    tmux.keys("plan please", "Enter")
    screen = tmux.wait_for(lambda s: "END" in s and s.count("done") >= 2)
    assert "\\u" not in screen and "\\x" not in screen, screen  # no escapes drawn as text
    assert screen.isascii(), screen
    assert "+-" in screen and "-+" in screen, screen  # the panes are framed in ASCII
    tmux.keys("Tab", "Home")  # the consensus lines under the panes leave the start out of view
    top = tmux.wait_for(lambda s: "Plan" in s)
    assert 'A cafe, naively - in "quotes".' in top, top
    assert "* one" in screen and "| quoted" in screen, screen
    assert "?" not in screen, screen  # nothing was left unencodable
