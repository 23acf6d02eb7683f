"""Wire-format conformance: every recorded provider stream, through Quorum and an oracle.

Each recording in ``../shared/vectors`` (see `tests.vectors`) is served verbatim by the loopback
server, whole and cut into 1-, 7- and 64-byte network chunks (splitting frames, CRLF pairs and
multi-byte UTF-8 characters), and read by Quorum's real client path (`FanOut` over the shared
HTTP client). The ORACLE is the provider's official SDK reading the same bytes from the same
server: ``openai``, ``anthropic``, ``google-genai`` and ``ollama``. Text, reasoning, finish
reason, token usage and success/failure (with the provider's own message and status) must agree.

Where Quorum deliberately differs from an SDK, the difference is spelled out here:

* Completeness. The SDKs end quietly when a stream stops early; Quorum must tell the user the
  answer is cut off. A stream counts as complete when the oracle saw the protocol's end:
  OpenAI - the ``data: [DONE]`` marker (the SDK swallows ``[DONE]``, so its presence is
  checked in the served bytes; a missing finish reason alone is not truncation, as some routers
  end tool-call turns without one); Anthropic - ``message_stop``;
  Gemini - a ``finishReason`` (Gemini has no end marker); Ollama - the ``"done": true`` line.
  An incomplete stream must fail as ``truncated`` with exactly the partial text the SDK read.
* Blocked Gemini prompts. google-genai yields a chunk with ``prompt_feedback.block_reason`` and
  no candidates without raising; Quorum reports the model as failed (the user gets no answer).
* An unterminated last event. Some SDK fixture files were saved without the blank line after
  their last event (a real server always sends it). The SSE spec, httpx-sse and the openai and
  anthropic SDKs discard such an event, so both sides are served the bytes with the blank line
  restored.
* Refusals. OpenAI streams a refusal in ``delta.refusal`` with ``content`` null; Quorum shows
  it as the answer's text (else the user sees an empty answer), so the oracle's text is content
  plus refusal deltas.
* Terminal safety. Quorum strips terminal control characters from model text
  (`core.sanitize`), so the oracle's text goes through the same `strip_control`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from core.config import ModelSpec
from core.engine import FanOut
from core.events import Failed, FailureKind, Finished, ReasoningDelta, TextDelta, UsageReported
from core.providers import ProviderSet, make_client
from core.sanitize import strip_control
from tests.loopback import LoopbackServer, Reply, anthropic_stream, ollama_stream, raw_reply
from tests.vectors import Recording, discover, vectors_dir

VECTORS = vectors_dir()
NO_VECTORS = "recorded streams not found: ../shared/vectors (or $QUORUM_VECTORS) is absent"
RECORDINGS = discover(VECTORS) if VECTORS is not None else []
CHUNK_SIZES = (None, 1, 7, 64)
API_KEY = "test-key-0123456789"
SMALL_CHUNK_SPAN = 16 * 1024  # how much of a long recording the 1- and 7-byte passes cut up
RUN_LIMIT_S = 30  # a hung stream fails the test instead of hanging the suite


# google-genai (the Gemini oracle) subclasses aiohttp.ClientSession, which aiohttp deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession")


def _recording_params() -> list[Any]:
    if not RECORDINGS:
        return [pytest.param(None, id="no-vectors", marks=pytest.mark.skip(reason=NO_VECTORS))]
    return [
        pytest.param(rec, id=rec.id, marks=[pytest.mark.skip(reason=rec.skip)] if rec.skip else [])
        for rec in RECORDINGS
    ]


def _recording(rel: str) -> Recording:
    for rec in RECORDINGS:
        if rec.id == rel:
            return rec
    pytest.skip(f"{rel}: {NO_VECTORS if VECTORS is None else 'not in ../shared/vectors'}")


def _raw(rel: str) -> bytes:
    if VECTORS is None or not (VECTORS / rel).is_file():
        pytest.skip(f"{rel}: {NO_VECTORS if VECTORS is None else 'not in ../shared/vectors'}")
    return (VECTORS / rel).read_bytes()


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


# --- what a reader (Quorum or an SDK) made of a stream -------------------------------------
@dataclass(frozen=True)
class Outcome:
    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    failed: bool = False
    message: str = ""
    status: int | None = None
    kind: FailureKind | None = None
    complete: bool = True  # oracle only: the protocol's end was seen


class _Acc:
    """Accumulates an oracle's view with the same rules the engine applies."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.finish: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.complete = False

    def usage(self, tokens_in: Any, tokens_out: Any) -> None:
        if isinstance(tokens_in, int):
            self.tokens_in = tokens_in
        if isinstance(tokens_out, int):
            self.tokens_out = tokens_out

    def outcome(self, error: tuple[str, int | None] | None = None) -> Outcome:
        return Outcome(
            text=strip_control("".join(self.text)),
            reasoning=strip_control("".join(self.reasoning)),
            finish_reason=self.finish,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            failed=error is not None,
            message=strip_control(error[0]) if error else "",
            status=error[1] if error else None,
            complete=self.complete,
        )


