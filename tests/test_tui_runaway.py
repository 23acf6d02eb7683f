"""A runaway answer (issue #11): one paragraph that never ends costs each frame what is new.

Counted in the real app (Pilot): the characters handed to the Markdown renderer per frame
stay bounded while a single paragraph grows to megabytes, and every word is still there —
the last ones in view while the pane follows the end, the first ones after Home.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console
from textual.strip import Strip

from core.config import load_settings
from core.events import Finished, FirstToken, ModelStats, Started, TextDelta
from tests.conftest import ConfigWriter
from tests.test_tui_panes import resize, visible
from tui.app import QuorumApp
from tui.history_bridge import MemoryHistory
from tui.markdown import FastMarkdown
from tui.widgets import stream_view

pytestmark = pytest.mark.anyio


class CountingMarkdown(FastMarkdown):
    """What the panes hand to the Markdown renderer."""

    chars = 0

    def __init__(self, markup: str, code_theme: str = "monokai") -> None:
        CountingMarkdown.chars += len(markup)
        super().__init__(markup, code_theme)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[CountingMarkdown]:
    CountingMarkdown.chars = 0
    monkeypatch.setattr(stream_view, "FastMarkdown", CountingMarkdown)
    return CountingMarkdown


def one_model(write_config: ConfigWriter, name: str = "a") -> QuorumApp:
    config = write_config(models=[{"name": name, "provider": "openai", "model": name}])
    return QuorumApp(load_settings(config), history=MemoryHistory())


def frames(words: int, per_frame: int) -> Iterator[str]:
    """One paragraph, never a blank line: ``w0 w1 w2 …``, a frame's worth at a time."""
    for start in range(0, words, per_frame):
        yield "".join(f"w{i} " for i in range(start, min(words, start + per_frame)))


def all_words(app: QuorumApp, name: str = "a") -> list[str]:
    return " ".join(app.panes[name].body.plain_lines()).split()


async def test_a_megabytes_long_paragraph_costs_each_frame_what_is_new(
    write_config: ConfigWriter, counted: type[CountingMarkdown]
) -> None:
    app = one_model(write_config)
    words = 320_000  # about 2.4 MB, one paragraph
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.panes["a"]
        pane.start("repeat yourself")
        app.apply_event(Started("a", "openai", 1))
        app.apply_event(FirstToken("a", 50.0))
        received = 0
        worst = 0
        for delta in frames(words, per_frame=1000):
            app.apply_event(TextDelta("a", delta))
            received += len(delta)
            before = counted.chars
            await app.tick()
            worst = max(worst, counted.chars - before)
            # what one frame renders is bounded by the frame's new text, not by the answer
            assert counted.chars - before < 4 * len(delta) + 40_000, (received, worst)
        assert received > 2_400_000
        assert counted.chars < 5 * received  # every character rendered a few times at most
        await pilot.pause()
        assert f"w{words - 1}" in visible(app, "a")  # following the end: the last words show
        assert all_words(app) == [f"w{i}" for i in range(words)]  # nothing lost, nothing twice

        before = counted.chars
        stats = ModelStats(ttft_ms=50.0, total_ms=60_000.0, tokens_out=words)
        app.apply_event(Finished("a", "stop", stats))
        await app.tick()
        await pilot.pause()
        assert counted.chars - before < 40_000  # ending it does not render it all again
        assert f"w{words - 1}" in visible(app, "a")
        assert all_words(app) == [f"w{i}" for i in range(words)]

        pane.focus()
        await pilot.press("home")
        assert visible(app, "a").split()[:3] == ["w0", "w1", "w2"]


PARAGRAPH = [  # inline markup and citations across the cuts, and a word that must be folded
    "the **store** keeps `WAL` mode [1] and *backups* [2], see [3] or [docs](https://x.io) ",
    "then a_b & c<d; ",
    "x" * 130 + " ",
    "**bold across a long stretch of words that wraps over more than one line** ",
]


def rendered(text: str, width: int) -> list[str]:
    """What the whole paragraph renders to at once (as the pane drew it before issue #11)."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    lines = console.render_lines(FastMarkdown(text), console.options, pad=False)
    return [Strip(line).text for line in lines]


async def test_a_long_paragraph_is_drawn_as_if_rendered_whole_and_rewraps_on_resize(
    write_config: ConfigWriter,
) -> None:
    app = one_model(write_config)
    text = "".join(PARAGRAPH[i % len(PARAGRAPH)] for i in range(2000))  # ~155 KB
    async with app.run_test(size=(70, 24)) as pilot:
        pane = app.panes["a"]
        pane.start("q", sources=3)
        app.apply_event(Started("a", "openai", 1))
        for start in range(0, len(text), 997):
            app.apply_event(TextDelta("a", text[start : start + 997]))
            await app.tick()
        body = pane.body
        width = body.size.width
        assert body.plain_lines() == rendered(text, width)  # the seams never show
        pane.focus()
        await pilot.press("home")  # the first lines: long settled, still links to the sources
        rows = [body.render_line(y) for y in range(body.size.height)]
        actions = {seg.style.meta.get("@click") for row in rows for seg in row if seg.style}
        assert {f"app.show_source({n})" for n in (1, 2, 3)} <= actions
        await pilot.press("end")
        app.apply_event(Finished("a", "stop", ModelStats(total_ms=1.0)))
        await app.tick()
        assert body.plain_lines() == rendered(text, width)
        await resize(pilot, 110, 30)
        assert body.size.width != width
        assert body.plain_lines() == rendered(text, body.size.width)  # re-wrapped
        assert visible(app, "a").rstrip().endswith("wraps over more than one line")


async def test_a_huge_answer_at_once_is_drawn_a_bounded_amount_at_a_time(
    write_config: ConfigWriter,
    counted: type[CountingMarkdown],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_config(
        models=[{"name": n, "provider": "openai", "model": n} for n in ("a", "b")]
    )
    app = QuorumApp(load_settings(config), history=MemoryHistory())
    text = "".join(f"Paragraph p{i} says w{i}x and more words.\n\n" for i in range(50_000))
    assert len(text) > 2_000_000
    async with app.run_test(size=(120, 30)) as pilot:
        big, other = app.panes["a"], app.panes["b"]
        for name in ("a", "b"):
            app.panes[name].start("q")
            app.apply_event(Started(name, "openai", 1))
        spent: list[int] = []
        render = stream_view.StreamView._render_pending

        def counting(view: stream_view.StreamView, width: int, grown: object = None) -> None:
            before = counted.chars
            render(view, width, grown)  # type: ignore[arg-type]
            spent.append(counted.chars - before)

        monkeypatch.setattr(stream_view.StreamView, "_render_pending", counting)
        app.apply_event(TextDelta("a", text))
        app.apply_event(Finished("a", "stop", ModelStats(total_ms=1.0)))
        await app.tick()
        assert not big.body.caught_up
        app.apply_event(TextDelta("b", "the other answer"))
        app.apply_event(Finished("b", "stop", ModelStats(total_ms=1.0)))
        await app.tick()
        assert not big.body.caught_up  # the other pane was drawn in between
        assert other.state.state == "done"
        assert "the other answer" in visible(app, "b")
        for _ in range(10_000):
            if big.body.caught_up:
                break
            await pilot.pause()
        assert big.body.caught_up
        assert len(spent) > 20 and max(spent) < 40_000  # never all of it in one go
        await pilot.pause()
        assert "p49999" in visible(app, "a")  # following the end
        assert all_words(app).count("Paragraph") == 50_000
        big.focus()
        await pilot.press("home")
        assert visible(app, "a").split()[:2] == ["Paragraph", "p0"]
