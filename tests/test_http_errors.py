"""Provider errors end to end: retries and their hints, the provider's own message and status,
unreachable hosts, missing keys and keys echoed back in errors."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from core.config import ModelSpec
from core.engine import RetryPolicy
from core.errors import (
    ProviderError,
    describe_error_body,
    error_from_response,
    gemini_retry_delay,
    retry_after_from_headers,
)
from core.events import Failed, FailureKind, Finished, Retrying
from tests.conftest import FAST_RETRY, TEST_KEY, closed_port, run_fanout
from tests.loopback import (
    LoopbackServer,
    Reply,
    anthropic_stream,
    error_reply,
    gemini_stream,
    ollama_stream,
    openai_stream,
    sse,
)

pytestmark = pytest.mark.anyio
Spec = Callable[..., ModelSpec]

OPENAI_RATE_LIMIT = {
    "error": {
        "message": "Rate limit reached for requests",
        "type": "requests",
        "code": "rate_limit_exceeded",
    }
}
GEMINI_EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.04s"},
        ],
    }
}


# --- retries -------------------------------------------------------------------------------
async def test_429_honours_retry_after_ms_then_succeeds(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script(
        "rl",
        [
            error_reply(429, OPENAI_RATE_LIMIT, {"retry-after-ms": "30", "retry-after": "20"}),
            openai_stream(["after the wait"]),
        ],
    )

    run = await run_fanout([spec("openai", "rl")])

    (retrying,) = run.types("rl", Retrying)
    assert retrying.attempt == 2
    assert retrying.delay_s == pytest.approx(0.03)
    assert "429" in retrying.reason and "Rate limit reached" in retrying.reason
    finished = run.terminal("rl")
    assert isinstance(finished, Finished)
    assert finished.stats.attempts == 2
    assert run.result.responses["rl"].text == "after the wait"
    assert len(loopback.requests_for("rl")) == 2


async def test_503_honours_retry_after_seconds_even_zero(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script(
        "busy",
        [
            error_reply(503, {"error": "server busy"}, {"retry-after": "0"}),
            ollama_stream(["ok"]),
        ],
    )

    run = await run_fanout([spec("ollama", "busy")], retry=RetryPolicy(base_delay_s=0.05))

    (retrying,) = run.types("busy", Retrying)
    assert retrying.delay_s == 0
    assert "server busy" in retrying.reason
    assert run.result.responses["busy"].ok


async def test_gemini_retry_info_delay_is_honoured(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("gem-rl", [error_reply(429, GEMINI_EXHAUSTED), gemini_stream(["fine"])])

    run = await run_fanout([spec("gemini", "gem-rl")])

    (retrying,) = run.types("gem-rl", Retrying)
    assert retrying.delay_s == pytest.approx(0.04)
    assert "RESOURCE_EXHAUSTED" in retrying.reason
    assert run.result.responses["gem-rl"].text == "fine"


async def test_absurd_server_delay_is_capped(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script(
        "slowpoke",
        [error_reply(429, OPENAI_RATE_LIMIT, {"retry-after": "86400"}), openai_stream(["ok"])],
    )

    run = await run_fanout([spec("openai", "slowpoke", timeout_s=600)])

    (retrying,) = run.types("slowpoke", Retrying)
    assert retrying.delay_s <= FAST_RETRY.max_delay_s
    assert run.result.responses["slowpoke"].ok


async def test_no_retry_that_cannot_finish_within_the_total_timeout(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("later", error_reply(429, OPENAI_RATE_LIMIT, {"retry-after": "30"}))

    run = await run_fanout([spec("openai", "later", timeout_s=2)])

    failed = run.terminal("later")
    assert isinstance(failed, Failed)
    assert (failed.kind, failed.status) == (FailureKind.HTTP, 429)
    assert "Rate limit reached" in failed.message
    assert not run.types("later", Retrying)


async def test_x_should_retry_false_wins(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script(
        "nope", error_reply(503, {"error": {"message": "down"}}, {"x-should-retry": "false"})
    )

    run = await run_fanout([spec("openai", "nope")])

    failed = run.terminal("nope")
    assert isinstance(failed, Failed) and failed.status == 503
    assert failed.stats.attempts == 1
    assert len(loopback.requests_for("nope")) == 1


async def test_x_should_retry_true_retries_a_400(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script(
        "yes",
        [
            error_reply(400, {"error": {"message": "try again"}}, {"x-should-retry": "true"}),
            openai_stream(["ok"]),
        ],
    )

    run = await run_fanout([spec("openai", "yes")])

    assert run.result.responses["yes"].ok
    assert len(loopback.requests_for("yes")) == 2


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
async def test_transient_statuses_are_retried(
    status: int, loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script(
        "flaky",
        [
            error_reply(status, {"type": "error", "error": {"type": "x", "message": "transient"}}),
            anthropic_stream(["recovered"]),
        ],
    )

    run = await run_fanout([spec("anthropic", "flaky")])

    assert run.result.responses["flaky"].text == "recovered"
    assert [r.attempt for r in run.types("flaky", Retrying)] == [2]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(
    status: int, loopback: LoopbackServer, spec: Spec
) -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad field"}}
    loopback.script("strict", [error_reply(status, body), anthropic_stream(["unreachable"])])

    run = await run_fanout([spec("anthropic", "strict")])

    failed = run.terminal("strict")
    assert isinstance(failed, Failed)
    assert (failed.kind, failed.status) == (FailureKind.HTTP, status)
    assert "bad field" in failed.message
    assert not run.types("strict", Retrying)
    assert len(loopback.requests_for("strict")) == 1
    assert run.result.responses["strict"].error_text == f"HTTP {status}: {failed.message}"


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_max_retries_is_respected(
    max_retries: int, loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("down", error_reply(503, {"error": {"message": "still down"}}))

    run = await run_fanout([spec("openai", "down", max_retries=max_retries)])

    assert [r.attempt for r in run.types("down", Retrying)] == list(range(2, max_retries + 2))
    failed = run.terminal("down")
    assert isinstance(failed, Failed)
    assert failed.stats.attempts == max_retries + 1
    assert "still down" in failed.message
    assert len(loopback.requests_for("down")) == max_retries + 1


async def test_no_retry_once_text_was_shown(loopback: LoopbackServer, spec: Spec) -> None:
    shown = openai_stream(["visible"], done=False, finish="", usage=None)
    broken = sse({"error": {"message": "upstream overloaded", "code": 503}})
    loopback.script("midway", Reply(parts=[*shown.parts, (0, broken)]))

    run = await run_fanout([spec("openai", "midway")])

    failed = run.terminal("midway")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.PROVIDER
    assert "upstream overloaded" in failed.message
    assert failed.stats.attempts == 1
    assert run.result.responses["midway"].text == "visible"
    assert len(loopback.requests_for("midway")) == 1


async def test_error_inside_a_200_stream_before_any_text_is_retried(
    loopback: LoopbackServer, spec: Spec
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    unavailable = sse(
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    )
    loopback.script("claude-o", [anthropic_stream([], error=overloaded), anthropic_stream(["ok"])])
    loopback.script("gem-o", [Reply(parts=[(0, unavailable)]), gemini_stream(["ok"])])

    run = await run_fanout([spec("anthropic", "claude-o"), spec("gemini", "gem-o")])

    for name, reason in [("claude-o", "Overloaded"), ("gem-o", "The model is overloaded.")]:
        (retrying,) = run.types(name, Retrying)
        assert reason in retrying.reason
        assert run.result.responses[name].text == "ok"


def test_retry_policy_backoff_grows_with_jitter_and_respects_caps() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0, max_server_delay_s=60.0)
    rng = random.Random(7)
    for retry_number, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        delays = {policy.delay(retry_number, None, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, so many clients do not retry in lockstep
    assert policy.delay(1, 12.5, rng) == 12.5
    assert policy.delay(1, 0.0, rng) == 0.0
    assert policy.delay(1, 3600.0, rng) <= 0.5


# --- retry hints as units ----------------------------------------------------------------------
def test_retry_after_header_forms() -> None:
    assert retry_after_from_headers({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_from_headers({"retry-after": "7"}) == 7.0
    assert retry_after_from_headers({"retry-after": "0"}) == 0.0
    assert retry_after_from_headers({"retry-after": "-3"}) is None
    assert retry_after_from_headers({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0
    assert retry_after_from_headers({"retry-after": "whenever"}) is None
    assert retry_after_from_headers({}) is None


def test_retry_after_http_date() -> None:
    when = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    header = format_datetime(when, usegmt=True)  # "Sun, 01 Mar 2026 12:00:30 GMT"
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_from_headers({"retry-after": header}, now=now) == pytest.approx(30)
    assert retry_after_from_headers({"retry-after": header}, now=now + 90) == 0.0
    assert retry_after_from_headers({"retry-after": "Sun, 99 Foo 2026 12:00:30 GMT"}) is None


def test_gemini_retry_delay_parsing() -> None:
    assert gemini_retry_delay(GEMINI_EXHAUSTED) == pytest.approx(0.04)
    detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}
    assert gemini_retry_delay({"error": {"details": [detail]}}) == pytest.approx(34.4)
    assert gemini_retry_delay({"error": {"details": [{"retryDelay": "later"}]}}) is None
    assert gemini_retry_delay({"error": "plain"}) is None
    assert describe_error_body(
        b'[{"error": {"message": "m", "details": [' + (b'{"retryDelay": "2s"}]}}]')
    ) == ("m", 2.0)


def test_error_from_response_zero_retry_after_is_kept() -> None:
    error = error_from_response(503, {"retry-after": "0"}, b'{"error": "busy"}')
    assert error.retry_after_s == 0.0
    assert error.retryable


# --- the provider's own message ------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "status", "body", "expected"),
    [
        (
            "openai",
            404,
            {
                "error": {
                    "message": "The model `o` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
            "The model `o` does not exist",
        ),
        (
            "anthropic",
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": "model: c"}},
            "not_found_error: model: c",
        ),
        (
            "gemini",
            404,
            {"error": {"code": 404, "message": "models/g is not found", "status": "NOT_FOUND"}},
            "NOT_FOUND: models/g is not found",
        ),
        ("ollama", 404, {"error": "model 'l' not found"}, "model 'l' not found"),
        (
            "openai",
            502,
            b"<html><body>Bad gateway from the proxy</body></html>",
            "Bad gateway from the proxy",
        ),
        ("openai", 418, b"", "error"),
    ],
)
async def test_provider_message_and_status_are_shown(
    provider: str, status: int, body: object, expected: str, loopback: LoopbackServer, spec: Spec
) -> None:
    model = spec(provider, "m-err", max_retries=0)
    loopback.script("m-err", error_reply(status, body))

    run = await run_fanout([model])

    failed = run.terminal("m-err")
    assert isinstance(failed, Failed)
    assert (failed.kind, failed.status) == (FailureKind.HTTP, status)
    assert expected in failed.message


async def test_gemini_block_and_in_stream_errors(loopback: LoopbackServer, spec: Spec) -> None:
    blocked = sse({"promptFeedback": {"blockReason": "SAFETY"}}).replace(b"\n", b"\r\n")
    loopback.script("gem-block", Reply(parts=[(0, blocked)]))

    run = await run_fanout([spec("gemini", "gem-block")])

    failed = run.terminal("gem-block")
    assert isinstance(failed, Failed) and failed.kind is FailureKind.PROVIDER
    assert "SAFETY" in failed.message


async def test_control_sequences_in_error_messages_are_stripped(
    loopback: LoopbackServer, spec: Spec
) -> None:
    body = {"error": {"message": "bad \x1b[2J\x1b]52;c;aGk=\x07request"}}
    loopback.script("esc", error_reply(400, body))

    run = await run_fanout([spec("openai", "esc")])

    failed = run.terminal("esc")
    assert isinstance(failed, Failed)
    assert failed.message == "bad request"


# --- connection failures -------------------------------------------------------------------
async def test_unreachable_host_is_a_connect_failure_naming_the_host(
    loopback: LoopbackServer, spec: Spec
) -> None:
    port = closed_port()
    dead = spec("openai", "dead", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    loopback.script("alive", openai_stream(["still here"]))

    run = await run_fanout([dead, spec("openai", "alive")])

    failed = run.terminal("dead")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.CONNECT
    assert f"127.0.0.1:{port}" in failed.message
    assert failed.status is None
    assert failed.stats.attempts == 2  # connect errors are retried
    assert run.result.responses["alive"].text == "still here"
    assert "Traceback" not in failed.message


# --- API keys ------------------------------------------------------------------------------
async def test_missing_key_fails_that_model_only_and_names_the_variable(
    loopback: LoopbackServer, spec: Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUORUM_TEST_ABSENT_KEY", raising=False)
    monkeypatch.setenv("QUORUM_TEST_PRESENT_KEY", "sk-from-the-environment-42")
    keyless = spec("anthropic", "keyless", api_key=None, api_key_env="QUORUM_TEST_ABSENT_KEY")
    keyed = spec("openai", "keyed", api_key=None, api_key_env="QUORUM_TEST_PRESENT_KEY")
    loopback.script("keyed", openai_stream(["authorised"]))

    run = await run_fanout([keyless, keyed])

    failed = run.terminal("keyless")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.CONFIG
    assert "QUORUM_TEST_ABSENT_KEY" in failed.message
    assert failed.stats.attempts == 1
    assert loopback.requests_for("keyless") == []
    (request,) = loopback.requests_for("keyed")
    assert request.headers["authorization"] == "Bearer sk-from-the-environment-42"
    assert run.result.responses["keyed"].text == "authorised"
    assert "sk-from-the-environment-42" not in repr(run.events)


async def test_an_empty_key_variable_declares_a_keyless_openai_compatible_server(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("vllm", openai_stream(["no key needed"]))

    run = await run_fanout([spec("openai", "vllm", api_key=None, api_key_env="")])

    assert run.result.responses["vllm"].text == "no key needed"
    (request,) = loopback.requests_for("vllm")
    assert "authorization" not in request.headers


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_key_echoed_back_in_an_error_is_redacted(
    provider: str, loopback: LoopbackServer, spec: Spec
) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {TEST_KEY}.", "code": 401}}
    loopback.script("echo", error_reply(401, echo))

    run = await run_fanout([spec(provider, "echo")])

    failed = run.terminal("echo")
    assert isinstance(failed, Failed)
    assert failed.status == 401
    assert "Incorrect API key provided" in failed.message
    assert TEST_KEY not in failed.message
    assert "[redacted]" in failed.message
    assert TEST_KEY not in repr(run.events)
    assert TEST_KEY not in repr(spec(provider, "echo"))


async def test_key_echoed_in_a_retried_error_is_redacted_in_retrying_events(
    loopback: LoopbackServer, spec: Spec
) -> None:
    echo = {"error": {"message": f"key {TEST_KEY} is rate limited"}}
    loopback.script("echo2", [error_reply(429, echo), openai_stream(["ok"])])

    run = await run_fanout([spec("openai", "echo2")])

    (retrying,) = run.types("echo2", Retrying)
    assert TEST_KEY not in retrying.reason
    assert "rate limited" in retrying.reason


def test_short_keys_do_not_shred_messages() -> None:
    error = ProviderError(FailureKind.HTTP, "the model is not available", 404)
    assert error.redacted("the").message == "the model is not available"


async def test_connection_closed_before_any_answer_is_retried(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("stale", [Reply(hang_up=True), openai_stream(["second try"])])

    run = await run_fanout([spec("openai", "stale")])

    (retrying,) = run.types("stale", Retrying)
    assert "closed the connection" in retrying.reason
    assert run.result.responses["stale"].text == "second try"


async def test_connection_closed_before_any_answer_fails_as_connect(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("hangup", Reply(hang_up=True))

    run = await run_fanout([spec("anthropic", "hangup", max_retries=0)])

    failed = run.terminal("hangup")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.CONNECT
    assert f"127.0.0.1:{loopback.port}" in failed.message


# --- framing failures ----------------------------------------------------------------------
async def test_a_json_body_where_an_event_stream_was_expected_is_named(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script(
        "plain", Reply(parts=[(0.0, b'{"choices": []}')], content_type="application/json")
    )

    run = await run_fanout([spec("openai", "plain")])

    failed = run.terminal("plain")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.PROTOCOL
    assert "text/event-stream" in failed.message and "application/json" in failed.message


async def test_a_stream_cut_inside_a_frame_is_truncated_with_the_text_so_far(
    loopback: LoopbackServer, spec: Spec
) -> None:
    whole = openai_stream(["kept", " text"], finish="", usage=None, done=False)
    cut = (0.0, b'data: {"choices": [{"index": 0, "delta": {"content": "lo')
    loopback.script("cut", Reply(parts=[*whole.parts, cut]))

    run = await run_fanout([spec("openai", "cut")])

    failed = run.terminal("cut")
    assert isinstance(failed, Failed)
    assert failed.kind is FailureKind.TRUNCATED
    assert run.result.responses["cut"].text == "kept text"
