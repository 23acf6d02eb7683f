"""What the loopback server sends for each fault of tests/test_fault_matrix.py, per wire
protocol: answers, broken streams, each provider's own error bodies, huge answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, overload

from tests.loopback import (
    Reply,
    anthropic_stream,
    error_reply,
    gemini_stream,
    ollama_stream,
    openai_stream,
    sse,
)

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama")
NDJSON = "application/x-ndjson"
CONTROL_TEXT = "The control answer, untouched."
PARTIAL = ["Partial ", "answer"]  # what a broken stream sent before it broke
KEPT = "Partial answer"
KEY_ENV = "QUORUM_TEST_CLI_KEY"  # tests.test_cli.quorum puts SECRET there

Replies = Callable[[str], Sequence[Reply]]


# --- what the loopback server sends, per protocol ----------------------------------------------
STREAMS: dict[str, Callable[..., Reply]] = {
    "openai": openai_stream,
    "anthropic": anthropic_stream,
    "gemini": gemini_stream,
    "ollama": ollama_stream,
}


def answer(protocol: str, tokens: Sequence[str] = ("Fine", ", thanks.")) -> Reply:
    """A whole, healthy answer in the protocol's own format."""
    return STREAMS[protocol](list(tokens))


def unfinished(protocol: str, tokens: Sequence[str] = PARTIAL) -> list[tuple[float, bytes]]:
    """The opening frames and ``tokens``, without anything that ends the answer."""
    if protocol == "openai":
        return list(openai_stream(tokens, finish="", usage=None, done=False).parts)
    if protocol == "anthropic":  # the stream up to its error frame, then without it
        return list(anthropic_stream(tokens, error={}).parts[:-1])
    if protocol == "gemini":
        return list(gemini_stream(tokens, finish=False).parts)
    return list(ollama_stream(tokens, done=False).parts)


def then(protocol: str, *tail: tuple[float, bytes], drop: bool = False) -> Reply:
    """The unfinished answer, then ``tail``; ``drop``: the socket closes instead of the body."""
    content_type = NDJSON if protocol == "ollama" else "text/event-stream; charset=utf-8"
    return Reply(parts=[*unfinished(protocol), *tail], drop=drop, content_type=content_type)


def no_end_marker(protocol: str) -> Reply:
    """A complete-looking answer whose protocol end marker never comes (the body ends cleanly)."""
    if protocol == "openai":
        return openai_stream(PARTIAL, done=False)  # finish_reason, usage, but no [DONE]
    if protocol == "anthropic":
        return anthropic_stream(PARTIAL, stop=False)  # message_delta, but no message_stop
    if protocol == "gemini":
        return gemini_stream(PARTIAL, finish=False)  # no finishReason
    return ollama_stream(PARTIAL, done=False)  # no "done": true line


