"""Model panes in the real app (Pilot): what stays in view across resizes, header figures."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tui import all_done, ask, pane, settings_for, until
from tui.app import QuorumApp

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
        await pilot.pause()
        for name in NAMES:  # a narrow pane followed its answer to the end
            assert f"{name}59" in visible(app, name)
        await resize(pilot, 160, 45)
        for name in NAMES:  # the whole answer fits now: all of it is shown, from its start
            text = visible(app, name)
            assert f"{name}0 " in text and f"{name}59" in text, text
        await resize(pilot, 40, 12)
        await resize(pilot, 160, 45)
        for name in NAMES:
            text = visible(app, name)
            assert f"{name}0 " in text and f"{name}59" in text, text
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
