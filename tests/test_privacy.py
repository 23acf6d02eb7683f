"""What Quorum keeps is private, through the real `quorum ask`: the data directory is 0700 and
the history file 0600 (an older, more open directory is tightened), and a config holding a
literal API key that others can read gets a warning naming the chmod that fixes it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core import paths
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import model, quorum

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_history_are_private(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("gpt", openai_stream(["private"]))
    config = write_config(models=[model(loopback, "openai", "gpt")])
    home = paths.data_dir()
    home.mkdir(parents=True)
    home.chmod(0o755)  # made by an older Quorum, or by hand
    done = quorum("ask", "hi", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert mode(home) == 0o700
    written = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "history.sqlite3" for p in written)
    assert all(mode(p) & 0o077 == 0 for p in written), {str(p): oct(mode(p)) for p in written}


def test_a_readable_config_with_a_literal_key_is_pointed_out(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("gpt", openai_stream(["ok"]))
    literal = model(loopback, "openai", "gpt", api_key="test-key-literal-123")
    del literal["api_key_env"]
    config = write_config(models=[literal])
    config.chmod(0o644)
    warned = quorum("ask", "hi", "--config", str(config))
    assert warned.returncode == 0
    assert f"holds an API key and other users can read it: run chmod 600 {config}" in warned.stderr
    assert "test-key" not in warned.stderr

    config.chmod(0o600)
    quiet = quorum("ask", "hi", "--config", str(config))
    assert "API key" not in quiet.stderr
