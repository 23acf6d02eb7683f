"""Model text is untrusted: no terminal control sequence survives into the event stream, even
when it is split across deltas."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest

from core.config import ModelSpec
from core.events import ReasoningDelta, TextDelta
from core.sanitize import StreamSanitizer, strip_control
from tests.conftest import run_fanout
from tests.loopback import (
    LoopbackServer,
    Reply,
    anthropic_stream,
    gemini_stream,
    ollama_stream,
    openai_stream,
)

Spec = Callable[..., ModelSpec]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE = [
    ("osc52 clipboard, BEL", "copy \x1b]52;c;cm0gLXJmIH4=\x07done", "copy done"),
    ("osc52 clipboard, ST", "copy \x1b]52;c;cm0gLXJmIH4=\x1b\\done", "copy done"),
    ("window title", "\x1b]0;pwned\x07title", "title"),
    ("clear screen", "a\x1b[2Jb\x1b[Hc", "abc"),
    ("colour", "\x1b[1;31mred\x1b[0m", "red"),
    ("8-bit CSI", "x\x9b2Jy", "xy"),
    ("8-bit OSC", "x\x9d0;t\x9cy", "xy"),
    ("DCS", "x\x1bPq#0;2;0;0;0\x1b\\y", "xy"),
    ("carriage return overwrite", "rm -rf /\rls", "rm -rf /ls"),
    ("bell and backspace", "a\x07b\x08c", "abc"),
    ("charset designation", "a\x1b(Bb", "ab"),
    ("keeps newlines, tabs and unicode", "line1\n\tcafé 你好 🎉\u2028end", None),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in HOSTILE], ids=[name for name, _, _ in HOSTILE]
)
def test_strip_control(text: str, expected: str | None) -> None:
    clean = strip_control(text)
    assert clean == (text if expected is None else expected)
    assert "\x1b" not in clean
    assert not CONTROL.search(clean)


def feed_all(pieces: Sequence[str]) -> list[str]:
    sanitizer = StreamSanitizer()
    out = [sanitizer.feed(p) for p in pieces]
    out.append(sanitizer.flush())
    return out


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in HOSTILE], ids=[name for name, _, _ in HOSTILE]
)
def test_stream_sanitizer_every_two_way_split(text: str, expected: str | None) -> None:
    want = text if expected is None else expected
    for cut in range(len(text) + 1):
        out = feed_all([text[:cut], text[cut:]])
        assert "".join(out) == want, f"split at {cut}"
        assert not any("\x1b" in piece or CONTROL.search(piece) for piece in out)


def test_stream_sanitizer_one_character_at_a_time() -> None:
    text = "".join(t for _, t, _ in HOSTILE)
    out = feed_all(list(text))
    assert "".join(out) == strip_control(text)
    assert not any(CONTROL.search(piece) for piece in out)


def test_plain_text_passes_through_unheld() -> None:
    sanitizer = StreamSanitizer()
    assert sanitizer.feed("Hello, ") == "Hello, "
    assert sanitizer.feed("world\n") == "world\n"
    assert sanitizer.flush() == ""


def test_an_unterminated_sequence_is_dropped_at_the_end() -> None:
    assert feed_all(["ok \x1b]52;c;never-terminated"]) == ["ok ", ""]


def test_a_runaway_sequence_is_not_held_forever() -> None:
    sanitizer = StreamSanitizer()
    sanitizer.feed("start \x1b]52;c;")
    released = "".join(sanitizer.feed("A" * 1000) for _ in range(10))
    assert "\x1b" not in released
    assert len(released) > 0  # held text is bounded: the stream moves on


# --- end to end through the engine ---------------------------------------------------------
PROVIDER_STREAMS: dict[str, Callable[[list[str]], Reply]] = {
    "openai": lambda tokens: openai_stream(tokens),
    "anthropic": lambda tokens: anthropic_stream(tokens),
    "gemini": lambda tokens: gemini_stream(tokens),
    "ollama": lambda tokens: ollama_stream(tokens),
}


@pytest.mark.anyio
@pytest.mark.parametrize("provider", list(PROVIDER_STREAMS))
async def test_no_control_sequence_reaches_text_events(
    provider: str, loopback: LoopbackServer, spec: Spec
) -> None:
    tokens = ["safe ", "\x1b]52;c;Y3VybCBldmlsLnNo", "\x07 after ", "\x1b[2", "J end", "\x1b"]
    loopback.script("hostile", PROVIDER_STREAMS[provider](tokens))

    run = await run_fanout([spec(provider, "hostile")])

    deltas = run.types("hostile", TextDelta)
    assert deltas
    for delta in deltas:
        assert "\x1b" not in delta.text and "\x07" not in delta.text
        assert not CONTROL.search(delta.text)
    assert run.result.responses["hostile"].text == "safe  after  end"
    assert run.result.responses["hostile"].ok


@pytest.mark.anyio
async def test_no_control_sequence_reaches_reasoning_events(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("sneaky", openai_stream(["answer"], reasoning=["think \x1b]0;", "x\x07ing"]))

    run = await run_fanout([spec("openai", "sneaky")])

    assert all("\x1b" not in d.text for d in run.types("sneaky", ReasoningDelta))
    assert run.result.responses["sneaky"].reasoning == "think ing"
