"""The shared streaming skeleton every provider runs on.

A provider is anything with ``async stream(spec, messages, sink)``. HTTP providers subclass
`HttpProvider` and only say how to build their request and how to decode one frame; the
skeleton owns the connection, HTTP errors, framing (SSE or NDJSON), the end-of-stream check and
turning transport failures into `ProviderError`s.

Decoders push what they read into a `ChunkSink` (the engine's per-model runner) instead of
returning objects: one call per token keeps the hot path cheap.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import anyio
import httpx
from httpx_sse import EventSource, SSEError

from core.config import ModelSpec
from core.errors import ProviderError, connect_failure, error_from_response, redact
from core.events import FailureKind


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant"]
    content: str


class ChunkSink(Protocol):
    """Receives a model's stream as it is decoded."""

    def text(self, text: str) -> None: ...
    def reasoning(self, text: str) -> None: ...
    def usage(self, tokens_in: int | None, tokens_out: int | None) -> None: ...
    def finish(self, reason: str | None) -> None: ...
    def loading(self) -> None: ...
    def loaded(self) -> None: ...
    def pause_s(self) -> float:
        """After each frame: seconds to wait before the next (0 almost always; see pacing)."""
        ...


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    async def stream(
        self, spec: ModelSpec, messages: Sequence[Message], sink: ChunkSink
    ) -> None: ...


class FrameDecoder(ABC):
    """Decodes one provider's frames. ``complete`` turns true when the protocol's end marker
    (or, for Gemini, which has none, a finish reason) has been seen."""

    complete: bool = False

    @abstractmethod
    def feed(self, event: str, data: str, sink: ChunkSink) -> bool:
        """Decode one frame; return True when the stream is over and reading should stop."""

    def truncation_message(self) -> str:
        return "the stream ended before the response was complete"


def chat_messages(spec: ModelSpec, messages: Sequence[Message]) -> list[dict[str, str]]:
    """OpenAI-style messages (also Ollama's and llama.cpp's): the system prompt, then the turns."""
    wire = [{"role": "system", "content": spec.system}] if spec.system else []
    wire.extend({"role": m.role, "content": m.content} for m in messages)
    return wire


