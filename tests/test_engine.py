"""The fan-out engine against a real HTTP server: the four wire formats end to end, the event
stream's order and stats, timeouts, cancellation and truncated streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from core.config import ModelSpec
from core.engine import FanOut
from core.events import (
    Cancelled,
    Event,
    Failed,
    FailureKind,
    FanoutFinished,
    FanoutStarted,
    Finished,
    FirstToken,
    ReasoningDelta,
    Started,
    TextDelta,
    UsageReported,
)
from core.providers.base import Message
from tests.conftest import TEST_KEY, loopback_spec, run_fanout
from tests.loopback import (
    LoopbackServer,
    Reply,
    anthropic_stream,
    error_reply,
    gemini_stream,
    ollama_stream,
    openai_stream,
)

pytestmark = pytest.mark.anyio
Spec = Callable[..., ModelSpec]


async def wait_for_server(server: LoopbackServer, predicate: Callable[[LoopbackServer], bool]):
    assert await anyio.to_thread.run_sync(server.wait_for, predicate), "server never saw it"


# --- the four wire formats, end to end ---------------------------------------------------------
async def test_openai_request_shape_text_reasoning_usage_and_finish(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script(
        "gpt-t", openai_stream(["Hel", "lo!"], reasoning=["Let me ", "think."], usage=(11, 3))
    )
    model = spec("openai", "gpt-t", system="Be brief.", temperature=0.3, max_tokens=64)

    run = await run_fanout([model], "Say hello")

    (request,) = loopback.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    body = request.json
    assert body["model"] == "gpt-t"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert (body["temperature"], body["max_tokens"]) == (0.3, 64)

    answer = run.result.responses["gpt-t"]
    assert answer.ok
    assert answer.text == "Hello!"
    assert answer.reasoning == "Let me think."
    finished = run.terminal("gpt-t")
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "stop"
    assert (finished.stats.tokens_in, finished.stats.tokens_out) == (11, 3)
    assert finished.stats.attempts == 1
    assert run.types("gpt-t", UsageReported)[-1] == UsageReported("gpt-t", 11, 3)


async def test_anthropic_request_shape_thinking_kept_apart(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("claude-t", anthropic_stream(["Bon", "jour"], thinking=["Hmm, ", "French."]))
    model = spec("anthropic", "claude-t", system="Answer in French.", temperature=0.5)

    run = await run_fanout([model], "Say hello")

    (request,) = loopback.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == TEST_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = request.json
    assert body["system"] == "Answer in French."
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["stream"] is True
    assert body["max_tokens"] > 0  # the Messages API rejects requests without it

    answer = run.result.responses["claude-t"]
    assert (answer.text, answer.reasoning) == ("Bonjour", "Hmm, French.")
    finished = run.terminal("claude-t")
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "end_turn"
    assert (finished.stats.tokens_in, finished.stats.tokens_out) == (7, 2)


async def test_gemini_request_shape_thoughts_kept_apart(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("gem-t", gemini_stream(["Hi ", "there"], thoughts=["Greeting."]))
    model = spec("gemini", "gem-t", system="Be kind.", max_tokens=32)

    run = await run_fanout([model], "Say hello")

    (request,) = loopback.requests
    assert request.method == "POST"
    assert request.path == "/v1beta/models/gem-t:streamGenerateContent?alt=sse"
    assert request.headers["x-goog-api-key"] == TEST_KEY
    assert "key=" not in request.path  # the key never travels in the URL
    body = request.json
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "Be kind."}]}
    assert body["generationConfig"]["maxOutputTokens"] == 32

    answer = run.result.responses["gem-t"]
    assert (answer.text, answer.reasoning) == ("Hi there", "Greeting.")
    finished = run.terminal("gem-t")
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "STOP"
    assert (finished.stats.tokens_in, finished.stats.tokens_out) == (4, 2)


async def test_ollama_request_shape_ndjson(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("llama-t", ollama_stream(["Hey", " you"]))
    model = spec("ollama", "llama-t", temperature=0.1, max_tokens=20)

    run = await run_fanout([model], "Say hello")

    (request,) = loopback.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert "authorization" not in request.headers  # no key configured, none sent
    body = request.json
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["stream"] is True
    assert body["options"] == {"temperature": 0.1, "num_predict": 20}

    answer = run.result.responses["llama-t"]
    assert answer.text == "Hey you"
    finished = run.terminal("llama-t")
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "stop"
    assert (finished.stats.tokens_in, finished.stats.tokens_out) == (9, 2)


async def test_event_stream_order_for_every_model(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("o", openai_stream(["a", "b"], interval=0.01))
    loopback.script("c", anthropic_stream(["c", "d"], interval=0.01))
    loopback.script("g", gemini_stream(["e", "f"], interval=0.01))
    loopback.script("l", ollama_stream(["g", "h"], interval=0.01))
    models = [spec("openai", "o"), spec("anthropic", "c"), spec("gemini", "g"), spec("ollama", "l")]

    run = await run_fanout(models, "q")

    assert run.events[0] == FanoutStarted("q", ("o", "c", "g", "l"))
    assert isinstance(run.events[-1], FanoutFinished)
    assert run.events[-1].wall_ms > 0
    for model in models:
        events = run.of(model.name)
        assert events[0] == Started(model.name, model.provider, 1)
        types = _event_types(events)
        assert types.count(FirstToken) == 1
        assert types.index(FirstToken) < types.index(TextDelta)
        assert isinstance(events[-1], Finished)
        stats = events[-1].stats
        assert stats.ttft_ms is not None and stats.total_ms is not None
        assert stats.ttft_ms <= stats.total_ms
        assert stats.tokens_out == 2
        assert stats.tokens_per_s is not None and stats.tokens_per_s > 0
        assert stats.attempts == 1
    assert run.result.any_ok


async def test_tokens_out_counted_when_the_server_reports_no_usage(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("nousage", openai_stream(["one", " two", " three"], usage=None))

    run = await run_fanout([spec("openai", "nousage")])

    finished = run.terminal("nousage")
    assert isinstance(finished, Finished)
    assert finished.stats.tokens_in is None
    assert finished.stats.tokens_out == 3


async def test_each_model_gets_its_own_conversation(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("m1", openai_stream(["x"]))
    loopback.script("m2", ollama_stream(["y"]))
    history = {"m1": [Message("user", "earlier"), Message("assistant", "earlier answer")]}

    await run_fanout([spec("openai", "m1"), spec("ollama", "m2")], "now", conversations=history)

    (first,) = loopback.requests_for("m1")
    assert [m["content"] for m in first.json["messages"]] == ["earlier", "earlier answer", "now"]
    (second,) = loopback.requests_for("m2")
    assert [m["content"] for m in second.json["messages"]] == ["now"]


async def test_one_failing_model_does_not_disturb_the_others(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("bad", error_reply(400, {"error": {"message": "model is broken"}}))
    loopback.script("bad2", Reply(parts=[(0, b"data: {not json\n\n")]))
    loopback.script("good", openai_stream(["fine"], interval=0.01))

    run = await run_fanout([spec("openai", "bad"), spec("openai", "bad2"), spec("openai", "good")])

    assert isinstance(run.terminal("bad"), Failed)
    protocol = run.terminal("bad2")
    assert isinstance(protocol, Failed) and protocol.kind is FailureKind.PROTOCOL
    assert run.result.responses["good"].text == "fine"
    assert isinstance(run.terminal("good"), Finished)


async def test_unknown_provider_fails_only_that_model(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("ok", openai_stream(["fine"]))
    odd = ModelSpec(name="odd", provider="carrier-pigeon", model="x")

    run = await run_fanout([odd, spec("openai", "ok")])

    failed = run.terminal("odd")
    assert isinstance(failed, Failed) and failed.kind is FailureKind.CONFIG
    assert "carrier-pigeon" in failed.message
    assert run.result.responses["ok"].ok


# --- timeouts ------------------------------------------------------------------------------
async def test_first_token_timeout(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("sleepy", openai_stream(["late"], first_delay=5))
    loopback.script("quick", openai_stream(["on time"]))
    model = spec("openai", "sleepy", first_token_timeout_s=0.2, idle_timeout_s=0.1)

    run = await run_fanout([model, spec("openai", "quick")])

    failed = run.terminal("sleepy")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.TIMEOUT
    assert "first token" in failed.message and "0.2 s" in failed.message
    assert failed.stats.attempts == 1  # a timeout is not retried
    assert run.result.responses["quick"].text == "on time"


def stall_after(reply: Reply, parts: int, seconds: float) -> Reply:
    """``reply`` sent at once up to part ``parts``, then a stall before the rest."""
    timed = [(seconds if i == parts else 0.0, data) for i, (_, data) in enumerate(reply.parts)]
    return Reply(reply.status, reply.headers, timed, reply.drop, reply.content_type)


async def test_idle_timeout_keeps_partial_text(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("staller", stall_after(openai_stream(["first ", "second"]), 2, 5))
    model = spec("openai", "staller", idle_timeout_s=0.2)

    run = await run_fanout([model])

    failed = run.terminal("staller")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.TIMEOUT
    assert "idle" in failed.message and "0.2 s" in failed.message
    assert run.result.responses["staller"].text == "first "
    assert failed.stats.ttft_ms is not None


async def test_total_timeout_on_a_stream_that_never_ends(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("chatty", openai_stream(["tok "] * 400, interval=0.02))
    model = spec("openai", "chatty", timeout_s=0.3, idle_timeout_s=5, first_token_timeout_s=5)

    run = await run_fanout([model])

    failed = run.terminal("chatty")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.TIMEOUT
    assert "total timeout" in failed.message and "0.3 s" in failed.message
    assert run.result.responses["chatty"].text.startswith("tok ")


async def test_slow_first_token_is_not_cut_by_the_shorter_idle_timeout(
    loopback: LoopbackServer, spec: Spec
) -> None:
    """Waiting for the first token is governed by the first-token timeout alone."""
    loopback.script("thinker", openai_stream(["worth the wait"], first_delay=0.4))
    model = spec("openai", "thinker", first_token_timeout_s=10, idle_timeout_s=0.1)

    run = await run_fanout([model])

    assert run.result.responses["thinker"].text == "worth the wait"


# --- cancellation --------------------------------------------------------------------------
def cancel_when(model: str, target: str | None) -> Callable[[FanOut, Event], bool]:
    """Cancel ``target`` (None: all) once ``model`` has streamed its first text."""
    done = False

    def react(fanout: FanOut, event: Event) -> bool:
        nonlocal done
        if not done and isinstance(event, TextDelta) and event.model == model:
            done = True
            fanout.cancel(target)
        return False

    return react


async def test_cancel_one_model_closes_its_connection_others_finish(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("endless", openai_stream(["more "] * 500, interval=0.02))
    loopback.script("steady", anthropic_stream(["a", "b", "c"], interval=0.05))

    run = await run_fanout(
        [spec("openai", "endless"), spec("anthropic", "steady")],
        react=cancel_when("endless", "endless"),
    )

    cancelled = run.terminal("endless")
    assert isinstance(cancelled, Cancelled)
    assert run.result.responses["endless"].text.startswith("more ")  # partial text kept
    assert run.result.responses["endless"].state == "cancelled"
    assert isinstance(run.terminal("steady"), Finished)
    assert run.result.responses["steady"].text == "abc"
    assert isinstance(run.events[-1], FanoutFinished)
    await wait_for_server(loopback, lambda s: s.closed_by_client == 1 and s.open_streams == 0)


async def test_cancel_all_closes_every_connection(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("e1", openai_stream(["x "] * 500, interval=0.02))
    loopback.script("e2", gemini_stream(["y "] * 500, interval=0.02))
    loopback.script("e3", ollama_stream(["z "] * 500, interval=0.02))
    started: set[str] = set()

    def react(fanout: FanOut, event: Event) -> bool:
        if isinstance(event, FirstToken):
            started.add(event.model)
            if len(started) == 3:
                fanout.cancel()
        return False

    run = await run_fanout(
        [spec("openai", "e1"), spec("gemini", "e2"), spec("ollama", "e3")], react=react
    )

    for name in ("e1", "e2", "e3"):
        assert isinstance(run.terminal(name), Cancelled)
    assert not run.result.any_ok
    await wait_for_server(loopback, lambda s: s.closed_by_client == 3 and s.open_streams == 0)


async def test_consumer_leaving_early_stops_every_model(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("e1", openai_stream(["x "] * 500, interval=0.02))
    loopback.script("e2", anthropic_stream(["y "] * 500, interval=0.02))

    def leave(fanout: FanOut, event: Event) -> bool:
        return isinstance(event, TextDelta)

    await run_fanout([spec("openai", "e1"), spec("anthropic", "e2")], react=leave)

    await wait_for_server(loopback, lambda s: s.open_streams == 0)


async def test_cancel_before_the_first_token(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("late", openai_stream(["never seen"], first_delay=5))
    loopback.script("now", openai_stream(["seen"]))

    run = await run_fanout(
        [spec("openai", "late"), spec("openai", "now")], react=cancel_when("now", "late")
    )

    cancelled = run.terminal("late")
    assert isinstance(cancelled, Cancelled)
    assert cancelled.stats.ttft_ms is None
    assert run.result.responses["late"].text == ""
    assert run.result.responses["now"].ok


# --- truncated streams ---------------------------------------------------------------------
TRUNCATED_STREAMS: dict[str, tuple[str, Callable[[], Reply], str]] = {
    "openai-no-done": ("openai", lambda: openai_stream(["part", "ial"], done=False), "[DONE]"),
    "openai-no-finish": (
        "openai",
        lambda: openai_stream(["part", "ial"], finish="", usage=None, done=False),
        "finish reason",
    ),
    "openai-drop": ("openai", lambda: openai_stream(["part", "ial"], done=False, drop=True), ""),
    "anthropic-no-stop": (
        "anthropic",
        lambda: anthropic_stream(["part", "ial"], stop=False),
        "message_stop",
    ),
    "anthropic-drop": (
        "anthropic",
        lambda: anthropic_stream(["part", "ial"], stop=False, drop=True),
        "",
    ),
    "gemini-no-finish": (
        "gemini",
        lambda: gemini_stream(["part", "ial"], finish=False),
        "finishReason",
    ),
    "gemini-drop": ("gemini", lambda: gemini_stream(["part", "ial"], finish=False, drop=True), ""),
    "ollama-no-done": ("ollama", lambda: ollama_stream(["part", "ial"], done=False), "done"),
}


@pytest.mark.parametrize("case", list(TRUNCATED_STREAMS))
async def test_truncated_stream_fails_and_keeps_partial_text(
    case: str, loopback: LoopbackServer, spec: Spec
) -> None:
    provider, reply, mentions = TRUNCATED_STREAMS[case]
    loopback.script("cut", reply())

    run = await run_fanout([spec(provider, "cut")])

    failed = run.terminal("cut")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.TRUNCATED
    assert mentions in failed.message
    assert failed.stats.attempts == 1  # text was shown: never retried
    assert run.result.responses["cut"].text == "partial"
    assert run.result.to_json()["responses"][0]["ok"] is False


async def test_error_event_mid_stream_keeps_text_and_reports_provider_message(
    loopback: LoopbackServer, spec: Spec
) -> None:
    overloaded = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    loopback.script("claude-x", anthropic_stream(["half an "], error=overloaded))

    run = await run_fanout([spec("anthropic", "claude-x")])

    failed = run.terminal("claude-x")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.PROVIDER
    assert "Overloaded" in failed.message
    assert failed.status == 529
    assert failed.stats.attempts == 1  # retryable status, but text was already shown
    assert run.result.responses["claude-x"].text == "half an "


def _event_types(events: list[Event]) -> list[Any]:
    return [type(e) for e in events]


async def test_reasoning_only_stream_counts_as_first_token(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("r1", openai_stream([], reasoning=["deep ", "thought"]))

    run = await run_fanout([spec("openai", "r1")])

    types = _event_types(run.of("r1"))
    assert types.index(FirstToken) < types.index(ReasoningDelta)
    assert run.result.responses["r1"].reasoning == "deep thought"
    assert run.result.responses["r1"].text == ""
    assert isinstance(run.terminal("r1"), Finished)


async def test_consumer_error_comes_out_as_itself_and_stops_every_model(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("e1", openai_stream(["x "] * 500, interval=0.02))

    def explode(fanout: FanOut, event: Event) -> bool:
        if isinstance(event, TextDelta):
            raise BrokenPipeError("reader went away")
        return False

    with pytest.raises(BrokenPipeError, match="reader went away"):
        await run_fanout([spec("openai", "e1")], react=explode)

    await wait_for_server(loopback, lambda s: s.closed_by_client == 1 and s.open_streams == 0)


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "ollama"])
async def test_consecutive_questions_reuse_one_connection(
    loopback: LoopbackServer, provider: str
) -> None:
    """Each question's stream is read to its end, so its connection serves the next question:
    no new TCP (and, against a real API, TLS) handshake per model per question."""
    from core.providers import ProviderSet, make_client

    builders = {
        "openai": openai_stream,
        "anthropic": anthropic_stream,
        "gemini": gemini_stream,
        "ollama": ollama_stream,
    }
    loopback.script("m", [builders[provider](["Hello ", "again."]) for _ in range(5)])
    spec = loopback_spec(loopback, provider, "m")
    async with make_client(1) as client:
        providers = ProviderSet(client)
        for _ in range(5):
            async with FanOut([spec], providers, "hi").run() as events:
                finished = [e async for e in events if isinstance(e, Finished)]
            assert [e.model for e in finished] == ["m"]
    assert len(loopback.requests_for("m")) == 5
    assert loopback.connections == 1
