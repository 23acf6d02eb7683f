"""Faults of Quorum's own parts, through the real `quorum ask` and the real app: a damaged
history file, one from a newer Quorum, and a disk that takes no more bytes (RLIMIT_FSIZE). The
answers still come, the user is told once what is wrong and how to recover, and a file Quorum
cannot use is never rewritten."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
from pathlib import Path

import pytest

from core import paths
from core.config import load_settings
from core.history.schema import SCHEMA_VERSION
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import QUORUM, SECRET, model, quorum
from tests.test_tui import SIZE, all_done, ask, until
from tests.test_tui import model as in_process
from tui.app import QuorumApp


def history_file() -> Path:
    path = paths.data_dir() / "history.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def damaged() -> bytes:
    history_file().write_bytes(b"not a database, whatever it was " * 64)
    return history_file().read_bytes()


def newer() -> bytes:
    conn = sqlite3.connect(history_file())
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    return history_file().read_bytes()


@pytest.fixture
def config(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    loopback.script("gpt", openai_stream(["Still ", "answered."]))
    return write_config(models=[model(loopback, "openai", "gpt")])


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (damaged, ["not a usable Quorum history database", ".broken", ".recover"]),
        (newer, ["written by a newer Quorum", "upgrade Quorum"]),
    ],
)
def test_an_unusable_history_costs_one_warning_never_the_answer_or_the_file(
    config: Path, make: object, says: list[str]
) -> None:
    assert callable(make)
    before = make()
    done = quorum("ask", "hello", "--config", str(config))
    assert done.returncode == 0
    assert "Still answered." in done.stdout
    warning = [line for line in done.stderr.splitlines() if "not recording" in line]
    assert len(warning) == 1 and all(part in warning[0] for part in says), done.stderr
    assert history_file().read_bytes() == before  # left exactly as it was


def test_a_full_disk_costs_the_history_not_the_answer(config: Path) -> None:
    def no_more_bytes() -> None:  # every write to a file fails (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    done = subprocess.run(
        [*QUORUM, "ask", "hello", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET},
        preexec_fn=no_more_bytes,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Still answered." in done.stdout
    assert "Traceback" not in done.stderr
    assert "not recording this question" in done.stderr


@pytest.mark.anyio
async def test_the_app_answers_without_history_and_says_how_to_recover(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("gpt", openai_stream(["Still ", "answered."]))
    before = damaged()
    app = QuorumApp(load_settings(write_config(models=[in_process(loopback, "gpt")])))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "hello")
        await until(pilot, lambda: all_done(app))
        assert app.panes["gpt"].state.text == "Still answered."
        notes = [str(n.message) for n in app._notifications]
        assert any(".broken" in n and "history" in n for n in notes), notes
    assert history_file().read_bytes() == before
