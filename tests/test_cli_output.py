"""What ``quorum`` prints, whatever the output can encode and whatever the config names hold:
ASCII terminals, escape sequences in model names, --version, skipped checks, token counts."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, Reply, anthropic_stream, openai_stream
from tests.test_cli import QUORUM, SECRET, model, quorum

ASCII_ENVIRONMENTS = [
    {"PYTHONIOENCODING": "ascii"},
    {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
]


def run_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [*QUORUM, *args],
        capture_output=True,
        timeout=60,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET, **env},
        check=False,
    )
    assert b"Traceback" not in result.stderr, result.stderr.decode("utf-8", "replace")
    return result


@pytest.mark.parametrize("env", ASCII_ENVIRONMENTS)
def test_an_ascii_output_gets_ascii_separators_and_never_a_crash(
    env: dict[str, str], loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("gpt", openai_stream(["café, naïve ✓"]))
    loopback.script("plain", openai_stream(["just ASCII"]))
    down = model(loopback, "openai", "down", base_url="http://127.0.0.1:9/v1")
    config = write_config(
        models=[model(loopback, "openai", "gpt"), model(loopback, "openai", "plain"), down]
    )

    asked = run_with(env, "ask", "--config", str(config), "a question " * 10)
    listed = run_with(env, "history", "--config", str(config))
    as_json = run_with(env, "ask", "--config", str(config), "--json", "q")

    assert asked.returncode == 0
    out = asked.stdout.decode("ascii")  # every byte is ASCII
    assert "plain | just ASCII" in out.splitlines()
    assert "gpt   | caf?, na?ve ?" in out.splitlines()  # model text degraded, not fatal
    assert "down  | x connect: cannot reach" in out
    assert listed.returncode == 0
    assert "a question a question" in listed.stdout.decode("ascii")
    assert listed.stdout.decode("ascii").rstrip().endswith("...")  # the cut question
    # JSON stays lossless: non-ASCII is escaped rather than replaced
    assert json.loads(as_json.stdout)["responses"][0]["text"] == "café, naïve ✓"


def test_version_names_the_installed_distribution() -> None:
    from importlib.metadata import version

    result = quorum("--version")

    assert result.returncode == 0
    assert result.stdout == f"quorum {version('quorum-tui')}\n"


def test_escape_sequences_in_model_names_never_reach_the_terminal(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    name = "evil\x1b]0;pwned\x07\x1b[31m"
    loopback.script(name, openai_stream(["an answer"]))
    config = write_config(models=[model(loopback, "openai", name)])

    asked = quorum("ask", "--config", str(config), "hi")
    listed = quorum("models", "--config", str(config))
    unknown = quorum("ask", "--config", str(config), "-m", "nope", "hi")  # lists the names

    assert asked.returncode == 0 and listed.returncode == 0 and unknown.returncode == 2
    assert "configured: evil" in unknown.stderr
    for text in (asked.stdout, asked.stderr, listed.stdout, unknown.stderr):
        assert "\x1b" not in text and "\x07" not in text
    assert "evil │ an answer" in asked.stdout.splitlines()
    assert any(line.startswith("evil ") and " ok " in line for line in asked.stdout.splitlines())
    assert any(line.startswith("evil ") for line in listed.stdout.splitlines())


def test_a_model_without_a_key_is_skipped_not_failed(
    loopback: LoopbackServer, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUORUM_TEST_UNSET_KEY", raising=False)
    loopback.fallback = lambda request: Reply(
        parts=[(0.0, b'{"data": []}')], content_type="application/json"
    )
    config = write_config(
        models=[
            model(loopback, "openai", "gpt"),
            model(loopback, "gemini", "gem", api_key_env="QUORUM_TEST_UNSET_KEY"),
        ]
    )

    result = quorum("--config", str(config), "models", "--check")
    data = quorum("--config", str(config), "models", "--check", "--json")

    assert result.returncode == 0  # nothing failed
    assert result.stdout.splitlines()[-1] == "1 reachable, 0 failed, 1 not checked"
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "not checked: no API key (needs $QUORUM_TEST_UNSET_KEY)" in rows["gem"]
    gem = json.loads(data.stdout)["models"][1]["check"]
    assert (gem["state"], gem["ok"]) == ("skipped", False)
    assert loopback.requests_for("gem") == []


def cut_anthropic_stream(tokens: list[str]) -> Reply:
    """Anthropic's stream dropped after the text deltas: no message_delta (with the real
    output token count) and no message_stop."""
    whole = anthropic_stream(tokens)
    text_frames = 4 + len(tokens)  # message_start, content_block_start, ping, the deltas
    return Reply(parts=whole.parts[:text_frames], drop=True)


def test_an_anthropic_answer_cut_short_counts_its_streamed_tokens(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("claude", cut_anthropic_stream(["One ", "two ", "three ", "four"]))
    loopback.script("whole", anthropic_stream(["One ", "two"]))
    config = write_config(
        models=[model(loopback, "anthropic", "claude"), model(loopback, "anthropic", "whole")]
    )

    result = quorum("ask", "--config", str(config), "--json", "hi")

    cut, whole = json.loads(result.stdout)["responses"]
    assert cut["ok"] is False and cut["text"] == "One two three four"
    assert cut["tokens_in"] == 7
    assert cut["tokens_out"] == 4  # the deltas seen, not message_start's placeholder 1
    assert whole["tokens_out"] == 2  # message_delta's count, when it comes
