"""Reading a stream two ways, for the conformance tests: through Quorum and through an oracle.

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

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from core.config import ModelSpec
from core.engine import FanOut
from core.events import Failed, FailureKind, Finished, ReasoningDelta, TextDelta, UsageReported
from core.providers import ProviderSet, make_client
from core.sanitize import strip_control
from tests.loopback import LoopbackServer, Reply, raw_reply
from tests.vectors import Recording, discover, vectors_dir

VECTORS = vectors_dir()
NO_VECTORS = "recorded streams not found: ../shared/vectors (or $QUORUM_VECTORS) is absent"
RECORDINGS = discover(VECTORS) if VECTORS is not None else []
CHUNK_SIZES = (None, 1, 7, 64)
API_KEY = "test-key-0123456789"
SMALL_CHUNK_SPAN = 16 * 1024  # how much of a long recording the 1- and 7-byte passes cut up
RUN_LIMIT_S = 30  # a hung stream fails the test instead of hanging the suite


def recording(rel: str) -> Recording:
    for rec in RECORDINGS:
        if rec.id == rel:
            return rec
    pytest.skip(f"{rel}: {NO_VECTORS if VECTORS is None else 'not in ../shared/vectors'}")


def raw_recording(rel: str) -> bytes:
    if VECTORS is None or not (VECTORS / rel).is_file():
        pytest.skip(f"{rel}: {NO_VECTORS if VECTORS is None else 'not in ../shared/vectors'}")
    return (VECTORS / rel).read_bytes()


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


def recording_reply(rec: Recording, chunk_size: int | None) -> Reply:
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
