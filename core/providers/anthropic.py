"""Anthropic Messages API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.config import ModelSpec
from core.errors import ANTHROPIC_ERROR_STATUS, ProviderError, error_message
from core.events import FailureKind
from core.providers.base import (
    ChunkSink,
    FrameDecoder,
    HttpProvider,
    HttpRequest,
    Message,
    count,
    obj,
    parse_json,
    present,
    string,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens


class AnthropicProvider(HttpProvider):
    name = "anthropic"

    def build_request(
        self, spec: ModelSpec, messages: Sequence[Message], api_key: str | None
    ) -> HttpRequest:
        body: dict[str, Any] = {
            "model": spec.model,
            "max_tokens": spec.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            **present(system=spec.system, temperature=spec.temperature, top_p=spec.top_p),
        }
        body.update(spec.extra_body)
        headers = {"anthropic-version": API_VERSION, "Accept": "text/event-stream"}
        if api_key:
            headers["x-api-key"] = api_key
        return HttpRequest(f"{spec.base_url}/v1/messages", headers, body, api_key)

    def new_decoder(self) -> FrameDecoder:
        return AnthropicDecoder()


class AnthropicDecoder(FrameDecoder):
    def __init__(self) -> None:
        self.tokens_in: int | None = None

    def feed(self, event: str, data: str, sink: ChunkSink) -> bool:
        if not data:  # an id/retry-only event: nothing to decode (WHATWG: not dispatched)
            return False
        frame = parse_json(data)
        if not isinstance(frame, dict):
            return False
        kind = frame.get("type") or event
        if kind == "content_block_delta":
            delta = obj(frame.get("delta"))
            delta_type = delta.get("type")
            if delta_type == "text_delta" and string(delta.get("text")):
                sink.text(delta["text"])
            elif delta_type == "thinking_delta" and string(delta.get("thinking")):
                sink.reasoning(delta["thinking"])
        elif kind == "content_block_start":
            block = obj(frame.get("content_block"))
            if block.get("type") == "text" and string(block.get("text")):
                sink.text(block["text"])
            elif block.get("type") == "thinking" and string(block.get("thinking")):
                sink.reasoning(block["thinking"])
        elif kind == "message_start":
            usage = obj(obj(frame.get("message")).get("usage"))
            self.tokens_in = count(usage.get("input_tokens"))
            # Its output_tokens is a placeholder (1); the count comes with message_delta. A
            # stream cut before that leaves it unset, and the engine counts what streamed.
            sink.usage(self.tokens_in, None)
        elif kind == "message_delta":
            stop = string(obj(frame.get("delta")).get("stop_reason"))
            if stop:
                sink.finish(stop)
            usage = obj(frame.get("usage"))
            if usage:
                tokens_in = count(usage.get("input_tokens")) or self.tokens_in
                sink.usage(tokens_in, count(usage.get("output_tokens")))
        elif kind == "message_stop":
            self.complete = True
            return True
        elif kind == "error":
            status = ANTHROPIC_ERROR_STATUS.get(string(obj(frame.get("error")).get("type")))
            raise ProviderError(
                FailureKind.PROVIDER, error_message(frame) or "error in stream", status=status
            )
        return False

    def truncation_message(self) -> str:
        return "the stream ended without message_stop"
