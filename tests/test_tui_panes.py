"""Model panes in the real app (Pilot): what stays in view across resizes, header figures."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from core.config import load_settings
from core.events import Finished, FirstToken, ModelStats, Started, TextDelta
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tui import all_done, ask, pane, settings_for, until
from tui.app import QuorumApp
from tui.history_bridge import MemoryHistory

pytestmark = pytest.mark.anyio

NAMES = ("a", "b", "c", "d")


def visible(app: QuorumApp, name: str) -> str:
    """The rows the pane's answer actually paints at its current size."""
    body = pane(app, name).body
    return "\n".join(body.render_line(y).text for y in range(body.size.height))


def words(name: str, count: int) -> list[str]:
    return [f"{name}{i}" for i in range(count)]


async def resize(pilot: Pilot[Any], width: int, height: int) -> None:
    await pilot.resize_terminal(width, height)
    await pilot.pause()
    await pilot.pause()


async def test_answers_stay_in_view_across_resizes(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    for name in NAMES:
        loopback.script(name, openai_stream([w + " " for w in words(name, 60)]))
    app = QuorumApp(settings_for(write_config, loopback, NAMES))
    async with app.run_test(size=(40, 12)) as pilot:
        await ask(pilot, "sixty words")
        await until(pilot, lambda: all_done(app))
        # a narrow pane followed its answer to the end (also once the consensus has marked
        # the panes' headers, which can take a header row from the body)
        await until(pilot, lambda: all(f"{n}59" in visible(app, n) for n in NAMES))
        await resize(pilot, 160, 45)
        for name in NAMES:  # the whole answer fits now: all of it is shown, from its start
            text = visible(app, name)
            assert f"{name}0 " in text and f"{name}59" in text, text
        await resize(pilot, 40, 12)
        await resize(pilot, 160, 45)
        for name in NAMES:
            text = visible(app, name)
            assert f"{name}0 " in text and f"{name}59" in text, text
            assert "↓" not in header_rows(app, name)  # and nothing is said to be below
        await resize(pilot, 60, 20)
        for name in NAMES:  # it no longer fits: the end stays in view, no blank rows below it
            text = visible(app, name).rstrip()
            assert text.endswith(f"{name}59"), text


async def test_a_pane_scrolled_back_keeps_its_place_across_resizes(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    paragraphs = [f"part{i} " + " ".join(words(f"p{i}w", 12)) + "\n\n" for i in range(20)]
    loopback.script("a", openai_stream(paragraphs))
    app = QuorumApp(settings_for(write_config, loopback, ["a"]))
    async with app.run_test(size=(60, 20)) as pilot:
        await ask(pilot, "twenty paragraphs")
        await until(pilot, lambda: all_done(app))
        pane(app, "a").focus()
        await pilot.press("home", *["down"] * 9)
        assert visible(app, "a").split()[0] == "part3"
        for size in ((100, 30), (40, 14), (60, 20)):
            await resize(pilot, *size)
            # the paragraph the user scrolled to is still the first one in view
            assert visible(app, "a").split()[0] == "part3", (size, visible(app, "a"))


MODELS = (  # realistic names: the header has to fit them and every figure
    ("gpt-4o-mini", "openai"),
    ("claude-3-5-haiku", "anthropic"),
    ("gemini-2.0-flash", "gemini"),
    ("llama3.1:8b-instruct", "ollama"),
)


def header_rows(app: QuorumApp, name: str) -> str:
    header = pane(app, name).header
    return "\n".join(header.render_line(y).text for y in range(header.size.height))


@pytest.mark.parametrize(("count", "width"), [(4, 160), (3, 180), (4, 80), (1, 60)])
async def test_pane_headers_show_every_figure(
    write_config: ConfigWriter, count: int, width: int
) -> None:
    models = MODELS[:count]
    config = write_config(
        models=[{"name": n, "provider": p, "model": n, "api_key": "k"} for n, p in models]
    )
    app = QuorumApp(load_settings(config), history=MemoryHistory())
    stats = ModelStats(ttft_ms=60.0, total_ms=1200.0, tokens_out=50, tokens_per_s=45.0)
    async with app.run_test(size=(width, 40)) as pilot:
        for name, provider in models:
            app.panes[name].start("q")
            for event in (
                Started(name, provider, 1),
                FirstToken(name, 60.0),
                TextDelta(name, "An answer."),
                Finished(name, "stop", stats),
            ):
                app.apply_event(event)
        await app.tick()
        await pilot.pause()
        for name, _ in models:
            rows = header_rows(app, name)
            assert "…" not in rows, rows  # nothing cut off
            assert name in rows and "done" in rows, rows
            assert "0.06s" in rows and "1.2s" in rows and "45" in rows, rows
            assert "t/s" in rows or "tok/s" in rows, rows
            assert "An answer." in visible(app, name)
