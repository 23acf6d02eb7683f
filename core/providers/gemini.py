"""Google Gemini (Generative Language API, ``streamGenerateContent?alt=sse``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.config import ModelSpec
from core.errors import ProviderError, error_message, gemini_retry_delay
from core.events import FailureKind
from core.providers.base import (
    ChunkSink,
    FrameDecoder,
    HttpProvider,
    HttpRequest,
    Message,
    count,
    http_status,
    items,
    obj,
    parse_json,
    present,
    string,
)


class GeminiProvider(HttpProvider):
    name = "gemini"

    def build_request(
        self, spec: ModelSpec, messages: Sequence[Message], api_key: str | None
    ) -> HttpRequest:
        model = spec.model.removeprefix("models/")
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [{"text": m.content}],
                }
                for m in messages
            ],
        }
        if spec.system:
            body["systemInstruction"] = {"parts": [{"text": spec.system}]}
        generation = present(
            temperature=spec.temperature,
            maxOutputTokens=spec.max_tokens,
            topP=spec.top_p,
            seed=spec.seed,
        )
        if generation:
            body["generationConfig"] = generation
        body.update(spec.extra_body)
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["x-goog-api-key"] = api_key
        url = f"{spec.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return HttpRequest(url, headers, body, api_key)

    def new_decoder(self) -> FrameDecoder:
        return GeminiDecoder()


class GeminiDecoder(FrameDecoder):
    """Gemini has no end marker: a chunk with a finishReason completes the answer, and the
    connection closing ends the stream. ``usageMetadata`` is a running total on every chunk."""

    def feed(self, event: str, data: str, sink: ChunkSink) -> bool:
        if not data:  # an id/retry-only event: nothing to decode (WHATWG: not dispatched)
            return False
        chunk = parse_json(data)
        if isinstance(chunk, list):  # tolerate the JSON-array form's elements
            chunk = chunk[0] if chunk else {}
        if not isinstance(chunk, dict):
            return False
        if "error" in chunk:
            error = chunk["error"]
            raise ProviderError(
                FailureKind.PROVIDER,
                error_message(chunk) or "error in stream",
                status=http_status(obj(error).get("code")),
                retry_after_s=gemini_retry_delay(chunk),
            )
        candidates = items(chunk.get("candidates"))
        if candidates:
            candidate = obj(candidates[0])
            for part in map(obj, items(obj(candidate.get("content")).get("parts"))):
                text = part.get("text")
                if isinstance(text, str) and text:
                    if part.get("thought"):
                        sink.reasoning(text)
                    else:
                        sink.text(text)
            reason = string(candidate.get("finishReason"))
            if reason:
                self.complete = True
                sink.finish(reason)
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            produced = count(usage.get("candidatesTokenCount"))
            thoughts = count(usage.get("thoughtsTokenCount"))
            if produced is not None or thoughts is not None:
                produced = (produced or 0) + (thoughts or 0)
            sink.usage(count(usage.get("promptTokenCount")), produced)
        blocked = obj(chunk.get("promptFeedback")).get("blockReason")
        if blocked and not candidates:
            raise ProviderError(FailureKind.PROVIDER, f"the prompt was blocked ({blocked})")
        return False

    def truncation_message(self) -> str:
        return "the stream ended without a finishReason"
