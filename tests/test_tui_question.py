"""The question being answered stays on screen above the panes."""

from __future__ import annotations

import pytest
from textual.geometry import Region

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tui import SIZE, all_done, ask, settings_for, until
from tui.app import QuorumApp
from tui.screens.history import HistoryScreen
from tui.widgets.grid import PaneGrid
from tui.widgets.question import QuestionStrip

pytestmark = pytest.mark.anyio


def strip_lines(app: QuorumApp) -> list[str]:
    """The strip's lines as drawn on screen."""
    strip = app.query_one(QuestionStrip)
    if not strip.display or strip.region.height == 0:
        return []
    drawn = strip.render_lines(Region(0, 0, *strip.outer_size))
    return [line.text.strip() for line in drawn]


async def test_the_question_is_shown_above_the_panes(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", [openai_stream(["a"]), openai_stream(["b"]), openai_stream(["c"])])
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        assert strip_lines(app) == []  # nothing asked yet
        await ask(pilot, "what is\n\n the  \x1b[31mcapital\x1b[0m of France?")
        await until(pilot, lambda: all_done(app))
        await pilot.pause()
        assert strip_lines(app) == ["› what is the capital of France?"]
        strip = app.query_one(QuestionStrip)
        assert strip.region.bottom <= app.query_one(PaneGrid).region.y

        long = "why " + " ".join(f"word{i}" for i in range(200))
        await ask(pilot, long)
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "b")
        await pilot.pause()
        lines = strip_lines(app)
        assert len(lines) == 2 and lines[0].startswith("› why word0")
        assert lines[1].endswith("…") and "word199" not in lines[1]

        await pilot.press("f2")  # re-run the first question from history
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        await until(pilot, lambda: screen.selected is not None)
        assert screen.selected is not None and screen.selected.query.startswith("what is")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "c")
        await pilot.pause()
        assert strip_lines(app) == ["› what is the capital of France?"]

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert strip_lines(app) == []
