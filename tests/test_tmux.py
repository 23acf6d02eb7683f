"""The real ``quorum`` binary in a real terminal (tmux): launch, ask, watch, cancel, quit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, Reply, openai_stream
from tests.test_tui import model as tui_model

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
QUORUM = Path(sys.executable).parent / "quorum"


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, condition: Callable[[str], bool], limit_s: float = 20.0) -> str:
        """Poll the screen until ``condition`` holds; the limit only bounds a failing test."""
        deadline = time.monotonic() + limit_s
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed what was expected:\n{text}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return (
            subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode
            == 0
        )


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(f"quorum-test-{uuid.uuid4().hex[:8]}")
    yield session
    subprocess.run(["tmux", "kill-session", "-t", session.name], capture_output=True)


def test_quorum_binary_end_to_end(
    tmux: Tmux,
    loopback: LoopbackServer,
    write_config: ConfigWriter,
    tmp_path: Path,
    _isolated_user_dirs: Path,
) -> None:
    loopback.script("fast", openai_stream(["The answer ", "is **42**."], interval=0.02))
    loopback.script("slow", openai_stream([f"word{i} " for i in range(500)], interval=0.05))
    config = write_config(models=[tui_model(loopback, n) for n in ("fast", "slow")])
    env = {
        "QUORUM_CONFIG": str(config),
        "QUORUM_HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "NO_PROXY": "127.0.0.1",
    }
    command = " ".join(
        [*(f"{k}={v}" for k, v in env.items()), str(QUORUM), "; echo QUORUM-EXITED-$?; sleep 30"]
    )
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "30", "env " + command)

    tmux.wait_for(lambda s: "fast" in s and "slow" in s and "palette" in s)
    tmux.keys("life, the universe?", "Enter")
    screen = tmux.wait_for(lambda s: "The answer is 42." in s and "word3" in s)
    assert "streaming" in screen  # the slow model is still going
    tmux.keys("Escape")
    screen = tmux.wait_for(lambda s: "cancelled" in s)
    assert "The answer is 42." in screen  # the finished answer stays
    assert "failed" not in screen
    tmux.keys("Up")
    tmux.wait_for(lambda s: "life, the universe?" in s)
    tmux.keys("C-q")
    tmux.wait_for(lambda s: "QUORUM-EXITED-0" in s)
    assert loopback.requests_for("fast")[0].json["messages"][-1]["content"] == "life, the universe?"


# --- quorum ask on a terminal ------------------------------------------------------------------
def held_stream(first: str, rest: str, hold_s: float = 60.0) -> Reply:
    """An openai stream that sends ``first`` at once and ``rest`` only after ``hold_s``: while
    the test looks, the answer is still going."""
    parts = list(openai_stream([first, rest]).parts)
    frame = parts[2][1]  # [role frame, first, rest, finish, usage, done]
    parts[2] = (hold_s, frame)
    return Reply(parts=parts)


def ask_in_tmux(
    tmux: Tmux, loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path, *names: str
) -> None:
    config = write_config(models=[tui_model(loopback, n) for n in names])
    env = {
        "QUORUM_HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "NO_PROXY": "127.0.0.1",
    }
    command = " ".join(
        [
            *(f"{k}={v}" for k, v in env.items()),
            str(QUORUM),
            "ask",
            "--config",
            str(config),
            "'life?'",
            "; echo QUORUM-EXITED-$?; sleep 30",
        ]
    )
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "100", "-y", "30", "env " + command)


def test_ask_on_a_terminal_shows_progress_live_and_each_answer_whole(
    tmux: Tmux, loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    loopback.script("fast", openai_stream(["The answer ", "is 42."]))
    loopback.script("slow", held_stream("Partial words so far", " and the END."))
    ask_in_tmux(tmux, loopback, write_config, tmp_path, "fast", "slow")

    # the slow model's words appear on its status line while its answer is still going
    screen = tmux.wait_for(lambda s: "Partial words so far" in s)
    assert "END" not in screen
    status = next(line for line in screen.splitlines() if "Partial words so far" in line)
    assert status.startswith("slow") and "streaming" in status and "tok" in status
    # the finished model's answer is printed whole, under its heading
    screen = tmux.wait_for(lambda s: "The answer is 42." in s)
    assert any("fast" in line and "done in" in line for line in screen.splitlines())
    assert all(len(line) < 100 for line in screen.splitlines())  # the status line fits

    tmux.keys("C-c")  # SIGINT to quorum: what slow had said so far is printed
    screen = tmux.wait_for(lambda s: "QUORUM-EXITED-130" in s)
    heading = next(line for line in screen.splitlines() if line.startswith("── slow"))
    assert "interrupted" in heading
    lines = screen.splitlines()
    assert lines[lines.index(heading) + 1] == "Partial words so far"
    assert "quorum: interrupted" in screen
    assert "streaming" not in screen  # the status block is gone


def test_ask_on_a_terminal_ends_with_the_answers_and_the_table_only(
    tmux: Tmux, loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    loopback.script("one", openai_stream(["First ", "answer."], interval=0.05))
    loopback.script("two", openai_stream(["Second\n", "answer."], interval=0.05))
    ask_in_tmux(tmux, loopback, write_config, tmp_path, "one", "two")

    screen = tmux.wait_for(lambda s: "QUORUM-EXITED-0" in s)
    lines = screen.splitlines()
    assert "First answer." in lines
    assert lines[lines.index("Second") + 1] == "answer."
    assert any(line.startswith("one") and " ok " in line for line in lines)  # the table
    assert any(line.startswith("wall time") for line in lines)
    assert not any("streaming" in line or "waiting" in line for line in lines)
