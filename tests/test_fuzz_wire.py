"""Property-based tests of the four wire decoders and their framing (SSE, NDJSON).

Bytes reach the real `HttpProvider.stream` (request, status check, framing, the provider's
`FrameDecoder`, the end-of-stream check, error translation) through httpx's `MockTransport`,
which hands the response body to the client in exactly the pieces given: the split points are
the test's, not the kernel's. Whatever the bytes and however they are cut, a stream ends in one
of two ways: it is read, or it fails with a `ProviderError` that has a message. The sink checks
the `ChunkSink` contract on every call (text is a non-empty string, a token count an integer,
a finish reason a string), since a value of another type breaks the engine, the history writer
or the ``--json`` output further on. Recorded streams from ../shared/vectors (read in place, as
the conformance tests read them) are cut at arbitrary points and must read exactly as they do
whole; frames of those recordings with one value replaced by an arbitrary JSON value must still
end in one of the two ways.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import ModelSpec
from core.errors import ProviderError, gemini_retry_delay, retry_after_from_headers
from core.providers import HTTP_PROVIDERS
from core.providers.base import Message, sse_frames
from tests.vectors import Recording, discover, streaming, vectors_dir

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama")
VECTORS = vectors_dir()
RECORDINGS = [r for r in streaming(discover(VECTORS))] if VECTORS is not None else []
NO_VECTORS = "recorded streams not found: ../shared/vectors (or $QUORUM_VECTORS) is absent"
CONTENT_TYPES = {
    "openai": "text/event-stream; charset=utf-8",
    "anthropic": "text/event-stream; charset=utf-8",
    "gemini": "text/event-stream",
    "ollama": "application/x-ndjson",
}
FUZZ = settings(max_examples=60, deadline=None)


# --- the real client path, fed in given pieces ------------------------------------------------
class _Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


@dataclass
class Outcome:
    """What the stream delivered to its sink, and how it ended."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    usage: list[tuple[int | None, int | None]] = field(default_factory=list)
    finish: list[str | None] = field(default_factory=list)
    error: str | None = None  # the ProviderError's message, when it failed

    def read(self) -> tuple[str, str, list[tuple[int | None, int | None]], list[str | None]]:
        return "".join(self.text), "".join(self.reasoning), self.usage, self.finish


def _count(value: object) -> bool:
    return value is None or (type(value) is int and value >= 0)