def _base_url(server: LoopbackServer, protocol: str) -> str:
    return f"{server.url}/v1" if protocol == "openai" else server.url


def _serve(server: LoopbackServer, reply: Reply) -> str:
    model = f"rec-{uuid.uuid4().hex[:12]}"
    server.script(model, reply)
    return model


def _served_body(rec: Recording) -> bytes:
    if rec.protocol in ("openai", "anthropic", "gemini") and not rec.is_http_error:
        return _terminated(rec.body)
    return rec.body


def _reply(rec: Recording, chunk_size: int | None) -> Reply:
    body = _served_body(rec)
    if chunk_size is not None and chunk_size < 64 and len(body) > SMALL_CHUNK_SPAN:
        # tiny chunks cost one HTTP chunk each: cut the head finely, send the rest whole
        head = raw_reply(body[:SMALL_CHUNK_SPAN], chunk_size=chunk_size).parts
        tail = (0.0, body[SMALL_CHUNK_SPAN:])
        return Reply(rec.status, {}, [*head, tail], False, rec.content_type)
    return raw_reply(body, chunk_size=chunk_size, content_type=rec.content_type, status=rec.status)


async def run_quorum(server: LoopbackServer, protocol: str, reply: Reply) -> Outcome:
    """The real client path: `FanOut` with one model pointed at the loopback server."""
    model = _serve(server, reply)
    spec = ModelSpec(
        name="m",
        provider=protocol,
        model=model,
        base_url=_base_url(server, protocol),
        api_key=API_KEY,
        max_retries=0,
        timeout_s=RUN_LIMIT_S,
        first_token_timeout_s=RUN_LIMIT_S,
        idle_timeout_s=RUN_LIMIT_S,
    )
    text: list[str] = []
    reasoning: list[str] = []
    usage: UsageReported | None = None
    end: Finished | Failed | None = None
    client = make_client(1)
    providers = ProviderSet(client)
    try:
        with anyio.fail_after(RUN_LIMIT_S + 5):
            async with FanOut([spec], providers, "hi").run() as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                    elif isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                    elif isinstance(event, UsageReported):
                        usage = event
                    elif isinstance(event, Finished | Failed):
                        end = event
    finally:
        await providers.aclose()
        await client.aclose()
    assert end is not None, "no terminal event"
    failed = isinstance(end, Failed)
    return Outcome(
        text="".join(text),
        reasoning="".join(reasoning),
        finish_reason=end.finish_reason if isinstance(end, Finished) else None,
        tokens_in=usage.tokens_in if usage else None,
        tokens_out=usage.tokens_out if usage else None,
        failed=failed,
        message=end.message if isinstance(end, Failed) else "",
        status=end.status if isinstance(end, Failed) else None,
        kind=end.kind if isinstance(end, Failed) else None,
    )