MALFORMED = {  # a frame cut off inside its JSON, the rest of the stream intact
    "openai": b'data: {"choices": [{"index": 0, "delta": {"content": \n\n',
    "anthropic": b'event: content_block_delta\ndata: {"type": "content_block_delta", "de\n\n',
    "gemini": b'data: {"candidates": [{"content": {"parts": \r\n\r\n',
    "ollama": b'{"message": {"role": "assistant", "content": \n',
}
IN_STREAM_ERROR = {  # each provider's own error object inside a 200 stream, after some text
    "openai": sse({"error": {"message": "The server had an error processing your request."}}),
    "anthropic": sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"
    ),
    "gemini": sse({"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}}),
    "ollama": b'{"error": "an error was encountered while running the model"}\n',
}
IN_STREAM_MESSAGE = {
    "openai": "The server had an error processing your request.",
    "anthropic": "HTTP 529: overloaded_error: Overloaded",
    "gemini": "HTTP 500: INTERNAL: Internal error.",
    "ollama": "an error was encountered while running the model",
}


def with_bytes(reply: Reply, marker: str, raw: bytes) -> Reply:
    """``reply`` with ``marker`` (inside a token) replaced by raw bytes on the wire."""
    parts = [(delay, data.replace(marker.encode(), raw)) for delay, data in reply.parts]
    return replace(reply, parts=parts)


class Repeated(Sequence[tuple[float, bytes]]):
    """A reply's parts with one frame repeated ``count`` times, made as they are sent (a 50 MB
    answer is never held in memory)."""

    def __init__(
        self,
        head: Sequence[tuple[float, bytes]],
        middle: tuple[float, bytes],
        count: int,
        tail: Sequence[tuple[float, bytes]],
    ) -> None:
        self._head, self._middle, self._count, self._tail = list(head), middle, count, list(tail)

    def __len__(self) -> int:
        return len(self._head) + self._count + len(self._tail)

    @overload
    def __getitem__(self, index: int) -> tuple[float, bytes]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[float, bytes]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[float, bytes] | Sequence[tuple[float, bytes]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index < len(self._head):
            return self._head[index]
        index -= len(self._head)
        return self._middle if index < self._count else self._tail[index - self._count]

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        yield from self._head
        for _ in range(self._count):
            yield self._middle
        yield from self._tail


def long_answer(protocol: str, token: str, count: int, interval: float, *, batch: int = 1) -> Reply:
    """``count`` times ``token`` in the protocol's format, ``batch`` frames a write, a write
    every ``interval`` seconds."""
    reply = STREAMS[protocol]([token] * 3, interval=interval)
    needle = json.dumps(token)[1:40].encode()
    first = next(i for i, (_, data) in enumerate(reply.parts) if needle in data)
    parts = list(reply.parts)
    delay, frame = parts[first + 1]
    middle = (delay, frame * batch)
    lazy = Repeated(parts[: first + 1], middle, (count - 2) // batch, parts[first + 2 :])
    return replace(reply, parts=lazy)


# HTTP errors: each provider's own body shape and words.
OWN_WORDS: dict[int, dict[str, str]] = {
    400: {
        "openai": "Unrecognized request argument supplied: frobnicate",
        "anthropic": "max_tokens: Field required",
        "gemini": 'Invalid JSON payload received. Unknown name "frobnicate"',
        "ollama": "invalid options: frobnicate",
    },
    401: {
        "openai": "Incorrect API key provided: sk-wrong.",
        "anthropic": "invalid x-api-key",
        "gemini": "API key not valid. Please pass a valid API key.",
        "ollama": "unauthorized",
    },
    403: {
        "openai": "Project does not have access to model f-openai",
        "anthropic": "Your API key does not have permission to use the specified resource.",
        "gemini": "Permission denied: Consumer has been suspended.",
        "ollama": "this model requires a subscription",
    },
    404: {
        "openai": "The model `f-openai` does not exist or you do not have access to it.",
        "anthropic": "model: f-anthropic",
        "gemini": "models/f-gemini is not found for API version v1beta",
        "ollama": 'model "f-ollama" not found, try pulling it first',
    },
    408: {p: f"{p}: the request timed out" for p in PROTOCOLS},
    429: {
        "openai": "Rate limit reached for requests",
        "anthropic": "Number of request tokens has exceeded your per-minute rate limit",
        "gemini": "Resource has been exhausted (e.g. check quota).",
        "ollama": "too many requests",
    },
    500: {
        "openai": "The server had an error while processing your request.",
        "anthropic": "Internal server error",
        "gemini": "An internal error has occurred.",
        "ollama": "llama runner process has terminated",
    },
    502: {p: f"{p}: bad gateway from the upstream proxy" for p in PROTOCOLS},
    503: {
        "openai": "The engine is currently overloaded, please try again later",
        "anthropic": "Service unavailable",
        "gemini": "The model is overloaded. Please try again later.",
        "ollama": "server busy, please try again. maximum pending requests exceeded",
    },
    529: {p: "Overloaded" if p == "anthropic" else f"{p}: overloaded" for p in PROTOCOLS},
}
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def error_body(protocol: str, status: int) -> dict[str, Any]:
    words = OWN_WORDS[status][protocol]
    if protocol == "openai":
        kind = "server_error" if status >= 500 else "requests" if status == 429 else None
        return {"error": {"message": words, "type": kind or "invalid_request_error", "code": None}}
    if protocol == "anthropic":
        kind = ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": words}}
    if protocol == "gemini":
        return {"error": {"code": status, "message": words, "status": GOOGLE_STATUS.get(status)}}
    return {"error": words}


def http(status: int, *, retry_after: str | None = None, recovers: bool = False) -> Replies:
    """The status with the provider's own error body; ``recovers``: the next try answers."""

    def replies(protocol: str) -> list[Reply]:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        failing = error_reply(status, error_body(protocol, status), headers)
        return [failing, answer(protocol)] if recovers else [failing]

    return replies


def own(status: int) -> dict[str, str]:
    """The message each provider's error shows: the status, then the provider's own words."""
    return {p: f"HTTP {status}: …{OWN_WORDS[status][p]}" for p in PROTOCOLS}


def each(make: Callable[[str], Reply]) -> Replies:
    return lambda protocol: [make(protocol)]


# Sizes: the 50 MB answer is offered whole and stopped at max_answer_chars; the 10 MB line is
# one SSE data line (one NDJSON line for ollama) read whole, its text cut at the default cap.
PARAGRAPH = ("All work and no play makes a long answer. " * 24).strip() + "\n\n"
PIECE = PARAGRAPH * 10  # 10,090 characters a frame
FIFTY_MB = 5_000  # frames of PIECE: 50 MB
CAP_50MB = 100_000
TEN_MB_LINE = PARAGRAPH * 10_000  # 10,000,000 characters in one token
