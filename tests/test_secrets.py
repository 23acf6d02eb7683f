"""Keys never leak, through the real CLI and the real app: each provider gets a unique key, the
servers echo it back in error bodies (as real providers do on a bad key) and in a mid-stream
error, and every byte Quorum produced is scanned for it: stdout and stderr of `ask` (text,
--json, --jsonl), the history database and everything else in the data directory, the
Markdown/JSON/HTML exports, and a screenshot of the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import paths
from core.config import load_settings
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, anthropic_stream, error_reply, gemini_stream
from tests.test_cli import model, quorum
from tests.test_tui import SIZE, all_done, ask, until
from tui.app import QuorumApp

KEYS = {
    "gpt": "sk-test-UNIQUE-openai-7f3a9c1e5b",
    "claude": "sk-ant-UNIQUE-anthropic-2d8e4f6a",
    "gem": "AIza-UNIQUE-gemini-9b1c3d5e7f",
}


def council(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    loopback.script(
        "gpt",
        error_reply(401, {"error": {"message": f"Incorrect API key provided: {KEYS['gpt']}"}}),
    )
    loopback.script(
        "claude",
        anthropic_stream(
            ["partial "],
            error={
                "type": "error",
                "error": {"type": "authentication_error", "message": f"bad key {KEYS['claude']}"},
            },
        ),
    )
    loopback.script("gem", gemini_stream([f"the key you sent was {KEYS['gem'][:4]}…"]))
    models = [
        model(loopback, "openai", "gpt", api_key=KEYS["gpt"]),
        model(loopback, "anthropic", "claude", api_key=KEYS["claude"]),
        model(loopback, "gemini", "gem", api_key=KEYS["gem"]),
    ]
    for m in models:
        m.pop("api_key_env", None)
    config = write_config(models=models)
    config.chmod(0o600)
    return config


def leaks(blob: bytes | str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [name for name, key in KEYS.items() if key.encode() in data]


def test_no_key_reaches_output_history_or_exports(
    loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = council(loopback, write_config)
    outputs: list[str] = []
    session = None
    for extra in ((), ("--json",), ("--jsonl",)):
        done = quorum("ask", "hello", "--config", str(config), *extra)
        outputs += [done.stdout, done.stderr]
        if extra == ("--json",):
            body: dict[str, Any] = json.loads(done.stdout)
            session = body["session_id"]
            errors = {r["model"]: r["error"] for r in body["responses"]}
            assert "[redacted]" in errors["gpt"] and "[redacted]" in errors["claude"]
    assert session is not None
    for fmt in ("md", "json", "html"):
        exported = quorum("export", session, "--format", fmt, "--config", str(config))
        assert exported.returncode == 0, exported.stderr
        outputs += [exported.stdout, exported.stderr]
    outputs.append(quorum("history", "--config", str(config)).stdout)
    assert [leaks(o) for o in outputs if leaks(o)] == []

    # the keys did go out, in the headers each provider expects: the scan is not vacuous
    sent = {m: loopback.requests_for(m)[0].headers for m in KEYS}
    assert KEYS["gpt"] in sent["gpt"].get("authorization", "")
    assert sent["claude"].get("x-api-key") == KEYS["claude"]
    assert sent["gem"].get("x-goog-api-key") == KEYS["gem"]

    stored = {str(p): leaks(p.read_bytes()) for p in paths.data_dir().rglob("*") if p.is_file()}
    assert stored and not any(stored.values()), stored


@pytest.mark.anyio
async def test_no_key_reaches_the_screen(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    app = QuorumApp(load_settings(council(loopback, write_config)))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "hello")
        await until(pilot, lambda: all_done(app))
        screenshot = app.export_screenshot()
        assert "[redacted]" in screenshot
        assert leaks(screenshot) == []
