"""What a person types reaches Quorum intact or is refused clearly: bytes that are not UTF-8,
numbers that are not finite or too large, empty ids, URLs without a scheme, no terminal."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import QUORUM, SECRET, model, quorum


def quorum_bytes(*args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """`quorum` with raw bytes in (argv and stdin) and out."""
    result = subprocess.run(
        [*QUORUM, *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET},
        check=False,
    )
    assert b"Traceback" not in result.stderr, result.stderr.decode("utf-8", "replace")
    return result


@pytest.fixture
def echo(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    loopback.script("gpt", openai_stream(["fine"]))
    return write_config(models=[model(loopback, "openai", "gpt")])


@pytest.mark.parametrize("history", [[], ["--no-history"]])
def test_invalid_utf8_on_stdin_is_replaced_and_said_once(
    history: list[str], echo: Path, loopback: LoopbackServer
) -> None:
    result = quorum_bytes(
        "ask", "--config", str(echo), "--json", *history, "-", stdin=b"hello \xff world"
    )

    assert result.returncode == 0, result.stderr
    warning = result.stderr.decode().strip()
    assert len(warning.splitlines()) == 1
    assert "not valid UTF-8" in warning and "U+FFFD" in warning
    data = json.loads(result.stdout)
    assert data["responses"][0]["ok"] is True  # no "internal error" for the model
    assert data["query"] == "hello \ufffd world"
    assert loopback.requests[0].json["messages"][-1]["content"] == "hello \ufffd world"
    if not history:  # and the history stored it
        exported = quorum("export", "--last", "--format", "json", "--config", str(echo))
        assert "hello \ufffd world" in exported.stdout


def test_invalid_utf8_in_arguments_is_replaced(echo: Path, loopback: LoopbackServer) -> None:
    result = quorum_bytes("ask", "--config", str(echo), "--json", b"caf\xe9 \xff")

    assert result.returncode == 0, result.stderr
    assert "not valid UTF-8" in result.stderr.decode()
    assert loopback.requests[0].json["messages"][-1]["content"] == "caf\ufffd \ufffd"
    search = quorum_bytes("history", "--config", str(echo), "--search", b"caf\xe9")
    assert search.returncode == 0 and "not valid UTF-8" in search.stderr.decode()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ask", "--timeout", "nan", "hi"], "not a finite number: 'nan'"),
        (["ask", "--timeout", "inf", "hi"], "not a finite number: 'inf'"),
        (["ask", "--timeout", "-0", "hi"], "must be greater than 0"),
        (["ask", "--timeout", "1e300", "hi"], "must be at most 1000000000"),
        (["history", "--limit", "99999999999999999999"], "must be at most 1000000000"),
        (["history", "--limit", "0"], "must be greater than 0"),
        (["ask", "--session", "", "hi"], "argument --session: must not be empty"),
        (["ask", "--session", "  ", "hi"], "argument --session: must not be empty"),
    ],
)
def test_bad_option_values_are_usage_errors(
    args: list[str], expected: str, echo: Path, loopback: LoopbackServer
) -> None:
    result = quorum("--config", str(echo), *args)

    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""
    assert loopback.requests == []


@pytest.mark.parametrize("base_url", ["127.0.0.1:11434", "", "http://"])
def test_a_base_url_without_scheme_or_host_is_a_config_error(
    base_url: str, loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = write_config(models=[model(loopback, "ollama", "llama", base_url=base_url)])

    result = quorum("--config", str(config), "ask", "hi")

    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "model 'llama': base_url must be an http:// or https:// URL" in message
    assert "cannot reach" not in message
    assert loopback.requests == []


def test_the_app_without_a_terminal_says_so_and_exits_2(echo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with open(os.devnull, "rb") as stdin, out.open("wb") as stdout:
        result = subprocess.run(
            [*QUORUM, "--config", str(echo)],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 2
    assert "needs a terminal" in result.stderr and "quorum ask" in result.stderr
    assert out.read_bytes() == b""  # no escape codes written into the file
