"""A real HTTP/1.1 server on 127.0.0.1 that speaks the four providers' wire formats.

Tests (and ``bench/``) script what it answers per model: status, headers, and a body sent in
parts with delays between them (first-token latency, token pacing, stalls), ending cleanly or by
dropping the connection. It runs its own asyncio loop in a daemon thread, so the code under test
talks to it over a real socket exactly as it talks to a provider.

    with LoopbackServer() as server:
        server.script("gpt", openai_stream(["Hel", "lo"], first_delay=0.2))
        server.script("claude", [error_reply(529, ANTHROPIC_OVERLOADED), anthropic_stream(["ok"])])
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CRLF = b"\r\n"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def model(self) -> str:
        """The model id: from the JSON body, or from Gemini's ``/models/{id}:...`` path."""
        match = re.search(r"/models/([^/:]+):", self.path)
        if match:
            return match.group(1)
        body = self.json
        return body.get("model", "") if isinstance(body, dict) else ""


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    parts: Sequence[tuple[float, bytes]] = ()  # (seconds to wait first, bytes to send)
    drop: bool = False  # close the socket mid-body instead of ending the chunked stream
    content_type: str = "text/event-stream; charset=utf-8"
    hang_up: bool = False  # close the connection without answering (like a stale keep-alive)


Handler = Callable[[Request], Reply]


class LoopbackServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._sticky: dict[str, Reply] = {}
        self.fallback: Handler | None = None
        self.requests: list[Request] = []
        self.open_streams = 0
        self.closed_by_client = 0
        self.connections = 0  # accepted: a client that reuses its connections opens few
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._lock = threading.Lock()
        self._streams_changed = threading.Condition()

    # --- scripting ------------------------------------------------------------------------
    def script(self, model: str, replies: Reply | Iterable[Reply]) -> None:
        """Answer requests for ``model``: one Reply for every request, or a list consumed one
        per request (the last one repeats)."""
        with self._lock:
            if isinstance(replies, Reply):
                self._sticky[model] = replies
                self._scripts.pop(model, None)
            else:
                self._scripts[model] = deque(replies)
                self._sticky.pop(model, None)

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            model = request.model
            queue = self._scripts.get(model)
            if queue:
                reply = queue.popleft() if len(queue) > 1 else queue[0]
                return reply
            if model in self._sticky:
                return self._sticky[model]
        if self.fallback is not None:
            return self.fallback(request)
        return error_reply(404, {"error": {"message": f"no script for model {model!r}"}})

    def wait_for(self, predicate: Callable[[LoopbackServer], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds; it is re-checked whenever a stream opens or
        closes. Returns False on timeout. (From async code: ``anyio.to_thread.run_sync``.)"""
        with self._streams_changed:
            return self._streams_changed.wait_for(lambda: predicate(self), timeout)

    def _streams_updated(self) -> None:
        with self._streams_changed:
            self._streams_changed.notify_all()

    def requests_for(self, model: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.model == model]

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="loopback-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("loopback server did not start")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self._port, backlog=1024)
        )
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    async def serve_forever(self) -> None:
        """Run in the current loop (for a server process of its own, e.g. the benchmark)."""
        self._server = await asyncio.start_server(self._handle, self.host, self._port, backlog=4096)
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    # --- HTTP -----------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                reply = self._reply_for(request)
                if not await self._send(reply, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _send(self, reply: Reply, writer: asyncio.StreamWriter) -> bool:
        if reply.hang_up:
            writer.close()
            return False
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}".encode()]
        headers = {"content-type": reply.content_type, **reply.headers}
        headers["transfer-encoding"] = "chunked"
        head += [f"{k}: {v}".encode() for k, v in headers.items()]
        writer.write(CRLF.join(head) + CRLF + CRLF)
        self.open_streams += 1
        self._streams_updated()
        try:
            for delay, data in reply.parts:
                if delay > 0:
                    await writer.drain()
                    await asyncio.sleep(delay)
                if writer.transport.is_closing():  # the client left: writing on only logs
                    raise ConnectionResetError
                if data:
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            if reply.drop:
                await writer.drain()
                writer.transport.abort()
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        except ConnectionError:
            self.closed_by_client += 1
            return False
        finally:
            self.open_streams -= 1
            self._streams_updated()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


# --- reply builders, one per wire format ----------------------------------------------------
def paced(
    frames: Sequence[bytes],
    first_delay: float = 0.0,
    interval: float = 0.0,
) -> list[tuple[float, bytes]]:
    return [(first_delay if i == 0 else interval, f) for i, f in enumerate(frames)]


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


def openai_stream(
    tokens: Sequence[str],
    *,
    first_delay: float = 0.0,
    interval: float = 0.0,
    finish: str = "stop",
    usage: tuple[int, int | None] | None = (5, None),
    reasoning: Sequence[str] = (),
    done: bool = True,
    drop: bool = False,
    headers: dict[str, str] | None = None,
) -> Reply:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    frames = [
        sse(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        )
    ]
    frames += [
        sse(
            {
                **base,
                "choices": [{"index": 0, "delta": {"reasoning_content": r}, "finish_reason": None}],
            }
        )
        for r in reasoning
    ]
    frames += [
        sse({**base, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]})
        for t in tokens
    ]
    if finish:
        frames.append(
            sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        )
    if usage is not None:
        tokens_in, tokens_out = usage
        frames.append(
            sse(
                {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": tokens_in,
                        "completion_tokens": tokens_out or len(tokens),
                        "total_tokens": tokens_in + (tokens_out or len(tokens)),
                    },
                }
            )
        )
    if done:
        frames.append(b"data: [DONE]\n\n")
    parts = paced(frames[:1], first_delay) + paced(frames[1:], interval, interval)
    return Reply(parts=parts, drop=drop, headers=headers or {})


def anthropic_stream(
    tokens: Sequence[str],
    *,
    first_delay: float = 0.0,
    interval: float = 0.0,
    thinking: Sequence[str] = (),
    stop: bool = True,
    drop: bool = False,
    error: dict[str, Any] | None = None,
) -> Reply:
    frames = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 7, "output_tokens": 1},
                },
            },
            "message_start",
        )
    ]
    index = 0
    if thinking:
        frames.append(
            sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": ""},
                },
                "content_block_start",
            )
        )
        frames += [
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": t},
                },
                "content_block_delta",
            )
            for t in thinking
        ]
        frames.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        index = 1
    frames.append(
        sse(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        )
    )
    frames.append(sse({"type": "ping"}, "ping"))
    frames += [
        sse(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": t},
            },
            "content_block_delta",
        )
        for t in tokens
    ]
    if error is not None:
        frames.append(sse(error, "error"))
        return Reply(parts=paced(frames[:1], first_delay) + paced(frames[1:], interval, interval))
    frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    frames.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(tokens)},
            },
            "message_delta",
        )
    )
    if stop:
        frames.append(sse({"type": "message_stop"}, "message_stop"))
    return Reply(
        parts=paced(frames[:1], first_delay) + paced(frames[1:], interval, interval), drop=drop
    )


def gemini_stream(
    tokens: Sequence[str],
    *,
    first_delay: float = 0.0,
    interval: float = 0.0,
    thoughts: Sequence[str] = (),
    finish: bool = True,
    drop: bool = False,
) -> Reply:
    def frame(parts: list[dict[str, Any]], done: bool, count: int) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if done:
            candidate["finishReason"] = "STOP"
        body = {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": 4,
                "candidatesTokenCount": count,
                "totalTokenCount": 4 + count,
            },
            "modelVersion": "m",
        }
        return f"data: {json.dumps(body)}\r\n\r\n".encode()

    frames = [frame([{"text": t, "thought": True}], False, 0) for t in thoughts]
    frames += [
        frame([{"text": t}], finish and i == len(tokens) - 1, i + 1) for i, t in enumerate(tokens)
    ]
    return Reply(
        parts=paced(frames[:1], first_delay) + paced(frames[1:], interval, interval), drop=drop
    )


def ollama_stream(
    tokens: Sequence[str],
    *,
    first_delay: float = 0.0,
    interval: float = 0.0,
    done: bool = True,
    error: str | None = None,
) -> Reply:
    def line(obj: dict[str, Any]) -> bytes:
        return (json.dumps(obj) + "\n").encode()

    frames = [
        line(
            {
                "model": "m",
                "created_at": "2026-01-01T00:00:00.000000000Z",
                "message": {"role": "assistant", "content": t},
                "done": False,
            }
        )
        for t in tokens
    ]
    if error is not None:
        frames.append(line({"error": error}))
    elif done:
        frames.append(
            line(
                {
                    "model": "m",
                    "created_at": "2026-01-01T00:00:01Z",
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "stop",
                    "total_duration": 1_000_000,
                    "prompt_eval_count": 9,
                    "eval_count": len(tokens),
                    "eval_duration": 900_000,
                }
            )
        )
    return Reply(
        parts=paced(frames[:1], first_delay) + paced(frames[1:], interval, interval),
        content_type="application/x-ndjson",
    )


def error_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(
        status=status, headers=headers or {}, parts=[(0.0, data)], content_type="application/json"
    )


def raw_reply(
    body: bytes,
    *,
    chunk_size: int | None = None,
    content_type: str = "text/event-stream; charset=utf-8",
    status: int = 200,
) -> Reply:
    """Replay recorded bytes verbatim, optionally split into fixed-size pieces (to put frame
    and UTF-8 boundaries at awkward places)."""
    if chunk_size is None:
        parts = [(0.0, body)]
    else:
        parts = [(0.0, body[i : i + chunk_size]) for i in range(0, len(body), chunk_size)]
    return Reply(status=status, parts=parts, content_type=content_type)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}
