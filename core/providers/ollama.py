"""Ollama's native ``/api/chat`` (NDJSON)."""

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
    obj,
    parse_json,
    present,
    string,
)


class OllamaProvider(HttpProvider):
    name = "ollama"
    framing = "ndjson"
    needs_key = False

    def build_request(
        self, spec: ModelSpec, messages: Sequence[Message], api_key: str | None
    ) -> HttpRequest:
        body: dict[str, Any] = {
            "model": spec.model,
            "messages": chat_messages(spec, messages),
            "stream": True,
        }
        options = present(
            temperature=spec.temperature,
            num_predict=spec.max_tokens,
            top_p=spec.top_p,
            seed=spec.seed,
        )
        if options:
            body["options"] = options
        body.update(spec.extra_body)
        headers = {"Accept": "application/x-ndjson"}
        if api_key:  # Ollama's cloud and authenticating proxies
            headers["Authorization"] = f"Bearer {api_key}"
        return HttpRequest(f"{spec.base_url}/api/chat", headers, body, api_key)

    def new_decoder(self) -> FrameDecoder:
        return OllamaDecoder()


class OllamaDecoder(FrameDecoder):
    def feed(self, event: str, data: str, sink: ChunkSink) -> bool:
        line = parse_json(data)
        if not isinstance(line, dict):
            return False
        if "error" in line:
            raise ProviderError(FailureKind.PROVIDER, error_message(line) or "error in stream")
        message = obj(line.get("message"))
        if string(message.get("thinking")):
            sink.reasoning(message["thinking"])
        if string(message.get("content")):
            sink.text(message["content"])
        if line.get("done"):
            sink.usage(count(line.get("prompt_eval_count")), count(line.get("eval_count")))
            sink.finish(string(line.get("done_reason")) or "stop")
            self.complete = True
            return True
        return False

    def truncation_message(self) -> str:
        return 'the stream ended without its "done": true line'
