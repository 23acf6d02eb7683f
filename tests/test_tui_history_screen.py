"""The history screen (search, selection, focus, times) and the prompt's handling of blanks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tui import SIZE, all_done, ask, rendered_text, settings_for, until
from tui.app import QuorumApp
from tui.screens.history import HistoryScreen, render_record
from tui.timefmt import human_time
from tui.widgets.prompt import PromptArea

pytestmark = pytest.mark.anyio


def labels(screen: HistoryScreen, list_id: str) -> list[str]:
    options = screen.query_one(list_id, OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def open_history(pilot: Pilot[Any], app: QuorumApp) -> HistoryScreen:
    await pilot.press("f2")
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, HistoryScreen)
    return screen


async def test_search_without_a_match_says_so_and_clears_the_questions(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", [openai_stream(["one"]), openai_stream(["two"])])
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "alpha question")
        await until(pilot, lambda: all_done(app))
        await pilot.press("ctrl+n")
        await ask(pilot, "beta question")
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "two")

        screen = await open_history(pilot, app)
        assert labels(screen, "#queries") == ["beta question"]
        await pilot.press(*"zzzz")  # typed right after F2: it goes into the search
        await pilot.pause()
        assert screen.query_one("#search", Input).value == "zzzz"
        reader = rendered_text(screen.query_one("#answers", Static).render())
        assert "No session matches zzzz" in reader and "No past sessions" not in reader
        assert labels(screen, "#sessions") == [] and labels(screen, "#queries") == []
        assert screen.selected is None
        await pilot.press("ctrl+r")  # nothing selected: nothing is re-run
        assert isinstance(app.screen, HistoryScreen)

        screen.query_one("#search", Input).value = "alpha"
        await until(pilot, lambda: labels(screen, "#queries") == ["alpha question"])
        assert screen.selected is not None and screen.selected.query == "alpha question"


async def test_history_shows_local_human_times(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["ok"]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "when?")
        await until(pilot, lambda: all_done(app))
        screen = await open_history(pilot, app)
        [session] = labels(screen, "#sessions")
        assert session.startswith("today ") and "when?" in session
        assert "+00:00" not in session and "T" not in session.split()[1]
        assert screen.selected is not None
        reader = rendered_text(render_record(screen.selected))
        assert "today " in reader and "+00:00" not in reader


@pytest.fixture
def utc_plus_two(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TZ", "XYZ-2")  # POSIX: local time is UTC+2
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("utc_plus_two")
@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-12-04T12:05:00.123456+00:00", "today 14:05"),
        ("2026-12-04T22:30:00+00:00", "5 Dec 00:30"),
        ("2026-12-03T07:12:59.999999+00:00", "yesterday 09:12"),
        ("2026-12-02T23:30:00+00:00", "yesterday 01:30"),
        ("2026-03-01T12:05:00+00:00", "1 Mar 14:05"),
        ("2025-11-30T12:00:00+00:00", "2025-11-30"),
        ("2026-12-04T12:05:00", "today 14:05"),  # no zone: stored times are UTC
        ("not a time", "not a time"),
    ],
)
def test_human_time(stored: str, expected: str) -> None:
    now = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)  # 15:00 local
    assert human_time(stored, now) == expected


async def test_enter_on_a_blank_prompt_clears_it(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["ok"]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.query_one(PromptArea)
        await pilot.press("space", "space", "space", "enter")
        assert prompt.text == ""
        assert loopback.requests_for("m") == []
        await pilot.press(*"hi", "enter")
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "ok")
        assert loopback.requests_for("m")[0].json["messages"][-1]["content"] == "hi"
