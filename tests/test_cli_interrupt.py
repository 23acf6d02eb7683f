"""Ctrl+C during ``quorum ask`` into a pipe: what every model had said so far is printed,
marked interrupted, before ``quorum: interrupted``. (On a terminal: tests/test_tmux.py.)"""

from __future__ import annotations

import os
import signal
import subprocess

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import QUORUM, SECRET, model
from tests.test_tmux import held_stream


def test_ctrl_c_prints_the_partial_answers_then_interrupted(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    # one delta holds a whole line and the start of the next: once the line is out, the
    # unfinished rest is waiting in quorum, unprinted
    loopback.script("slow", held_stream("First line\nand half a sec", "ond line"))
    loopback.script("done", openai_stream(["Finished."]))
    config = write_config(
        models=[model(loopback, "openai", "slow"), model(loopback, "openai", "done")]
    )

    with subprocess.Popen(
        [*QUORUM, "ask", "--config", str(config), "hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        seen = [proc.stdout.readline() for _ in range(2)]  # "done" and slow's first line
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        stderr = proc.stderr.read()
        returncode = proc.wait(timeout=60)

    assert sorted(seen) == ["done │ Finished.\n", "slow │ First line\n"]
    assert rest.splitlines() == ["slow │ and half a sec", "slow │ ✗ interrupted"]
    assert stderr.strip() == "quorum: interrupted"
    assert returncode == 130
