"""The pieces under the panes: block splitting, query history, header figures."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text
from textual.strip import Strip

from core.events import (
    Failed,
    FailureKind,
    Finished,
    FirstToken,
    Loading,
    ModelStats,
    Retrying,
    Started,
)
from tui.blocks import BlockSplitter
from tui.markdown import FastMarkdown, GrowingText
from tui.pane_state import PaneState, header_text, notice_text
from tui.widgets.prompt import QueryHistory

ANSWER = (
    "Intro paragraph\nstill intro.\n\n"
    "- one\n- two\n  continued\n- three\n\n"
    "```py\nx = 1\n\ny = 2\n```\n"
    "## Heading\n"
    "tail text"
)


def split(text: str, step: int) -> tuple[list[str], list[bool], str]:
    splitter = BlockSplitter()
    blocks = []
    for i in range(0, len(text), step):
        splitter.feed(text[i : i + step])
        blocks += splitter.take()
    return [b.text for b in blocks], [b.joined for b in blocks], splitter.tail


def test_blocks_are_the_same_however_the_stream_is_cut() -> None:
    expected = split(ANSWER, len(ANSWER))
    for step in (1, 2, 7, 50):
        assert split(ANSWER, step) == expected
    texts, joined, tail = expected
    assert texts == [
        "Intro paragraph\nstill intro.",
        "- one",
        "- two\n  continued",
        "- three",
        "```py\nx = 1\n\ny = 2\n```",
        "## Heading",
    ]
    assert joined == [False, False, True, True, False, False]
    assert tail == "tail text"


def test_open_code_fence_stays_in_the_tail_even_across_blank_lines() -> None:
    splitter = BlockSplitter()
    splitter.feed("```\na\n\nb\n")
    assert splitter.take() == []
    assert splitter.in_code and splitter.tail == "```\na\n\nb"
    splitter.feed("```\n")
    assert [b.code for b in splitter.take()] == [True]


def test_close_finishes_the_tail() -> None:
    splitter = BlockSplitter()
    splitter.feed("last words")
    splitter.close()
    assert [b.text for b in splitter.take()] == ["last words"]
    assert splitter.tail == ""


def test_query_history_walk_keeps_the_draft() -> None:
    history = QueryHistory(["newest", "older"])
    assert history.older("my draft") == "newest"
    assert history.older("newest") == "older"
    assert history.older("older") is None
    assert history.newer() == "newest"
    assert history.newer() == "my draft"
    assert history.newer() is None
    history.add("brand new")
    assert history.search("NEW") == ["brand new", "newest"]


def test_local_model_shows_loading_until_its_first_token() -> None:
    state = PaneState("local", "local")
    state.reset("q")
    state.apply(Loading("local"))
    state.apply(Started("local", "local", 1))
    assert state.state_label() == "loading"
    state.apply(FirstToken("local", 1500.0))
    assert state.state_label() == "streaming"


def test_pane_state_labels_and_messages() -> None:
    now = [100.0]
    state = PaneState("m", "openai", clock=lambda: now[0])
    state.reset("q")
    state.apply(Started("m", "openai", 1))
    state.apply(Retrying("m", 2, 3.0, "HTTP 429: slow down"))
    assert state.state_label() == "retrying in 3s"
    notice = notice_text(state)
    assert notice is not None and "HTTP 429: slow down" in notice.plain
    state.apply(Started("m", "openai", 2))
    state.apply(FirstToken("m", 250.0))
    now[0] += 1.0
    assert "ttft 0.25s" in header_text(state, {}).plain
    state.apply(Finished("m", "stop", ModelStats(250.0, 2000.0, 3, 40, 22.9, 2)))
    plain = header_text(state, {}).plain
    assert "done" in plain and "2.0s" in plain and "23 tok/s" in plain and "40 tok" in plain
    state.apply(Failed("m", FailureKind.HTTP, "[red]boom[/red]", 503))
    notice = notice_text(state)
    assert notice is not None and notice.plain == "✗ HTTP 503: [red]boom[/red]"


def test_header_moves_figures_to_a_second_line_and_shortens_them_to_fit() -> None:
    state = PaneState("gpt-4o-mini", "openai")
    state.reset("q")
    state.apply(Started("gpt-4o-mini", "openai", 1))
    state.apply(Finished("gpt-4o-mini", "stop", ModelStats(60.0, 1200.0, 3, 50, 45.0, 1)))
    wide = header_text(state, {}, width=80).plain
    assert wide == "gpt-4o-mini  openai  done  ttft 0.06s · 1.2s · 45 tok/s · 50 tok"
    assert header_text(state, {}, width=35).plain == (
        "gpt-4o-mini  openai  done\nttft 0.06s · 1.2s · 45 tok/s"
    )
    assert header_text(state, {}, width=22, below=4).plain == (
        "gpt-4o-mini  done  ↓4\n0.06s · 1.2s · 45t/s"
    )


def test_tail_is_read_from_an_offset_and_a_long_line_is_queued_not_rebuilt() -> None:
    splitter = BlockSplitter()
    splitter.feed("- item\n\nfirst line\nsecond ")
    for i in range(10_000):
        splitter.feed(f"w{i} ")
    assert [b.text for b in splitter.take()] == ["- item"]
    tail = "first line\nsecond " + "".join(f"w{i} " for i in range(10_000))
    assert splitter.tail == tail and splitter.tail_length == len(tail)
    for start in (0, 5, 10, 11, 17, len(tail) - 3, len(tail)):
        assert splitter.tail_since(start) == tail[start:]
    assert splitter.tail_paragraph
    assert len(splitter._partial) + len(splitter._recent) < 10_000 // 32  # pieces, not deltas
    splitter.feed("\n\n- a list\n")
    assert not splitter.tail_paragraph


RUNAWAY = [  # inline markup and citations across the cuts, and a word that must be folded
    "the **store** keeps `WAL` mode [1] and *backups* [2], see [3] or [docs](https://x.io) ",
    "then a_b & c<d; ",
    "x" * 130 + " ",
    "**bold across a long stretch of words that wraps over more than one line** ",
]


def test_growing_text_freezes_all_but_the_last_lines() -> None:
    console = Console(width=40, file=io.StringIO(), color_system=None)
    calls: list[int] = []

    def render(text: str) -> list[Strip]:
        calls.append(len(text))
        lines = console.render_lines(FastMarkdown(text), console.options, pad=False)
        return [Strip(line) for line in lines]

    text = "".join(RUNAWAY[i % len(RUNAWAY)] for i in range(400))
    grown = GrowingText(render, markdown=True)
    live: list[Strip] = []
    for end in range(0, len(text) + 50, 50):
        live = grown.advance(text[grown.start : end])
        assert len(text[grown.start : end]) < 2_000  # the live part stays short
    assert [s.text for s in grown.frozen + live] == [s.text for s in render(text)]
    assert max(calls[:-1]) < 2_000
    assert sum(calls[:-1]) < 30 * len(text)


def test_code_tail_freezes_whole_and_folded_lines() -> None:
    console = Console(width=30, file=io.StringIO(), color_system=None)

    def render(text: str) -> list[Strip]:
        lines = console.render_lines(Text(text, style="dim"), console.options, pad=False)
        return [Strip(line) for line in lines]

    text = "".join(f"def f{i}():\n    return {'x' * (i % 70)}\n\n" for i in range(300))
    grown = GrowingText(render, markdown=False)
    live: list[Strip] = []
    for end in range(0, len(text) + 40, 40):
        live = grown.advance(text[grown.start : end])
    assert grown.start > len(text) - 2_000
    assert [s.text for s in grown.frozen + live] == [s.text for s in render(text)]
