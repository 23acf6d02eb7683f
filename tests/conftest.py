"""Shared fixtures: the anyio backend, a loopback provider server, isolated user directories, a
config-file writer, model specs pointed at the loopback server and a fan-out runner."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from core.config import ModelSpec
from core.engine import FanOut, RetryPolicy
from core.events import Event, TerminalEvent
from core.providers import ProviderSet, make_client
from core.results import FanoutResult
from tests.loopback import LoopbackServer

ConfigWriter = Callable[..., Path]
TEST_KEY = "sk-test-0123456789abcdef"  # what keyed loopback specs send
FAST_RETRY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own config and data directories: no test reads or writes the real
    home's Quorum config, history or vector store."""
    root = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "state"))
    monkeypatch.setenv("QUORUM_HOME", str(root / "quorum"))
    monkeypatch.delenv("QUORUM_CONFIG", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback traffic never via a proxy
    return root


def closed_port() -> int:
    """A local port nothing listens on (connecting to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """``write_config(models=[{...}], ui={...})`` or ``write_config("raw toml")`` → the path.

    Models are ``[[models]]`` tables; further keyword arguments become top-level tables.
    """

    def write(
        content: str | None = None,
        *,
        models: Sequence[Mapping[str, Any]] = (),
        name: str = "config.toml",
        **tables: Mapping[str, Any],
    ) -> Path:
        path = tmp_path / name
        if content is None:
            data: dict[str, Any] = {k: dict(v) for k, v in tables.items()}
            data["models"] = [dict(m) for m in models]
            content = tomli_w.dumps(data)
        path.write_text(content, encoding="utf-8")
        path.chmod(0o600)  # test configs hold literal keys: readable by others, quorum warns
        return path

    return write


def loopback_spec(server: LoopbackServer, provider: str, model: str, **overrides: Any) -> ModelSpec:
    """A model of ``provider`` served by ``server``; its name is the model id unless given."""
    base_url = f"{server.url}/v1" if provider == "openai" else server.url
    values: dict[str, Any] = {
        "name": model,
        "provider": provider,
        "model": model,
        "base_url": base_url,
        "api_key": TEST_KEY if provider != "ollama" else None,
        "timeout_s": 20.0,
        "connect_timeout_s": 5.0,
        "first_token_timeout_s": 10.0,
        "idle_timeout_s": 10.0,
        "max_retries": 2,
    }
    values.update(overrides)
    return ModelSpec(**values)


@pytest.fixture
def spec(loopback: LoopbackServer) -> Callable[..., ModelSpec]:
    """``spec("openai", "gpt-x", temperature=0.2)`` → a ModelSpec aimed at the loopback server."""

    def make(provider: str, model: str, **overrides: Any) -> ModelSpec:
        return loopback_spec(loopback, provider, model, **overrides)

    return make


@dataclass
class FanoutRun:
    events: list[Event]
    result: FanoutResult

    def of(self, model: str) -> list[Event]:
        return [e for e in self.events if getattr(e, "model", None) == model]

    def terminal(self, model: str) -> TerminalEvent:
        (last,) = [e for e in self.of(model) if isinstance(e, TerminalEvent)]
        return last

    def types(self, model: str, kind: type[Any]) -> list[Any]:
        return [e for e in self.of(model) if isinstance(e, kind)]


Reaction = Callable[[FanOut, Event], Any]


async def run_fanout(
    specs: Sequence[ModelSpec],
    query: str = "What is 2+2?",
    *,
    retry: RetryPolicy = FAST_RETRY,
    react: Reaction | None = None,
    **kwargs: Any,
) -> FanoutRun:
    """Run one fan-out over a real client; ``react(fanout, event)`` sees each event as it comes
    (to cancel mid-stream); returning True from it stops reading (the consumer leaves early)."""
    events: list[Event] = []
    result = FanoutResult()
    async with make_client(len(specs)) as client:
        providers = ProviderSet(client)
        fanout = FanOut(specs, providers, query, retry=retry, **kwargs)
        async with fanout.run() as stream:
            async for event in stream:
                events.append(event)
                result.apply(event)
                if react is not None and react(fanout, event):
                    break
        await providers.aclose()
    return FanoutRun(events, result)