class ContractSink:
    """A `ChunkSink` that records what it gets and fails on a value of the wrong type."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def text(self, text: str) -> None:
        assert isinstance(text, str) and text, f"text({text!r})"
        self.outcome.text.append(text)

    def reasoning(self, text: str) -> None:
        assert isinstance(text, str) and text, f"reasoning({text!r})"
        self.outcome.reasoning.append(text)

    def usage(self, tokens_in: int | None, tokens_out: int | None) -> None:
        assert _count(tokens_in) and _count(tokens_out), f"usage({tokens_in!r}, {tokens_out!r})"
        self.outcome.usage.append((tokens_in, tokens_out))

    def finish(self, reason: str | None) -> None:
        assert reason is None or isinstance(reason, str), f"finish({reason!r})"
        self.outcome.finish.append(reason)

    def loading(self) -> None:
        raise AssertionError("an HTTP provider never loads a model")

    def loaded(self) -> None:
        raise AssertionError("an HTTP provider never loads a model")

    def pause_s(self) -> float:
        return 0.0


def read_stream(
    protocol: str, pieces: Sequence[bytes], status: int = 200, content_type: str | None = None
) -> Outcome:
    """Serve ``pieces`` as the response body and read it through the real provider."""
    headers = {"content-type": content_type or CONTENT_TYPES[protocol]}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, stream=_Pieces(pieces))

    spec = ModelSpec(
        name="m", provider=protocol, model="m", base_url="http://fuzz.test", api_key="k" * 16
    )
    outcome = Outcome()

    async def run() -> None:
        transport = httpx.MockTransport(answer)
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            provider = HTTP_PROVIDERS[protocol](client)
            try:
                await provider.stream(spec, [Message("user", "hi")], ContractSink(outcome))
            except ProviderError as error:
                assert error.message.strip(), "a ProviderError without a message"
                assert str(error) == error.message
                # history keeps it, and an export with any other status is refused on import
                assert error.status is None or 100 <= error.status <= 599, error.status
                assert error.retry_after_s is None or error.retry_after_s >= 0
                assert isinstance(error.retryable, bool)
                outcome.error = error.message

    anyio.run(run)
    return outcome


def cut(body: bytes, points: Sequence[int]) -> list[bytes]:
    """``body`` in pieces, cut at each of ``points`` (taken modulo its length + 1)."""
    at = sorted({p % (len(body) + 1) for p in points})
    bounds = [0, *at, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


split_points = st.lists(st.integers(min_value=0, max_value=2**20), max_size=40)


# --- arbitrary bytes ----------------------------------------------------------------------------
# Bytes the wire formats care about, so that arbitrary bodies often frame into something.
_WIRE_WORDS = [
    b"data: ",
    b"data:",
    b"event: ",
    b"id: 1",
    b"retry: 5",
    b": comment",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n",
    b"[DONE]",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b",",
    b":",
    b'{"error": ',
    b'"text"',
    b'"content"',
    b'"done": true',
    b'"type": "message_stop"',
    b'"finishReason": "STOP"',
    b"\xff",
    b"\xe2\x80",
    b"\xc3",
    b"\x00",
    b"\x1b[31m",
]
wire_bytes = st.lists(
    st.one_of(st.binary(max_size=16), st.sampled_from(_WIRE_WORDS)), max_size=40
).map(b"".join)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@FUZZ
@given(
    body=wire_bytes,
    points=split_points,
    status=st.sampled_from([200, 200, 200, 400, 429, 500, 529]),
    content_type=st.sampled_from([None, "text/event-stream", "application/json", "text/plain"]),
)
def test_arbitrary_bytes_end_in_an_answer_or_a_provider_error(
    protocol: str, body: bytes, points: list[int], status: int, content_type: str | None
) -> None:
    outcome = read_stream(protocol, cut(body, points), status, content_type)
    if status >= 400:
        assert outcome.error is not None
        assert not outcome.text and not outcome.reasoning


@pytest.mark.parametrize("protocol", PROTOCOLS)
@FUZZ
@given(body=wire_bytes, points=split_points)
def test_how_arbitrary_bytes_are_cut_never_changes_what_is_read(
    protocol: str, body: bytes, points: list[int]
) -> None:
    whole = read_stream(protocol, [body])
    pieces = read_stream(protocol, cut(body, points))
    assert (pieces.read(), pieces.error) == (whole.read(), whole.error)


# --- recorded streams, cut anywhere -------------------------------------------------------------
def _recordings(protocol: str | None = None) -> list[Recording]:
    return [r for r in RECORDINGS if protocol is None or r.protocol == protocol]


@functools.cache
def _whole(rec: Recording) -> Outcome:
    return read_stream(rec.protocol, [rec.body], rec.status, rec.content_type)


def _recorded(protocol: str | None = None) -> st.SearchStrategy[Recording]:
    found = _recordings(protocol)
    if not found:
        pytest.skip(NO_VECTORS)
    return st.sampled_from(found)


@pytest.mark.skipif(not RECORDINGS, reason=NO_VECTORS)
@FUZZ
@given(data=st.data())
def test_a_recorded_stream_reads_the_same_however_it_is_cut(data: st.DataObject) -> None:
    rec = data.draw(_recorded(), label="recording")
    points = data.draw(split_points, label="cut at")
    whole = _whole(rec)
    pieces = read_stream(rec.protocol, cut(rec.body, points), rec.status, rec.content_type)
    assert (pieces.read(), pieces.error) == (whole.read(), whole.error), rec.id


@pytest.mark.skipif(not RECORDINGS, reason=NO_VECTORS)
def test_the_recordings_are_mostly_read_whole_without_error() -> None:
    # The cut-anywhere property compares against the whole read: it must mostly be an answer,
    # or the property would only be comparing one error with another.
    answered = [r for r in RECORDINGS if r.status < 400 and _whole(r).error is None]
    assert len(answered) >= len([r for r in RECORDINGS if r.status < 400]) * 0.9
    assert {r.protocol for r in answered} == set(PROTOCOLS)
    assert all(_whole(r).error for r in RECORDINGS if r.status >= 400)


# --- recorded frames with one value replaced ----------------------------------------------------
def _frames_of(rec: Recording) -> list[tuple[str, str]]:
    """The (event, data) frames of a recording, read by the real SSE framing (NDJSON: lines)."""
    if rec.protocol == "ollama":
        return [("", line) for line in rec.body.decode().split("\n") if line.strip()]
    response = httpx.Response(200, headers={"content-type": rec.content_type}, content=rec.body)
    frames: list[tuple[str, str]] = []

    async def collect() -> None:
        frames.extend([frame async for frame in sse_frames(response)])

    anyio.run(collect)
    return frames


@functools.cache
def _decoded_frames(rec: Recording) -> list[tuple[str, Any]]:
    if rec.is_http_error:  # the error body is one JSON document
        return [("", json.loads(rec.body))]
    decoded: list[tuple[str, Any]] = []
    for event, data in _frames_of(rec):
        try:
            decoded.append((event, json.loads(data)))
        except ValueError:
            decoded.append((event, data))  # [DONE]: kept as it is
    return decoded


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replaced(value[head], rest, new)
    return copy


def _encode(rec: Recording, frames: Sequence[tuple[str, Any]]) -> bytes:
    out: list[str] = []
    for event, value in frames:
        data = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if rec.is_http_error:
            out.append(data)
        elif rec.protocol == "ollama":
            out.append(data + "\n")
        else:
            out.append((f"event: {event}\n" if event else "") + f"data: {data}\n\n")
    return "".join(out).encode()


json_scalars: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "STOP", "stop", "text", "text_delta", "error", "message_stop"])
    | st.from_regex(r"[0-9.]{1,5}s", fullmatch=True)  # durations, like Gemini's "34.4s"
)
json_values: st.SearchStrategy[Any] = json_scalars | st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.mark.skipif(not RECORDINGS, reason=NO_VECTORS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_recorded_frame_with_any_value_replaced_reads_or_fails_cleanly(
    protocol: str, data: st.DataObject
) -> None:
    usable = [r for r in _recordings(protocol) if _decoded_frames(r)]
    with_error = [r for r in usable if r.is_http_error or b"error" in r.body]
    recordings = st.sampled_from(usable)
    if with_error:  # errors are rare in the recordings: pick one a third of the time
        recordings = st.one_of(recordings, recordings, st.sampled_from(with_error))
    rec = data.draw(recordings, label="recording")
    frames = list(_decoded_frames(rec))
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        index = data.draw(st.integers(0, len(frames) - 1), label="frame")
        event, value = frames[index]
        path = data.draw(st.sampled_from(_paths(value)), label="path")
        frames[index] = (event, _replaced(value, path, data.draw(json_values, label="new value")))
    outcome = read_stream(protocol, [_encode(rec, frames)], rec.status, rec.content_type)
    if rec.is_http_error:
        assert outcome.error is not None


# --- error bodies -------------------------------------------------------------------------------
def _error_shaped(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The shapes the four providers' error bodies take, with any values in their fields."""
    durations = st.from_regex(r"\s?[0-9.]{0,5}s?", fullmatch=True)
    delay = _either(durations, value)
    detail = st.fixed_dictionaries({}, optional={"@type": value, "retryDelay": delay})
    inner = st.fixed_dictionaries(
        {},
        optional={
            "code": value,
            "message": value,
            "status": value,
            "type": value,
            "details": _either(st.lists(_either(detail, value), max_size=2), value),
        },
    )
    body = st.fixed_dictionaries({"error": _either(inner, value)})
    return _either(body, st.lists(body, min_size=1, max_size=2))


