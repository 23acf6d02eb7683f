"""Targeted wire-format cases: framing edge cases and provider quirks named in
../shared/vectors/NOTES.md, each read by Quorum and, where one exists, by the official SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from core.events import FailureKind
from core.sanitize import strip_control
from tests.loopback import LoopbackServer, Reply, anthropic_stream, ollama_stream
from tests.sdk_oracles import (
    CHUNK_SIZES,
    Outcome,
    Recording,
    assert_agrees,
    raw_recording,
    recording,
    recording_reply,
    run_oracle,
    run_quorum,
)

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession")


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


# --- targeted cases -------------------------------------------------------------------------
def _openai_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        },
        ensure_ascii=False,
    )


def _sse_body(payloads: list[str], sep: str = "\n") -> bytes:
    return "".join(f"data: {p}{sep}{sep}" for p in payloads).encode()


async def _both(server: LoopbackServer, rec: Recording) -> tuple[Outcome, Outcome]:
    oracle = await run_oracle(server, rec)
    quorum = Outcome()
    for chunk_size in CHUNK_SIZES:
        quorum = await run_quorum(server, rec.protocol, recording_reply(rec, chunk_size))
        assert_agrees(quorum, oracle, f"{rec.id} (chunk size {chunk_size or 'whole'})")
    return quorum, oracle


@pytest.mark.anyio
async def test_unicode_line_separators_inside_json_survive(server: LoopbackServer) -> None:
    # U+2028/U+2029/U+0085 (and \v, \f) end a line for str.splitlines(), never for SSE.
    tricky = "a\u2028b\u2029c\u0085d é 漢字 🎉"
    body = _sse_body([_openai_chunk({"content": tricky}), _openai_chunk({}, "stop"), "[DONE]"])
    assert "\u2028".encode() in body
    quorum, _ = await _both(server, Recording("inline/u2028", "openai", "inline", body))
    assert quorum.text == strip_control(tricky)  # U+0085 is a C1 control: sanitized away
    assert "\u2028" in quorum.text and "\u2029" in quorum.text
    assert quorum.finish_reason == "stop"


@pytest.mark.anyio
async def test_cr_and_lf_of_one_line_end_in_different_network_chunks(
    server: LoopbackServer,
) -> None:
    # One event whose JSON spans two data: lines, CRLF line ends, and every CR the last byte of
    # a network chunk: reading that LF as a blank line would cut the event in two.
    first, second = _openai_chunk({"content": "joined"}).split(" ", 1)  # at a JSON space
    finish = _openai_chunk({}, "stop")
    lines = [f"data: {first}", f"data: {second}", "", f"data: {finish}", "", "data: [DONE]", "", ""]
    body = "\r\n".join(lines).encode()
    pieces = body.split(b"\r")
    parts = [(0.0, piece + b"\r") for piece in pieces[:-1]] + [(0.0, pieces[-1])]
    quorum = await run_quorum(server, "openai", Reply(parts=parts))
    assert (quorum.failed, quorum.text, quorum.finish_reason) == (False, "joined", "stop")


@pytest.mark.anyio
async def test_anthropic_padded_json_frames(server: LoopbackServer) -> None:
    rec = recording("anthropic/llm-anthropic/test_prompt.0.body")
    assert b'"type":"message_stop"' in rec.body.replace(b" ", b"") and b"}   " in rec.body, (
        "the recording is expected to carry Anthropic's space padding"
    )
    quorum, _ = await _both(server, rec)
    assert quorum.text and quorum.finish_reason == "end_turn"


@pytest.mark.anyio
async def test_comment_lines_are_ignored(server: LoopbackServer) -> None:
    body = (
        b": OPENROUTER PROCESSING\n\n"
        + _sse_body([_openai_chunk({"content": "Hel"})])
        + (b": keep-alive\n\n" + _sse_body([_openai_chunk({"content": "lo"}), "[DONE]"]))
    )
    body = body.replace(
        b"data: [DONE]",
        b": keep-alive\n\ndata: " + _openai_chunk({}, "stop").encode() + b"\n\ndata: [DONE]",
    )
    quorum, _ = await _both(server, Recording("inline/comments", "openai", "inline", body))
    assert (quorum.text, quorum.finish_reason) == ("Hello", "stop")


@pytest.mark.anyio
async def test_event_ids_with_keep_alive_comments(server: LoopbackServer) -> None:
    # With an `id:` seen, httpx-sse-style parsers dispatch a data-less event at every blank
    # line (after each comment too). The WHATWG rules dispatch nothing without data; the openai
    # SDK trips over it (json.loads("")), so this case has no oracle.
    body = b"".join(
        b"id: %d\ndata: %s\n\n: keep-alive\n\n" % (i, payload.encode())
        for i, payload in enumerate([_openai_chunk({"content": "ok"}), _openai_chunk({}, "stop")])
    )
    quorum = await run_quorum(server, "openai", Reply(parts=[(0.0, body + b"data: [DONE]\n\n")]))
    assert (quorum.failed, quorum.text, quorum.finish_reason) == (False, "ok", "stop")


@pytest.mark.anyio
async def test_chunk_with_empty_choices_first(server: LoopbackServer) -> None:
    azure_first = raw_recording(
        "issue_snippets/azure_openai_first_chunk_prompt_filter_results.json"
    )
    body = (
        b"data: "
        + azure_first.strip()
        + b"\n\n"
        + _sse_body([_openai_chunk({"content": "ok"}), _openai_chunk({}, "stop"), "[DONE]"])
    )
    quorum, _ = await _both(server, Recording("inline/azure", "openai", "azure", body))
    assert (quorum.text, quorum.finish_reason, quorum.failed) == ("ok", "stop", False)


@pytest.mark.anyio
async def test_openrouter_usage_chunk_after_finish(server: LoopbackServer) -> None:
    rec = recording("openrouter/pydantic-ai/openrouter_streaming_reasoning.0.body")
    frames = [
        json.loads(line[6:])
        for line in rec.body.decode().splitlines()
        if line.startswith("data: {")
    ]
    usage_frame = frames[-1]
    assert usage_frame["choices"] and "usage" in usage_frame  # non-empty choices + usage
    quorum, _ = await _both(server, rec)
    assert quorum.tokens_in == usage_frame["usage"]["prompt_tokens"]
    assert quorum.tokens_out == usage_frame["usage"]["completion_tokens"]
    assert quorum.reasoning and quorum.finish_reason == "stop"


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_field_names(server: LoopbackServer, field: str) -> None:
    body = _sse_body(
        [
            _openai_chunk({"role": "assistant", "content": None, field: "think"}),
            _openai_chunk({"content": None, field: "ing"}),
            _openai_chunk({"content": "answer"}),
            _openai_chunk({}, "stop"),
            "[DONE]",
        ]
    )
    quorum, _ = await _both(server, Recording(f"inline/{field}", "openai", "inline", body))
    assert (quorum.reasoning, quorum.text) == ("thinking", "answer")


@pytest.mark.anyio
async def test_openai_refusal_is_shown_as_text(server: LoopbackServer) -> None:
    rec = recording("openai/chat_refusal_delta.sse")
    quorum, _ = await _both(server, rec)
    assert quorum.text.startswith("I'm sorry") and not quorum.failed


@pytest.mark.anyio
async def test_mistral_content_as_parts(server: LoopbackServer) -> None:
    rec = recording("openai/vercel-ai/mistral-reasoning.chunks.jsonl")
    quorum, _ = await _both(server, rec)
    assert quorum.reasoning, "thinking parts become reasoning"
    assert quorum.text == "2 + 2 = 4"


@pytest.mark.anyio
async def test_groq_error_event_mid_stream(server: LoopbackServer) -> None:
    rec = recording("openai/pydantic-ai/groq_tool_use_failed_midstream_error.0.body")
    assert b"event: error" in rec.body
    quorum, oracle = await _both(server, rec)
    assert quorum.failed and quorum.kind is FailureKind.PROVIDER and quorum.status == 400
    assert oracle.message in quorum.message


@pytest.mark.anyio
async def test_openrouter_error_chunk_in_a_200(server: LoopbackServer) -> None:
    rec = recording("openrouter/pydantic-ai/openrouter_stream_error.0.body")
    quorum, _ = await _both(server, rec)
    assert quorum.failed and quorum.status == 400
    assert "Token limit reached" in quorum.message
    assert quorum.reasoning, "what arrived before the error is kept"


@pytest.mark.anyio
async def test_anthropic_overloaded_mid_stream(server: LoopbackServer) -> None:
    error = json.loads(
        raw_recording("issue_snippets/anthropic_midstream_overloaded_error_event.json")
    )
    reply = anthropic_stream(["Partial ", "answer"], error=error)
    body = b"".join(data for _, data in reply.parts)
    rec = Recording("inline/anthropic-overloaded", "anthropic", "anthropic", body)
    quorum, oracle = await _both(server, rec)
    assert oracle.failed
    assert quorum.failed and quorum.kind is FailureKind.PROVIDER
    assert quorum.text == "Partial answer"
    assert "Overloaded" in quorum.message and quorum.status == 529


@pytest.mark.anyio
async def test_gemini_crlf_framing_without_terminator(server: LoopbackServer) -> None:
    rec = recording("gemini/pydantic-ai/google_model_stream.0.body")
    assert b"}\r\n\r\ndata: " in rec.body and b"[DONE]" not in rec.body
    quorum, _ = await _both(server, rec)
    assert quorum.text and quorum.finish_reason == "STOP" and not quorum.failed


@pytest.mark.anyio
async def test_gemini_running_usage_keeps_the_last(server: LoopbackServer) -> None:
    rec = recording("gemini/pydantic-ai/google_stream_usage_mid_stream.0.body")
    metas = [
        json.loads(line[6:])["usageMetadata"]
        for line in rec.body.decode().splitlines()
        if line.startswith("data: ")
    ]
    assert len({json.dumps(m) for m in metas}) > 1, "usage changes mid-stream"
    last = metas[-1]
    quorum, _ = await _both(server, rec)
    assert quorum.tokens_in == last["promptTokenCount"]
    assert quorum.tokens_out == last.get("candidatesTokenCount", 0) + last.get(
        "thoughtsTokenCount", 0
    )


@pytest.mark.anyio
async def test_gemini_thought_parts_are_reasoning(server: LoopbackServer) -> None:
    rec = recording("gemini/pydantic-ai/google_thinking_part_iter.0.body")
    quorum, _ = await _both(server, rec)
    assert quorum.reasoning and quorum.text
    assert quorum.reasoning not in quorum.text


@pytest.mark.anyio
async def test_gemini_blocked_prompt(server: LoopbackServer) -> None:
    frame = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
    }
    body = _sse_body([json.dumps(frame)], sep="\r\n")
    quorum, oracle = await _both(server, Recording("inline/blocked", "gemini", "inline", body))
    assert oracle.failed and quorum.failed and quorum.kind is FailureKind.PROVIDER
    assert "PROHIBITED_CONTENT" in quorum.message and quorum.text == ""


@pytest.mark.anyio
async def test_ollama_error_line(server: LoopbackServer) -> None:
    reply = ollama_stream(["Half ", "way"], error="an error was encountered while running")
    body = b"".join(data for _, data in reply.parts)
    rec = Recording(
        "inline/ollama-error", "ollama", "inline", body, content_type="application/x-ndjson"
    )
    quorum, _ = await _both(server, rec)
    assert quorum.failed and quorum.text == "Half way"
    assert "an error was encountered while running" in quorum.message


@pytest.mark.anyio
async def test_ollama_done_line_with_eval_counts(server: LoopbackServer) -> None:
    rec = recording("ollama/observed_0.13.5/api_chat_stream_first_and_last_chunk.ndjson")
    done = json.loads(rec.body.splitlines()[-1])
    quorum, _ = await _both(server, rec)
    assert (quorum.tokens_in, quorum.tokens_out) == (done["prompt_eval_count"], done["eval_count"])
    assert quorum.finish_reason == "length" and quorum.reasoning == "Okay"


@pytest.mark.anyio
async def test_llamacpp_final_usage_chunk_with_empty_choices(server: LoopbackServer) -> None:
    recorded = raw_recording("issue_snippets/llamacpp_b6497_final_usage_chunk_empty_choices.sse")
    usage_chunk = json.loads(recorded.split(b"\n", 1)[0][6:])
    assert usage_chunk["choices"] == [] and "timings" in usage_chunk
    head = _sse_body(
        [
            _openai_chunk({"role": "assistant", "content": None}),
            _openai_chunk({"content": "local"}),
            _openai_chunk({}, "stop"),
        ]
    )
    rec = Recording("inline/llamacpp", "openai", "llamacpp", head + recorded)
    quorum, _ = await _both(server, rec)
    assert (quorum.text, quorum.finish_reason) == ("local", "stop")
    assert (quorum.tokens_in, quorum.tokens_out) == (
        usage_chunk["usage"]["prompt_tokens"],
        usage_chunk["usage"]["completion_tokens"],
    )


@pytest.mark.anyio
async def test_http_error_keeps_provider_message_and_status(server: LoopbackServer) -> None:
    rec = recording("gemini/vercel-ai/google-429-retry-info.json")
    quorum, oracle = await _both(server, rec)
    assert quorum.status == 429 and oracle.status == 429
    assert "You exceeded your current quota" in quorum.message