def present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are set: optional request fields are omitted, not sent null."""
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    secret: str | None = field(default=None, repr=False)


Framing = Literal["sse", "ndjson"]


class HttpProvider(ABC):
    name: ClassVar[str]
    framing: ClassVar[Framing] = "sse"
    needs_key: ClassVar[bool] = True

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @abstractmethod
    def build_request(
        self, spec: ModelSpec, messages: Sequence[Message], api_key: str | None
    ) -> HttpRequest: ...

    @abstractmethod
    def new_decoder(self) -> FrameDecoder: ...

    async def stream(self, spec: ModelSpec, messages: Sequence[Message], sink: ChunkSink) -> None:
        key = spec.resolve_api_key()
        # api_key_env = "" declares a keyless server (vLLM, llama.cpp, LM Studio).
        if self.needs_key and key is None and spec.api_key_env != "":
            variable = spec.api_key_env or "api_key"
            raise ProviderError(
                FailureKind.CONFIG,
                f"no API key: set the environment variable {variable} "
                f"(or api_key / api_key_env for model {spec.name!r} in the config)",
            )
        request = self.build_request(spec, messages, key)
        try:
            await self._exchange(spec, request, sink)
        except ProviderError as exc:
            raise exc.redacted(key) from None
        except httpx.ConnectTimeout:
            hint = (  # a server that waits for an HTTP request never answers a TLS hello
                " (if the server speaks plain HTTP, use http:// in base_url)"
                if httpx.URL(request.url).scheme == "https"
                else ""
            )
            raise ProviderError(
                FailureKind.TIMEOUT,
                f"could not connect to {_host(request.url)} within "
                f"{spec.connect_timeout_s:g} s{hint}",
            ) from None
        except httpx.ConnectError as exc:
            raise connect_failure(exc, _host(request.url)).redacted(key) from None
        except httpx.ReadTimeout:
            raise ProviderError(
                FailureKind.TIMEOUT,
                f"no data from {_host(request.url)} for {_read_backstop_s(spec):g} s",
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ProviderError(
                FailureKind.TRUNCATED,
                f"connection to {_host(request.url)} broke mid-stream: {redact(_reason(exc), key)}",
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                FailureKind.CONNECT, f"{_host(request.url)}: {redact(_reason(exc), key)}"
            ) from None

    async def _exchange(self, spec: ModelSpec, request: HttpRequest, sink: ChunkSink) -> None:
        # The engine enforces the first-token and idle deadlines itself (with the right
        # message); the socket's read timeout is only a backstop that must never fire first.
        timeout = httpx.Timeout(
            connect=spec.connect_timeout_s,
            read=_read_backstop_s(spec),
            write=spec.connect_timeout_s,
            pool=spec.connect_timeout_s,
        )
        async with AsyncExitStack() as stack:
            try:
                response = await stack.enter_async_context(
                    self._client.stream(
                        "POST",
                        request.url,
                        headers=dict(request.headers),
                        json=request.body,
                        timeout=timeout,
                    )
                )
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # No answer at all (often a stale keep-alive connection): safe to retry.
                hint = (
                    " (if it serves HTTPS on that port, use https:// in base_url)"
                    if httpx.URL(request.url).scheme == "http"
                    else ""
                )
                raise ProviderError(
                    FailureKind.CONNECT,
                    f"{_host(request.url)} closed the connection before answering: "
                    f"{_reason(exc)}{hint}",
                ) from None
            if response.status_code >= 400:
                body = await _read_capped(response)
                raise error_from_response(response.status_code, response.headers, body)
            decoder = self.new_decoder()
            frames = sse_frames(response) if self.framing == "sse" else ndjson_frames(response)
            async for event, data in frames:
                if decoder.feed(event, data, sink):
                    await _read_to_end(frames)
                    break
                if pause := sink.pause_s():
                    await anyio.sleep(pause)
            if not decoder.complete:
                raise ProviderError(FailureKind.TRUNCATED, decoder.truncation_message())


async def sse_frames(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs, decoded by httpx-sse (>= 0.4.2: lines end only at CR, LF or CRLF,
    never at U+2028; comments dropped; an unterminated last event is discarded, per the spec)."""
    source = EventSource(response)
    try:
        async for sse in source.aiter_sse():
            yield sse.event, sse.data
    except SSEError:
        content_type = response.headers.get("content-type", "(none)")
        raise ProviderError(
            FailureKind.PROTOCOL,
            f"expected an event stream (text/event-stream) but the server sent {content_type}",
        ) from None


async def ndjson_frames(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """One JSON document per LF-terminated line (JSON strings never hold a raw newline)."""
    pending = ""
    async for text in response.aiter_text():
        pending += text
        if "\n" not in pending:
            continue
        *complete, pending = pending.split("\n")
        for line in complete:
            if line.strip():
                yield "", line
    if pending.strip():
        yield "", pending


def parse_json(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        snippet = data if len(data) <= 120 else data[:117] + "..."
        raise ProviderError(
            FailureKind.PROTOCOL, f"unreadable frame from the server ({exc.msg}): {snippet!r}"
        ) from None


# A frame is the server's JSON: any field may hold any type. Decoders read fields through these,
# so a value of an unexpected shape reads as absent instead of raising mid-stream, and the sink
# only ever gets the types `ChunkSink` promises.
def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def string(value: Any) -> str:
    """``value`` if it is a string, else ""."""
    return value if isinstance(value, str) else ""


def count(value: Any) -> int | None:
    """A token count: a non-negative integer (not a boolean), else None."""
    return value if type(value) is int and value >= 0 else None


def http_status(value: Any) -> int | None:
    """An HTTP status named inside a frame: an integer from 100 to 599, else None."""
    return value if type(value) is int and 100 <= value <= 599 else None


async def _read_to_end(frames: AsyncIterator[tuple[str, str]]) -> None:
    """Read what follows the final frame (usually just the body's end), so that the connection
    goes back to the pool for the next question instead of being closed; a server that keeps
    talking or stays open after the final frame is not waited for."""
    with anyio.move_on_after(_TAIL_S):
        count = 0
        async for _ in frames:
            count += 1
            if count >= _TAIL_FRAMES:
                return


async def _read_capped(response: httpx.Response, limit: int = 64 * 1024) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


_TAIL_S = 0.25
_TAIL_FRAMES = 16


def _read_backstop_s(spec: ModelSpec) -> float:
    return max(spec.idle_timeout_s, spec.first_token_timeout_s) + 1.0


def _host(url: str) -> str:
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.host}{port}"


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