def _either(
    first: st.SearchStrategy[Any], second: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """One or the other, even odds (``|`` flattens unions: a union of nine would win 9 to 1)."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


@settings(max_examples=200, deadline=None)
@given(body=_error_shaped(json_values), status=st.sampled_from([400, 404, 429, 500, 503, 529]))
def test_any_error_body_becomes_a_message_with_its_status(body: Any, status: int) -> None:
    for protocol in PROTOCOLS:
        outcome = read_stream(protocol, [json.dumps(body).encode()], status, "application/json")
        assert outcome.error is not None


retry_texts = _either(
    st.from_regex(r"\s?[0-9.eE+-]{0,6}s?\s?", fullmatch=True), st.text(max_size=40)
)


@settings(max_examples=200, deadline=None)
@given(delay=retry_texts)
def test_any_gemini_retry_delay_is_a_delay_or_none(delay: str) -> None:
    found = gemini_retry_delay({"error": {"details": [{"retryDelay": delay}]}})
    assert found is None or found >= 0


@settings(max_examples=200, deadline=None)
@given(
    header=st.sampled_from(["retry-after", "retry-after-ms"]),
    value=_either(
        retry_texts,
        st.from_regex(
            r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{1,6} "
            r"\d\d:\d\d:\d\d [A-Z+-]{1,5}\d{0,4}",
            fullmatch=True,
        ),
    ),
)
def test_any_retry_after_header_is_a_delay_or_none(header: str, value: str) -> None:
    found = retry_after_from_headers({header: value}, now=0.0)
    assert found is None or found >= 0
