"""OpenAI Chat Completions and every server that speaks it (OpenRouter, Groq, DeepSeek, Mistral,
vLLM, llama.cpp, LM Studio, Ollama's /v1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.config import ModelSpec
from core.errors import ProviderError, error_message
from core.events import FailureKind
from core.providers.base import (
    ChunkSink,
    FrameDecoder,
    HttpProvider,
    HttpRequest,
    Message,
    chat_messages,
    count,
    http_status,
    items,
    obj,
    parse_json,
    present,
    string,
)


class OpenAIProvider(HttpProvider):
    name = "openai"

    def build_request(
        self, spec: ModelSpec, messages: Sequence[Message], api_key: str | None
    ) -> HttpRequest:
        body: dict[str, Any] = {
            "model": spec.model,
            "messages": chat_messages(spec, messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            **present(
                temperature=spec.temperature,
                max_tokens=spec.max_tokens,
                top_p=spec.top_p,
                seed=spec.seed,
            ),
        }
        body.update(spec.extra_body)
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest(f"{spec.base_url}/chat/completions", headers, body, api_key)

    def new_decoder(self) -> FrameDecoder:
        return OpenAIDecoder()


class OpenAIDecoder(FrameDecoder):
    """Only choice 0 is read (Quorum never asks for n > 1)."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None

    def feed(self, event: str, data: str, sink: ChunkSink) -> bool:
        if not data:  # an id/retry-only event: nothing to decode (WHATWG: not dispatched)
            return False
        if data.startswith("[DONE]"):
            # [DONE] is the protocol's end marker. Some routers end tool-call turns without a
            # finish reason, so its absence alone does not make the answer truncated.
            self.complete = True
            return True
        chunk = parse_json(data)
        if not isinstance(chunk, dict):
            return False
        if event == "error" or chunk.get("error"):
            raise _stream_error(chunk)
        for choice in map(obj, items(chunk.get("choices"))):
            if choice.get("index", 0) == 0:
                self._choice(choice, sink)
        usage = chunk.get("usage") or obj(chunk.get("x_groq")).get("usage")
        if isinstance(usage, dict):
            sink.usage(count(usage.get("prompt_tokens")), count(usage.get("completion_tokens")))
        return False

    def _choice(self, choice: dict[str, Any], sink: ChunkSink) -> None:
        delta = obj(choice.get("delta"))
        content = delta.get("content")
        if isinstance(content, str):
            if content:
                sink.text(content)
        elif isinstance(content, list):  # Mistral: [{"type": "thinking"|"text", ...}]
            for part in content:
                _content_part(part, sink)
        refusal = delta.get("refusal")  # the model's own words when it declines: show them
        if isinstance(refusal, str) and refusal:
            sink.text(refusal)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            sink.reasoning(reasoning)
        reason = string(choice.get("finish_reason"))
        if reason:
            self.finish_reason = reason
            sink.finish(reason)

    def truncation_message(self) -> str:
        if self.finish_reason is None:
            return "the stream ended without a finish reason (the server closed or interrupted it)"
        return "the stream ended without its [DONE] marker"


def _content_part(part: Any, sink: ChunkSink) -> None:
    if not isinstance(part, dict):
        return
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        if part["text"]:
            sink.text(part["text"])
    elif kind == "thinking":
        thinking = part.get("thinking")
        pieces = thinking if isinstance(thinking, list) else [{"text": thinking}]
        for piece in pieces:
            text = piece.get("text") if isinstance(piece, dict) else None
            if isinstance(text, str) and text:
                sink.reasoning(text)


def _stream_error(chunk: dict[str, Any]) -> ProviderError:
    error = obj(chunk.get("error"))
    status = None
    for key in ("status_code", "code", "status"):
        status = http_status(error.get(key))
        if status is not None:
            break
    return ProviderError(
        FailureKind.PROVIDER, error_message(chunk) or "error in stream", status=status
    )