# --- oracles: the official SDKs -------------------------------------------------------------
async def oracle_openai(server: LoopbackServer, reply: Reply, body: bytes) -> Outcome:
    import openai

    acc = _Acc()
    error: tuple[str, int | None] | None = None
    client = openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=RUN_LIMIT_S
    )
    try:
        stream = await client.chat.completions.create(
            model=_serve(server, reply), messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            for choice in chunk.choices or ():
                if choice.index != 0:
                    continue
                content: Any = choice.delta.content
                extra = choice.delta.model_extra or {}
                if isinstance(content, str):
                    acc.text.append(content)
                elif isinstance(content, list):  # Mistral: typed content parts
                    for part in content:
                        if part.get("type") == "text":
                            acc.text.append(part.get("text") or "")
                        elif part.get("type") == "thinking":
                            acc.reasoning.extend(
                                p.get("text") or "" for p in part.get("thinking") or ()
                            )
                if choice.delta.refusal:  # see the module doc
                    acc.text.append(choice.delta.refusal)
                reasoning = extra.get("reasoning_content") or extra.get("reasoning")
                if isinstance(reasoning, str):
                    acc.reasoning.append(reasoning)
                if choice.finish_reason:
                    acc.finish = choice.finish_reason
            usage: Any = chunk.usage or ((chunk.model_extra or {}).get("x_groq") or {}).get("usage")
            if usage is not None:
                usage = usage if isinstance(usage, dict) else usage.model_dump()
                acc.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    except openai.APIStatusError as exc:
        body_obj: Any = exc.body
        message = body_obj.get("message") if isinstance(body_obj, dict) else None
        error = (message or exc.message, exc.status_code)
    except openai.APIError as exc:  # an error object inside a 200 stream
        error = (exc.message, None)
    finally:
        await client.close()
    acc.complete = b"data: [DONE]" in body
    return acc.outcome(error)


async def oracle_anthropic(server: LoopbackServer, reply: Reply) -> Outcome:
    import anthropic

    acc = _Acc()
    error: tuple[str, int | None] | None = None
    client = anthropic.AsyncAnthropic(
        base_url=server.url, api_key=API_KEY, max_retries=0, timeout=RUN_LIMIT_S
    )
    try:
        stream = await client.messages.create(
            model=_serve(server, reply),
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        async for event in stream:
            if event.type == "message_start":
                acc.usage(event.message.usage.input_tokens, event.message.usage.output_tokens)
            elif event.type == "content_block_delta":
                if event.delta.type == "text_delta":
                    acc.text.append(event.delta.text)
                elif event.delta.type == "thinking_delta":
                    acc.reasoning.append(event.delta.thinking)
            elif event.type == "message_delta":
                acc.finish = event.delta.stop_reason or acc.finish
                acc.usage(event.usage.input_tokens, event.usage.output_tokens)
            elif event.type == "message_stop":
                acc.complete = True
    except anthropic.APIStatusError as exc:
        body: Any = exc.body
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        # a mid-stream `event: error` rides on a 200; its status is the error type's (see Quorum)
        error = (message or exc.message, exc.status_code if exc.status_code >= 400 else None)
    finally:
        await client.close()
    return acc.outcome(error)


async def oracle_gemini(server: LoopbackServer, reply: Reply) -> Outcome:
    from google import genai
    from google.genai import errors, types

    acc = _Acc()
    error: tuple[str, int | None] | None = None
    blocked: str | None = None
    client = genai.Client(
        api_key=API_KEY,
        http_options=types.HttpOptions(
            base_url=server.url, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )
    try:
        stream = await client.aio.models.generate_content_stream(
            model=_serve(server, reply), contents="hi"
        )
        async for chunk in stream:
            candidates = chunk.candidates or []
            if candidates:
                candidate = candidates[0]
                for part in (candidate.content.parts if candidate.content else None) or ():
                    if part.text:
                        (acc.reasoning if part.thought else acc.text).append(part.text)
                if candidate.finish_reason:
                    acc.finish = str(candidate.finish_reason.value)
                    acc.complete = True
            elif chunk.prompt_feedback and chunk.prompt_feedback.block_reason:
                blocked = str(chunk.prompt_feedback.block_reason.value)
            meta = chunk.usage_metadata
            if meta is not None:
                out = None
                if meta.candidates_token_count is not None or meta.thoughts_token_count is not None:
                    out = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
                acc.usage(meta.prompt_token_count, out)
    except errors.APIError as exc:
        error = (exc.message or str(exc), exc.code if exc.code and exc.code >= 400 else None)
    finally:
        await client.aio.aclose()
    if blocked is not None and error is None:  # the SDK does not raise; see the module doc
        error = (f"blocked ({blocked})", None)
    return acc.outcome(error)


async def oracle_ollama(server: LoopbackServer, reply: Reply) -> Outcome:
    import ollama

    acc = _Acc()
    error: tuple[str, int | None] | None = None
    client = ollama.AsyncClient(host=server.url, timeout=RUN_LIMIT_S)
    try:
        parts: AsyncIterator[Any] = await client.chat(
            model=_serve(server, reply), messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for part in parts:
            acc.text.append(part.message.content or "")
            acc.reasoning.append(part.message.thinking or "")
            if part.done:
                acc.finish = part.done_reason
                acc.usage(part.prompt_eval_count, part.eval_count)
                acc.complete = True
    except ollama.ResponseError as exc:
        error = (exc.error, exc.status_code if exc.status_code >= 400 else None)
    finally:
        await client._client.aclose()
    return acc.outcome(error)


async def run_oracle(server: LoopbackServer, rec: Recording) -> Outcome:
    reply = raw_reply(_served_body(rec), content_type=rec.content_type, status=rec.status)
    with anyio.fail_after(RUN_LIMIT_S + 5):
        if rec.protocol == "openai":
            return await oracle_openai(server, reply, rec.body)
        if rec.protocol == "anthropic":
            return await oracle_anthropic(server, reply)
        if rec.protocol == "gemini":
            return await oracle_gemini(server, reply)
        return await oracle_ollama(server, reply)


def _terminated(body: bytes) -> bytes:
    """The body with its last event's blank line restored (see the module doc)."""
    if body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")):
        return body
    return body.rstrip(b"\r\n") + b"\n\n"


def assert_agrees(quorum: Outcome, oracle: Outcome, where: str) -> None:
    assert quorum.text == oracle.text, f"{where}: text differs"
    assert quorum.reasoning == oracle.reasoning, f"{where}: reasoning differs"
    if oracle.failed:
        assert quorum.failed, f"{where}: the SDK raised {oracle.message!r}; Quorum finished"
        assert oracle.message in quorum.message, f"{where}: {quorum.message!r}"
        if oracle.status is not None:
            assert quorum.status == oracle.status, f"{where}: status"
        assert quorum.kind in (FailureKind.HTTP, FailureKind.PROVIDER), where
    elif not oracle.complete:
        assert quorum.failed and quorum.kind is FailureKind.TRUNCATED, (
            f"{where}: the stream has no end marker, Quorum said {quorum}"
        )
    else:
        assert not quorum.failed, f"{where}: Quorum failed: {quorum.kind} {quorum.message}"
        assert quorum.finish_reason == oracle.finish_reason, f"{where}: finish reason"
        assert (quorum.tokens_in, quorum.tokens_out) == (oracle.tokens_in, oracle.tokens_out), (
            f"{where}: usage"
        )


# --- the sweep: every recording, every chunking ---------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("rec", _recording_params())
async def test_recording_matches_the_official_sdk(server: LoopbackServer, rec: Recording) -> None:
    oracle = await run_oracle(server, rec)
    for chunk_size in CHUNK_SIZES:
        quorum = await run_quorum(server, rec.protocol, _reply(rec, chunk_size))
        assert_agrees(quorum, oracle, f"{rec.id} (chunk size {chunk_size or 'whole'})")


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
        quorum = await run_quorum(server, rec.protocol, _reply(rec, chunk_size))
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
    rec = _recording("anthropic/llm-anthropic/test_prompt.0.body")
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
    azure_first = _raw("issue_snippets/azure_openai_first_chunk_prompt_filter_results.json")
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
    rec = _recording("openrouter/pydantic-ai/openrouter_streaming_reasoning.0.body")
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
    rec = _recording("openai/chat_refusal_delta.sse")
    quorum, _ = await _both(server, rec)
    assert quorum.text.startswith("I'm sorry") and not quorum.failed


@pytest.mark.anyio
async def test_mistral_content_as_parts(server: LoopbackServer) -> None:
    rec = _recording("openai/vercel-ai/mistral-reasoning.chunks.jsonl")
    quorum, _ = await _both(server, rec)
    assert quorum.reasoning, "thinking parts become reasoning"
    assert quorum.text == "2 + 2 = 4"


@pytest.mark.anyio
async def test_groq_error_event_mid_stream(server: LoopbackServer) -> None:
    rec = _recording("openai/pydantic-ai/groq_tool_use_failed_midstream_error.0.body")
    assert b"event: error" in rec.body
    quorum, oracle = await _both(server, rec)
    assert quorum.failed and quorum.kind is FailureKind.PROVIDER and quorum.status == 400
    assert oracle.message in quorum.message


@pytest.mark.anyio
async def test_openrouter_error_chunk_in_a_200(server: LoopbackServer) -> None:
    rec = _recording("openrouter/pydantic-ai/openrouter_stream_error.0.body")
    quorum, _ = await _both(server, rec)
    assert quorum.failed and quorum.status == 400
    assert "Token limit reached" in quorum.message
    assert quorum.reasoning, "what arrived before the error is kept"


@pytest.mark.anyio
async def test_anthropic_overloaded_mid_stream(server: LoopbackServer) -> None:
    error = json.loads(_raw("issue_snippets/anthropic_midstream_overloaded_error_event.json"))
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
    rec = _recording("gemini/pydantic-ai/google_model_stream.0.body")
    assert b"}\r\n\r\ndata: " in rec.body and b"[DONE]" not in rec.body
    quorum, _ = await _both(server, rec)
    assert quorum.text and quorum.finish_reason == "STOP" and not quorum.failed


@pytest.mark.anyio
async def test_gemini_running_usage_keeps_the_last(server: LoopbackServer) -> None:
    rec = _recording("gemini/pydantic-ai/google_stream_usage_mid_stream.0.body")
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
    rec = _recording("gemini/pydantic-ai/google_thinking_part_iter.0.body")
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
    rec = _recording("ollama/observed_0.13.5/api_chat_stream_first_and_last_chunk.ndjson")
    done = json.loads(rec.body.splitlines()[-1])
    quorum, _ = await _both(server, rec)
    assert (quorum.tokens_in, quorum.tokens_out) == (done["prompt_eval_count"], done["eval_count"])
    assert quorum.finish_reason == "length" and quorum.reasoning == "Okay"


@pytest.mark.anyio
async def test_llamacpp_final_usage_chunk_with_empty_choices(server: LoopbackServer) -> None:
    recorded = _raw("issue_snippets/llamacpp_b6497_final_usage_chunk_empty_choices.sse")
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
    rec = _recording("gemini/vercel-ai/google-429-retry-info.json")
    quorum, oracle = await _both(server, rec)
    assert quorum.status == 429 and oracle.status == 429
    assert "You exceeded your current quota" in quorum.message


def test_discovery_finds_streams_of_all_four_protocols() -> None:
    if VECTORS is None:
        pytest.skip(NO_VECTORS)
    streams = [r for r in RECORDINGS if r.skip is None]
    assert {r.protocol for r in streams} == {"openai", "anthropic", "gemini", "ollama"}
    assert all(r.skip for r in RECORDINGS if r.id.endswith(".yaml"))
