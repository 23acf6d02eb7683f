"""A lean loopback LLM server for the benchmarks, run in a process of its own.

    python -m bench._server [--port 0]      # prints "PORT <n>" once it listens

`tests.loopback.LoopbackServer` sleeps between parts with one coroutine per stream, so under a
128-stream load its pacing drifts (every relative sleep adds the loop's lateness). Here every
part of a reply is written at an *absolute* time (request arrival + the scripted offset) by a
chain of plain loop callbacks, so a stream's length does not depend on how many run at once.
The wire formats themselves come from `tests.loopback`'s reply builders, encoded once per script.

The model id scripts the reply: ``bench-t0.350-n200-d2.0`` means a first-token delay of 0.35 s,
then 200 tokens spread over 2.0 s. The request path picks the wire format (OpenAI, Anthropic,
Gemini or Ollama). ``GET /stats`` returns (and resets) how late the server wrote the last part of
each stream, so a reader can tell server lag from client overhead; ``GET /arrivals`` returns
(and resets) when each request arrived, to see how long a fan-out took to send them all;
``GET /connections`` returns how many connections were opened and model requests served so far
(never reset), to see whether a client reuses its connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import lru_cache

from tests.loopback import (
    Reply,
    anthropic_stream,
    gemini_stream,
    ollama_stream,
    openai_stream,
)

_MODEL_ID = re.compile(r"bench-t(?P<ttft>[\d.]+)-n(?P<tokens>\d+)-d(?P<duration>[\d.]+)")
_GEMINI_PATH = re.compile(r"/models/([^/:]+):")

Builder = Callable[..., Reply]
_BUILDERS: dict[str, Builder] = {
    "openai": openai_stream,
    "anthropic": anthropic_stream,
    "gemini": gemini_stream,
    "ollama": ollama_stream,
}


def model_id(ttft_s: float, tokens: int, duration_s: float) -> str:
    return f"bench-t{ttft_s:.3f}-n{tokens}-d{duration_s:g}"


def bench_tokens(count: int) -> list[str]:
    """Word-sized tokens, as a tokenizer would cut ordinary English."""
    words = ("the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", ".")
    return [words[i % len(words)] + ("\n" if i % 40 == 39 else "") for i in range(count)]


def provider_for(path: str) -> str:
    if path.endswith("/chat/completions"):
        return "openai"
    if path.endswith("/v1/messages"):
        return "anthropic"
    if ":streamGenerateContent" in path:
        return "gemini"
    return "ollama"


@lru_cache(maxsize=512)
def encoded(provider: str, model: str) -> tuple[bytes, tuple[tuple[float, bytes], ...]]:
    """(response head, ((offset from the request in s, chunked-encoded part), ...))."""
    match = _MODEL_ID.fullmatch(model)
    if match is None:
        raise ValueError(model)
    ttft, tokens, duration = (
        float(match["ttft"]),
        int(match["tokens"]),
        float(match["duration"]),
    )
    interval = duration / tokens
    reply = _BUILDERS[provider](bench_tokens(tokens), first_delay=ttft, interval=interval)
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: {reply.content_type}\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    ).encode()
    parts: list[tuple[float, bytes]] = []
    offset = 0.0
    for delay, data in reply.parts:
        offset += delay
        parts.append((offset, b"%x\r\n%s\r\n" % (len(data), data)))
    last_offset = parts[-1][0] if parts else 0.0
    parts.append((last_offset, b"0\r\n\r\n"))
    return head, tuple(parts)


class Stats:
    def __init__(self) -> None:
        self.lateness: list[float] = []
        self.arrivals: list[float] = []
        self.connections = 0  # opened since the server started
        self.requests = 0  # model requests since the server started

    def take(self) -> dict[str, float]:
        late, self.lateness = self.lateness, []
        if not late:
            return {"streams": 0, "max_late_ms": 0.0, "mean_late_ms": 0.0}
        return {
            "streams": len(late),
            "max_late_ms": round(max(late) * 1000, 3),
            "mean_late_ms": round(sum(late) / len(late) * 1000, 3),
        }

    def take_arrivals(self) -> list[float]:
        """Request arrival times (loop clock, s) since the last call."""
        arrivals, self.arrivals = self.arrivals, []
        return arrivals


class BenchProtocol(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next_request()

    def _next_request(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._transport is None:
            return
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self._buffer) < end + 4 + length:
            return
        body = self._buffer[end + 4 : end + 4 + length]
        self._buffer = self._buffer[end + 4 + length :]
        if method == "GET" and path == "/stats":
            self._reply_json(200, self._stats.take())
            return
        if method == "GET" and path == "/arrivals":
            self._reply_json(200, self._stats.take_arrivals())
            return
        if method == "GET" and path == "/connections":
            stats = self._stats
            self._reply_json(200, {"opened": stats.connections, "requests": stats.requests})
            return
        self._stats.requests += 1
        self._stats.arrivals.append(self._loop.time())
        gemini = _GEMINI_PATH.search(path)
        model = gemini.group(1) if gemini else json.loads(body).get("model", "")
        try:
            head, parts = encoded(provider_for(path), model)
        except ValueError:
            self._reply_json(404, {"error": {"message": f"unknown bench model {model!r}"}})
            return
        self._busy = True
        self._transport.write(head)
        self._send(parts, 0, self._loop.time())

    def _send(self, parts: Sequence[tuple[float, bytes]], index: int, start: float) -> None:
        if self._transport is None:
            return
        offset, data = parts[index]
        self._transport.write(data)
        if index + 1 < len(parts):
            when = start + parts[index + 1][0]
            self._loop.call_at(when, self._send, parts, index + 1, start)
            return
        self._stats.lateness.append(self._loop.time() - (start + offset))
        self._busy = False
        self._next_request()  # keep-alive: a pipelined request may be waiting

    def _reply_json(self, status: int, body: object) -> None:
        assert self._transport is not None
        data = json.dumps(body).encode()
        reason = "OK" if status == 200 else "Not Found"
        self._transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n\r\n".encode()
            + data
        )
        self._next_request()


async def serve(host: str, port: int) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BenchProtocol(stats), host, port, backlog=4096, reuse_address=True
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
