"""The ``openai`` provider against a real third-party server: llama-cpp-python's own
OpenAI-compatible server (``python -m llama_cpp.server``) serving the bundled SmolLM2 GGUF."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import ModelSpec
from core.events import Failed, FailureKind, Finished, TextDelta, UsageReported
from core.providers.local import resolve_model_path
from tests.conftest import run_fanout

SERVER_KEY = "sk-llama-server-test-0123456789"
ALIAS = "smollm2"
READY_WITHIN_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll GET /v1/models until the server answers 200 (bounded; fails fast if it exits)."""
    deadline = time.monotonic() + READY_WITHIN_S
    headers = {"Authorization": f"Bearer {SERVER_KEY}"}
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = log.read_text()
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{output}")
            try:
                if client.get(f"{url}/models", headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # poll interval, not synchronisation: readiness is the 200 above
    pytest.fail(f"llama_cpp.server not ready within {READY_WITHIN_S:g} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's OpenAI base URL. ``interrupt_requests`` is off: by default a new request
    ends the stream in progress, which would cut off all but one concurrent council member."""
    root = tmp_path_factory.mktemp("llama_server")
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "api_key": SERVER_KEY,
        "interrupt_requests": False,
        "models": [
            {
                "model": str(resolve_model_path("smollm2-135m")),
                "model_alias": ALIAS,
                "n_ctx": 2048,
                "n_threads": 1,
                "verbose": False,
            }
        ],
    }
    config_file = root / "server.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    log = root / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config_file)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_spec(base_url: str, name: str, **overrides: object) -> ModelSpec:
    values: dict[str, object] = {
        "name": name,
        "provider": "openai",
        "model": ALIAS,
        "base_url": base_url,
        "api_key": SERVER_KEY,
        "system": "Answer in one short sentence.",
        "temperature": 0.0,
        "seed": 1,
        "max_tokens": 24,
        "max_retries": 0,
    }
    values.update(overrides)
    return ModelSpec(**values)  # type: ignore[arg-type]


@pytest.mark.local_model
@pytest.mark.anyio
async def test_two_concurrent_members_both_finish_with_counted_tokens(llama_server: str) -> None:
    specs = [
        server_spec(llama_server, "first"),
        server_spec(llama_server, "second", temperature=0.7, seed=2),
    ]
    run = await run_fanout(specs, "What is the capital of France?")
    for name in ("first", "second"):
        finished = run.terminal(name)
        assert isinstance(finished, Finished), finished
        assert finished.finish_reason in {"stop", "length"}
        assert run.result.responses[name].text.strip()
        # The server's streams carry no usage, so Quorum counts the tokens itself.
        assert not run.types(name, UsageReported)
        assert finished.stats.tokens_out == len(run.types(name, TextDelta)) > 0
        assert finished.stats.tokens_in is None


@pytest.mark.local_model
@pytest.mark.anyio
async def test_a_wrong_key_is_that_members_http_error(llama_server: str) -> None:
    wrong = "sk-wrong-key-9876543210"
    run = await run_fanout([server_spec(llama_server, "intruder", api_key=wrong)])
    failed = run.terminal("intruder")
    assert isinstance(failed, Failed)
    assert (failed.kind, failed.status) == (FailureKind.HTTP, 401)
    assert wrong not in failed.message
