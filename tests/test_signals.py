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
