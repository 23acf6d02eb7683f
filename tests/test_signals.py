"""SIGTERM and Ctrl+C stop every long job of the real CLI cleanly: a fan-out (what each model
had said is printed and kept as interrupted), a synthesis (the answers already in are kept),
and an ingest (the knowledge base keeps whole files only, and the next ingest finishes the
job). Each process ends by itself once signalled; no traceback anywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import QUORUM, SECRET, model, quorum
from tests.test_tmux import held_stream
from tests.test_tui import model as tui_model

CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
FILES = 400
SAYS = {signal.SIGTERM: "quorum: terminated", signal.SIGINT: "quorum: interrupted"}


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*QUORUM, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET},
    )


def stopped(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)  # a bound for a failing test, not a measurement
    assert "Traceback" not in err, err
    assert proc.returncode == CODES[sig], err
    assert err.strip().endswith(SAYS[sig]), err
    return out, err


def app_processes(marker: str) -> list[int]:
    """The Python processes whose command line holds ``marker`` (not the shell that ran them)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"python" in argv[0] and any(marker.encode() in a for a in argv[1:]):
            found.append(int(entry.name))
    return found


def turns(config: Path) -> list[dict[str, Any]]:
    """The newest session's turns, as the JSON export has them."""
    listed = json.loads(quorum("history", "--json", "--config", str(config)).stdout)
    session = listed["sessions"][0]["id"]
    exported = quorum("export", session, "--format", "json", "--config", str(config))
    found: list[dict[str, Any]] = json.loads(exported.stdout)["session"]["turns"]
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
def test_a_fan_out_stops_and_keeps_what_was_said(
    sig: signal.Signals, loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("slow", held_stream("Half an ans", "wer."))
    loopback.script("quick", openai_stream(["Done."]))
    config = write_config(
        models=[model(loopback, "openai", "slow"), model(loopback, "openai", "quick")]
    )
    proc = start("ask", "hi", "--config", str(config))
    assert proc.stdout is not None
    assert proc.stdout.readline() == "quick │ Done.\n"
    assert loopback.wait_for(lambda s: bool(s.requests_for("slow")))
    out, _ = stopped(proc, sig)
    assert "│ Half an ans\n" in out and out.rstrip().endswith("interrupted")

    session = json.loads(quorum("history", "--json", "--config", str(config)).stdout)["sessions"][
        0
    ]["id"]
    exported = quorum("export", session, "--format", "json", "--config", str(config))
    (turn,) = json.loads(exported.stdout)["session"]["turns"]
    answers = {r["model"]: r for r in turn["responses"]}
    assert answers["quick"]["state"] == "done"
    assert answers["slow"]["state"] == "interrupted" and answers["slow"]["text"] == "Half an ans"


def test_a_synthesis_stops_and_the_answers_stay(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("a", openai_stream(["Paris is the capital of France."]))
    loopback.script("b", openai_stream(["The capital of France is Paris."]))
    loopback.script("judge", held_stream("Paris", ", says everyone."))
    config = write_config(
        models=[
            model(loopback, "openai", "a"),
            model(loopback, "openai", "b"),
            model(loopback, "openai", "judge", enabled=False),
        ],
        consensus={"synthesizer": "judge"},
    )
    proc = start("ask", "Capital of France?", "--json", "--config", str(config))
    assert loopback.wait_for(lambda s: bool(s.requests_for("judge")))
    stopped(proc, signal.SIGTERM)
    session = json.loads(quorum("history", "--json", "--config", str(config)).stdout)["sessions"][
        0
    ]["id"]
    exported = quorum("export", session, "--format", "json", "--config", str(config))
    (turn,) = json.loads(exported.stdout)["session"]["turns"]
    assert {r["model"]: r["state"] for r in turn["responses"]} == {"a": "done", "b": "done"}


def test_an_ingest_stops_with_whole_files_and_the_next_one_finishes(
    tmp_path: Path, loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = write_config(models=[model(loopback, "openai", "gpt")])
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(FILES):
        # two short chunks a file (one per heading): several embedding batches, so the
        # signal lands mid-ingest, each of them quick
        body = f"## North\n\nRegion north made {i} units.\n\n## South\n\nSouth made {2 * i}."
        (docs / f"note{i:03}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    proc = start("ingest", str(docs), "--config", str(config))
    assert proc.stderr is not None
    first = proc.stderr.readline()  # one plain line per file when piped
    assert first.startswith(f"[1/{FILES}]"), first
    stopped(proc, signal.SIGTERM)

    listed = json.loads(quorum("kb", "list", "--json", "--config", str(config)).stdout)["files"]
    assert 0 < len(listed) < FILES
    assert all(f["chunks"] > 0 for f in listed)  # whole files only
    again = quorum("ingest", str(docs), "--json", "--config", str(config))
    report = json.loads(again.stdout)
    assert report["unchanged"] == len(listed) and report["added"] == FILES - len(listed)


def test_sigterm_ends_the_app_with_the_terminal_restored_and_the_answers_kept(
    loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    from tests.test_tmux import Tmux

    loopback.script("slow", held_stream("Half an ans", "wer."))
    loopback.script("quick", openai_stream(["Done."]))
    config = write_config(models=[tui_model(loopback, n) for n in ("slow", "quick")])
    home = tmp_path / "home"
    env = f"QUORUM_HOME={home} TERM=xterm-256color NO_PROXY=127.0.0.1"
    tmux = Tmux(f"quorum-term-{os.getpid()}")
    shell = f"env {env} {QUORUM[0]} --config {config}; echo APP-EXITED-$?; sleep 30"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "100", "-y", "30", shell)
    try:
        tmux.wait_for(lambda s: "slow" in s and "quick" in s)
        tmux.keys("question", "Enter")
        tmux.wait_for(lambda s: "Half an ans" in s and "Done." in s)
        (pid,) = app_processes(str(config))
        os.kill(pid, signal.SIGTERM)
        after = tmux.wait_for(lambda s: "APP-EXITED-" in s)
        assert "APP-EXITED-0" in after and "Traceback" not in after
        assert "╭" not in after  # the alternate screen is gone: the terminal is the shell's
    finally:
        subprocess.run(["tmux", "kill-session", "-t", tmux.name], capture_output=True)
    os.environ["QUORUM_HOME"] = str(home)
    try:
        (turn,) = turns(config)
    finally:
        del os.environ["QUORUM_HOME"]
    answers = {r["model"]: r for r in turn["responses"]}
    assert answers["quick"]["text"] == "Done."
    assert answers["slow"]["state"] == "interrupted" and answers["slow"]["text"] == "Half an ans"
