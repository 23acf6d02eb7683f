"""The ``quorum`` console script as a user runs it: a real subprocess against the loopback server.
Exit codes: 0 at least one model answered, 1 all failed, 2 usage or configuration error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from core.events import TextDelta, event_from_dict
from tests.conftest import ConfigWriter, closed_port
from tests.loopback import (
    LoopbackServer,
    Reply,
    anthropic_stream,
    error_reply,
    ollama_stream,
    openai_stream,
)

SECRET = "sk-cli-secret-value-0123456789"
RESPONSE_KEYS = {
    "model",
    "provider",
    "ok",
    "state",
    "text",
    "reasoning",
    "error",
    "finish_reason",
    "ttft_ms",
    "total_ms",
    "tokens_in",
    "tokens_out",
    "tokens_per_s",
    "attempts",
}
_SCRIPT = Path(sys.executable).with_name("quorum")
QUORUM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "core.cli"]


def quorum(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*QUORUM, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET},
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert SECRET not in result.stdout + result.stderr
    return result


def model(server: LoopbackServer, provider: str, name: str, **extra: Any) -> dict[str, Any]:
    base_url = f"{server.url}/v1" if provider == "openai" else server.url
    values: dict[str, Any] = {
        "name": name,
        "provider": provider,
        "model": name,
        "base_url": base_url,
        "max_retries": 0,
    }
    if provider != "ollama":
        values["api_key_env"] = "QUORUM_TEST_CLI_KEY"
    return {**values, **extra}


@pytest.fixture
def council(loopback: LoopbackServer, write_config: ConfigWriter) -> Path:
    """Two healthy models: ``gpt`` (openai) and ``claude`` (anthropic)."""
    loopback.script("gpt", openai_stream(["Four", ".\nThat is all."], usage=(3, 4)))
    loopback.script("claude", anthropic_stream(["It is ", "4."]))
    return write_config(
        models=[model(loopback, "openai", "gpt"), model(loopback, "anthropic", "claude")]
    )


# --- ask: the three output modes ---------------------------------------------------------------
def test_ask_streams_labelled_lines_and_a_timing_table(
    council: Path, loopback: LoopbackServer
) -> None:
    result = quorum("ask", "--config", str(council), "What is 2+2?")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "gpt    │ Four." in lines
    assert "gpt    │ That is all." in lines
    assert "claude │ It is 4." in lines
    header = next(line for line in lines if line.startswith("model"))
    assert header.split() == ["model", "state", "ttft", "total", "tok", "out", "tok/s", "tries"]
    assert any(line.startswith("gpt") and " ok " in line for line in lines)
    wall = next(i for i, line in enumerate(lines) if line.startswith("wall time "))
    assert lines[wall + 2].startswith("agreement "), "the agreement follows the table"
    assert "\x1b" not in result.stdout  # no colour when stdout is not a terminal
    assert {r.json["messages"][-1]["content"] for r in loopback.requests} == {"What is 2+2?"}


def test_ask_json_is_exactly_one_object_with_every_key(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("gpt", openai_stream(["Four"], reasoning=["2+2"], usage=(3, 1)))
    loopback.script("down", error_reply(500, {"error": {"message": "the model crashed"}}))
    config = write_config(
        models=[model(loopback, "openai", "gpt"), model(loopback, "openai", "down")]
    )

    result = quorum("ask", "--config", str(config), "--json", "What is 2+2?")

    assert result.returncode == 0
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(data) == {"query", "wall_ms", "context", "responses", "session_id", "consensus"}
    assert data["context"] == []  # nothing retrieved: the knowledge base is empty
    assert data["query"] == "What is 2+2?"
    assert data["wall_ms"] > 0
    gpt, down = data["responses"]
    assert set(gpt) == RESPONSE_KEYS and set(down) == RESPONSE_KEYS
    assert (gpt["model"], gpt["provider"], gpt["ok"]) == ("gpt", "openai", True)
    assert (gpt["text"], gpt["reasoning"], gpt["error"]) == ("Four", "2+2", None)
    assert (gpt["finish_reason"], gpt["tokens_in"], gpt["tokens_out"]) == ("stop", 3, 1)
    assert gpt["attempts"] == 1 and gpt["ttft_ms"] <= gpt["total_ms"]
    assert down["ok"] is False
    assert isinstance(down["error"], str)
    # one answer is nothing to compare: no figures, and the reason why
    assert data["consensus"]["agreement"] is None and data["consensus"]["answered"] == 1
    assert data["consensus"]["reason"]
    assert "HTTP 500" in down["error"] and "the model crashed" in down["error"]

    exported = quorum("export", data["session_id"], "--format", "json", "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    assert "What is 2+2?" in exported.stdout and "Four" in exported.stdout

    unrecorded = quorum("ask", "--config", str(config), "--json", "--no-history", "again?")
    assert set(json.loads(unrecorded.stdout)) == {
        "query",
        "wall_ms",
        "responses",
        "context",
        "consensus",
    }


def test_ask_jsonl_is_the_event_stream(council: Path) -> None:
    result = quorum("ask", "--config", str(council), "--jsonl", "What is 2+2?")

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    events = [event_from_dict(json.loads(line)) for line in lines]  # each line stands alone
    types = [json.loads(line)["type"] for line in lines]
    assert types[0] == "fanout_started"
    assert types[-1] == "fanout_finished"
    assert types.count("finished") == 2
    assert "first_token" in types and "text" in types and "usage" in types
    text = "".join(e.text for e in events if isinstance(e, TextDelta) and e.model == "gpt")
    assert text == "Four.\nThat is all."


def test_ask_reads_the_prompt_from_stdin(council: Path, loopback: LoopbackServer) -> None:
    question = "A question\nover two lines, with ünïcode"

    result = quorum("ask", "--config", str(council), "--json", "-", stdin=question)

    assert result.returncode == 0
    assert json.loads(result.stdout)["query"] == question
    assert {r.json["messages"][-1]["content"] for r in loopback.requests} == {question}


def test_model_option_picks_a_subset_in_order(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("a", ollama_stream(["A"]))
    loopback.script("b", ollama_stream(["B"]))
    loopback.script("c", ollama_stream(["C"]))
    config = write_config(
        models=[
            model(loopback, "ollama", "a"),
            model(loopback, "ollama", "b"),
            model(loopback, "ollama", "c", enabled=False),
        ]
    )

    result = quorum("ask", "--config", str(config), "--json", "--model", "c", "-m", "a", "hi")

    assert result.returncode == 0
    assert [r["model"] for r in json.loads(result.stdout)["responses"]] == ["c", "a"]
    assert loopback.requests_for("b") == []


def test_a_model_named_twice_is_asked_once(council: Path, loopback: LoopbackServer) -> None:
    result = quorum("ask", "--config", str(council), "--json", "-m", "gpt", "-m", "gpt", "hi")

    assert result.returncode == 0
    assert [r["model"] for r in json.loads(result.stdout)["responses"]] == ["gpt"]
    assert len(loopback.requests) == 1


def test_unknown_model_option_is_a_usage_error(council: Path, loopback: LoopbackServer) -> None:
    result = quorum("ask", "--config", str(council), "--model", "gtp", "hi")

    assert result.returncode == 2
    assert "unknown model 'gtp'" in result.stderr
    assert "did you mean 'gpt'" in result.stderr
    assert loopback.requests == []


def test_every_model_failing_exits_1(loopback: LoopbackServer, write_config: ConfigWriter) -> None:
    loopback.script("x", error_reply(404, {"error": "model 'x' not found"}))
    config = write_config(
        models=[
            model(loopback, "ollama", "x"),
            model(loopback, "ollama", "gone", base_url=f"http://127.0.0.1:{closed_port()}"),
        ]
    )

    result = quorum("ask", "--config", str(config), "hi")

    assert result.returncode == 1
    assert "x    │ ✗ http: HTTP 404: model 'x' not found" in result.stdout
    assert "gone │ ✗ connect: cannot reach 127.0.0.1:" in result.stdout


def test_timeout_option_bounds_each_model(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("slow", openai_stream(["late"], first_delay=10))
    config = write_config(models=[model(loopback, "openai", "slow")])

    result = quorum("ask", "--config", str(config), "--json", "--timeout", "0.3", "hi")

    assert result.returncode == 1
    (answer,) = json.loads(result.stdout)["responses"]
    assert answer["ok"] is False
    assert "total timeout of 0.3 s" in answer["error"]


def test_missing_key_fails_only_that_model_and_names_the_variable(
    loopback: LoopbackServer, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUORUM_TEST_UNSET_KEY", raising=False)
    loopback.script("gpt", openai_stream(["fine"]))
    config = write_config(
        models=[
            model(loopback, "openai", "gpt"),
            model(loopback, "anthropic", "claude", api_key_env="QUORUM_TEST_UNSET_KEY"),
        ]
    )

    for mode in ([], ["--json"], ["--jsonl"]):
        result = quorum("ask", "--config", str(config), *mode, "hi")  # asserts SECRET unseen
        assert result.returncode == 0
        assert "QUORUM_TEST_UNSET_KEY" in result.stdout
    assert loopback.requests_for("claude") == []


@pytest.mark.parametrize(
    "args",
    [
        ["ask", "--json", "--jsonl", "hi"],
        ["ask", "--timeout", "0", "hi"],
        ["ask", "--timeout", "soon", "hi"],
        ["ask", "   "],
        ["ask"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str], council: Path) -> None:
    result = quorum("--config", str(council), *args)

    assert result.returncode == 2
    assert result.stderr.strip()
    assert result.stdout == ""


def test_empty_stdin_prompt_is_a_usage_error(council: Path) -> None:
    result = quorum("ask", "--config", str(council), "-", stdin="\n")
    assert result.returncode == 2
    assert "empty" in result.stderr


# --- configuration errors ----------------------------------------------------------------------
BAD_CONFIGS: Mapping[str, tuple[str, list[str]]] = {
    "toml syntax": ('[[models]]\nname = "a"\nprovider = openai\n', ["line 3", "column"]),
    "unknown provider": (
        '[[models]]\nname = "a"\nprovider = "antropic"\nmodel = "m"\n',
        ["unknown provider 'antropic'", "did you mean 'anthropic'"],
    ),
    "duplicate names": (
        '[[models]]\nname = "a"\nprovider = "ollama"\nmodel = "m"\n'
        '[[models]]\nname = "a"\nprovider = "ollama"\nmodel = "n"\n',
        ["duplicate model name 'a'"],
    ),
    "wrong type": (
        '[[models]]\nname = "a"\nprovider = "ollama"\nmodel = "m"\nmax_tokens = "lots"\n',
        ["max_tokens must be an integer"],
    ),
    "unknown key": (
        '[[models]]\nname = "a"\nprovider = "ollama"\nmodel = "m"\nbase_ulr = "x"\n',
        ["unknown key 'base_ulr'", "did you mean 'base_url'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
@pytest.mark.parametrize("command", [["ask", "hi"], ["models"]])
def test_config_errors_exit_2_with_one_clear_message(
    case: str, command: list[str], write_config: ConfigWriter
) -> None:
    text, expected = BAD_CONFIGS[case]
    path = write_config(text)

    result = quorum("--config", str(path), *command)

    assert result.returncode == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("quorum: ") and str(path) in message
    assert len(message.splitlines()) == 1
    for fragment in expected:
        assert fragment in message


def test_config_from_environment_variable_and_missing_file(
    write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QUORUM_CONFIG", str(write_config('[[models]]\nname = "a"\n')))
    result = quorum("models")
    assert result.returncode == 2
    assert "missing required key 'provider'" in result.stderr

    result = quorum("--config", str(tmp_path / "absent.toml"), "models")
    assert result.returncode == 2
    assert "config file not found" in result.stderr


# --- quorum models -----------------------------------------------------------------------------
def test_models_lists_every_model_with_key_status(
    loopback: LoopbackServer, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUORUM_TEST_UNSET_KEY", raising=False)
    inline = model(loopback, "anthropic", "inline", api_key=SECRET)
    del inline["api_key_env"]
    config = write_config(
        models=[
            model(loopback, "openai", "gpt"),
            model(loopback, "gemini", "gem", api_key_env="QUORUM_TEST_UNSET_KEY"),
            model(loopback, "ollama", "llama", enabled=False),
            inline,
        ]
    )

    text = quorum("--config", str(config), "models")
    listing = quorum("--config", str(config), "models", "--json")

    assert text.returncode == listing.returncode == 0
    rows = {line.split()[0]: line for line in text.stdout.splitlines()[1:]}
    assert "key set" in rows["gpt"] and "needs $QUORUM_TEST_UNSET_KEY" in rows["gem"]
    assert " no " in rows["llama"] and "no key needed" in rows["llama"]
    assert "key set" in rows["inline"]
    data = json.loads(listing.stdout)
    assert data["config"] == str(config)
    assert [m["name"] for m in data["models"]] == ["gpt", "gem", "llama", "inline"]
    gem = data["models"][1]
    assert gem == {
        "name": "gem",
        "provider": "gemini",
        "model": "gem",
        "base_url": loopback.url,
        "enabled": True,
        "key": "needs $QUORUM_TEST_UNSET_KEY",
    }
    assert loopback.requests == []  # listing never touches the network


def model_lists(routes: Mapping[str, Reply]) -> Callable[[Any], Reply]:
    def handler(request: Any) -> Reply:
        return routes.get(request.path) or error_reply(404, {"error": "no such route"})

    return handler


def test_models_check_probes_every_endpoint(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    config = write_config(
        models=[
            model(loopback, "openai", "gpt"),
            model(loopback, "anthropic", "claude", base_url=f"{loopback.url}/anthropic"),
            model(loopback, "gemini", "gem"),
            model(loopback, "ollama", "llama"),
            model(loopback, "ollama", "off", enabled=False),
        ]
    )
    loopback.fallback = model_lists(
        {
            "/v1/models": error_reply(200, {"data": [{"id": "gpt"}]}),
            "/anthropic/v1/models": error_reply(200, {"data": [{"id": "claude"}]}),
            "/v1beta/models": error_reply(200, {"models": [{"name": "models/gem"}]}),
            "/api/tags": error_reply(200, {"models": [{"name": "llama:latest"}]}),
        }
    )

    result = quorum("--config", str(config), "models", "--check", "--json")

    assert result.returncode == 0, result.stdout
    checks = {m["name"]: m["check"] for m in json.loads(result.stdout)["models"]}
    for name in ("gpt", "claude", "gem", "llama"):
        assert checks[name]["ok"] is True, checks[name]
        assert checks[name]["status"] == 200
        assert checks[name]["latency_ms"] >= 0
    assert checks["off"] == {
        "ok": False,
        "state": "skipped",
        "status": None,
        "detail": "disabled",
        "latency_ms": None,
    }
    seen = {r.path: r for r in loopback.requests}
    assert set(seen) == {"/v1/models", "/anthropic/v1/models", "/v1beta/models", "/api/tags"}
    assert all(r.method == "GET" for r in loopback.requests)
    assert seen["/v1/models"].headers["authorization"] == f"Bearer {SECRET}"
    assert seen["/anthropic/v1/models"].headers["x-api-key"] == SECRET
    assert seen["/anthropic/v1/models"].headers["anthropic-version"] == "2023-06-01"
    assert seen["/v1beta/models"].headers["x-goog-api-key"] == SECRET
    assert "authorization" not in seen["/api/tags"].headers


def test_models_check_reports_failures_and_exits_1(
    loopback: LoopbackServer, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUORUM_TEST_UNSET_KEY", raising=False)
    echo = {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "auth"}}
    loopback.fallback = model_lists(
        {
            "/v1/models": error_reply(401, echo),
            "/api/tags": error_reply(200, {"models": []}),
        }
    )
    port = closed_port()
    config = write_config(
        models=[
            model(loopback, "openai", "gpt"),
            model(loopback, "ollama", "llama"),
            model(loopback, "ollama", "gone", base_url=f"http://127.0.0.1:{port}"),
            model(loopback, "gemini", "gem", api_key_env="QUORUM_TEST_UNSET_KEY"),
            {"name": "tiny", "provider": "local", "model": "/nonexistent/tiny.gguf"},
            {"name": "smol", "provider": "local", "model": "smollm2-135m"},
        ]
    )

    result = quorum("--config", str(config), "models", "--check")

    assert result.returncode == 1
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "HTTP 401: auth: Incorrect API key provided: [redacted]" in rows["gpt"]
    assert " ms " in rows["gpt"] and " ok" in rows["llama"]
    assert f"unreachable: cannot reach 127.0.0.1:{port}" in rows["gone"]
    assert "needs $QUORUM_TEST_UNSET_KEY" in rows["gem"]
    assert "/nonexistent/tiny.gguf" in rows["tiny"]
    assert "ok (" in rows["smol"] and ".gguf" in rows["smol"]  # the bundled GGUF resolves
    assert result.stdout.splitlines()[-1] == "2 reachable, 3 failed, 1 not checked"
    assert loopback.requests_for("gem") == []


def test_a_reader_that_goes_away_stops_quorum_quietly(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("long", openai_stream(["line\n"] * 2000, interval=0.001))
    config = write_config(models=[model(loopback, "openai", "long")])

    with subprocess.Popen(
        [*QUORUM, "ask", "--config", str(config), "--jsonl", "hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QUORUM_TEST_CLI_KEY": SECRET},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        returncode = proc.wait(timeout=60)
        stderr = proc.stderr.read()

    assert json.loads(first)["type"] == "fanout_started"
    assert returncode == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
