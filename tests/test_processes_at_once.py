"""Several Quorum processes on one data directory at once, as a person runs them: the app open
in a real terminal (tmux), four `quorum ask` in other terminals, and a `quorum ingest` of a
folder, all started together. Nothing is lost in the history SQLite file or the vector index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import QUORUM, SECRET, model, quorum
from tests.test_tmux import QUORUM as QUORUM_BINARY
from tests.test_tmux import Tmux, tmux  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
FILES = 60
ASKS = 4


def folder(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    for i in range(FILES):
        (docs / f"note-{i:02d}.md").write_text(
            f"# Note {i}\n\nThe locker code for room {i} is {1000 + i}.\n\n"
            + "Filler sentence about the building. " * 40,
            encoding="utf-8",
        )
    return docs


def test_the_app_four_asks_and_an_ingest_at_once_lose_nothing(
    tmux: Tmux,  # noqa: F811
    loopback: LoopbackServer,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    loopback.script("gpt", openai_stream(["Noted", ", the answer is here."], interval=0.05))
    config = write_config(models=[model(loopback, "openai", "gpt")])
    docs = folder(tmp_path)
    env = {**os.environ, "QUORUM_TEST_CLI_KEY": SECRET}

    app_env = {
        "QUORUM_CONFIG": str(config),
        "QUORUM_HOME": os.environ["QUORUM_HOME"],
        "XDG_CONFIG_HOME": os.environ["XDG_CONFIG_HOME"],
        "QUORUM_TEST_CLI_KEY": SECRET,
        "TERM": "xterm-256color",
        "NO_PROXY": "127.0.0.1",
    }
    command = " ".join(
        [*(f"{k}={v}" for k, v in app_env.items()), str(QUORUM_BINARY), "; echo EXIT-$?; sleep 30"]
    )
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "30", "env " + command)
    tmux.wait_for(lambda s: "gpt" in s and "palette" in s, limit_s=60)

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*QUORUM, *args, "--json", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    ingest = start("ingest", str(docs))
    asks = [start("ask", f"which locker code, question {n}?") for n in range(ASKS)]
    tmux.keys("asked in the app while the others run", "Enter")

    outputs = [p.communicate(timeout=180) for p in (ingest, *asks)]
    for process, (out, err) in zip((ingest, *asks), outputs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err and SECRET not in out + err
    assert json.loads(outputs[0][0])["added"] == FILES
    for out, _ in outputs[1:]:
        (answer,) = json.loads(out)["responses"]
        assert answer["ok"] and answer["text"] == "Noted, the answer is here."

    tmux.wait_for(lambda s: "Noted, the answer is here." in s, limit_s=60)
    tmux.keys("C-q")
    tmux.wait_for(lambda s: "EXIT-0" in s, limit_s=30)

    history = quorum("history", "--json", "--limit", "50", "--config", str(config))
    sessions = {s["last_query"]: s["id"] for s in json.loads(history.stdout)["sessions"]}
    expected = {f"which locker code, question {n}?" for n in range(ASKS)}
    assert expected | {"asked in the app while the others run"} == set(sessions)
    for session in sessions.values():  # every answer was stored, not only every question
        exported = quorum("export", session, "--format", "json", "--config", str(config))
        assert "Noted, the answer is here." in exported.stdout, exported.stderr
    listed = json.loads(quorum("kb", "list", "--json", "--config", str(config)).stdout)
    assert len(listed["files"]) == FILES
    found = json.loads(
        quorum("kb", "search", "locker code for room 37", "--json", "--config", str(config)).stdout
    )
    assert any("1037" in s["text"] for s in found)
