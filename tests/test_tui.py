"""The terminal app driven with Textual's Pilot against the loopback provider server."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot

from core.config import Settings, load_settings
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, error_reply, openai_stream
from tui.app import QuorumApp
from tui.screens.history import HistoryScreen, render_record
from tui.widgets.grid import PaneGrid, grid_shape
from tui.widgets.pane import ModelPane
from tui.widgets.prompt import PromptArea
from tui.widgets.stream_view import StreamView
from tui.widgets.summary import SummaryPanel

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


def model(server: LoopbackServer, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "openai",
        "model": name,
        "base_url": server.url + "/v1",
        "api_key": "test-key-123456",
        "max_retries": 0,
        **extra,
    }


def settings_for(
    write_config: ConfigWriter, server: LoopbackServer, names: Sequence[str], **tables: Any
) -> Settings:
    return load_settings(write_config(models=[model(server, n) for n in names], **tables))


async def until(pilot: Pilot[Any], condition: Callable[[], bool], limit_s: float = 15.0) -> None:
    """Let the app run until ``condition`` holds (the time limit only bounds a failing test)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the app never reached the expected state")
        await pilot.pause(0.02)


def rendered_text(renderable: Any) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def pane(app: QuorumApp, name: str) -> ModelPane:
    return app.panes[name]


def shown(app: QuorumApp, name: str) -> str:
    return "\n".join(pane(app, name).body.plain_lines())


async def ask(pilot: Pilot[Any], text: str) -> None:
    prompt = pilot.app.query_one(PromptArea)
    prompt.focus()
    prompt.set_query(text)
    await pilot.press("enter")


def all_done(app: QuorumApp) -> bool:
    return not app.busy and all(
        p.state.state in {"done", "failed", "cancelled"} for p in app.panes.values()
    )


async def test_question_streams_into_one_pane_per_model(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m1", openai_stream(["Hello", " **world**", "\n\n- one\n- two"], interval=0.01))
    loopback.script("m2", openai_stream(["Bonjour"], interval=0.01))
    app = QuorumApp(settings_for(write_config, loopback, ["m1", "m2"]))
    async with app.run_test(size=SIZE) as pilot:
        assert set(app.panes) == {"m1", "m2"}
        await pilot.press(*"hello?")
        await pilot.press("enter")
        await until(pilot, lambda: all_done(app))
        await pilot.pause()
        assert pane(app, "m1").state.text == "Hello **world**\n\n- one\n- two"
        text = shown(app, "m1")
        assert "Hello world" in text  # rendered as Markdown, not raw asterisks
        assert "one" in text and "two" in text
        assert "Bonjour" in shown(app, "m2")
        assert app.query_one(PromptArea).text == ""
        summary = str(app.query_one(SummaryPanel).render())
        assert "2/2 done" in summary
        request = loopback.requests_for("m1")[0].json
        assert request["messages"][-1] == {"role": "user", "content": "hello?"}


async def test_failure_shows_status_and_provider_message(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("bad", error_reply(400, {"error": {"message": "model [bold]nope[/] gone"}}))
    loopback.script("ok", openai_stream(["fine"]))
    app = QuorumApp(settings_for(write_config, loopback, ["bad", "ok"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "q")
        await until(pilot, lambda: all_done(app))
        await pilot.pause()
        assert pane(app, "bad").state.state == "failed"
        text = shown(app, "bad")
        assert "HTTP 400" in text
        assert "model [bold]nope[/] gone" in text  # shown literally: no markup injection
        assert "failed bad" in str(app.query_one(SummaryPanel).render())
        assert pane(app, "bad").has_class("-failed")


async def test_escape_cancels_every_model_in_flight(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    slow = openai_stream([f"t{i} " for i in range(400)], interval=0.05)
    loopback.script("a", slow)
    loopback.script("b", slow)
    app = QuorumApp(settings_for(write_config, loopback, ["a", "b"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "long")
        await until(pilot, lambda: all(p.state.state == "streaming" for p in app.panes.values()))
        await pilot.press("escape")
        await until(pilot, lambda: all_done(app))
        await pilot.pause()
        assert {p.state.state for p in app.panes.values()} == {"cancelled"}
        assert "Cancelled." in shown(app, "a")
        assert not pane(app, "a").state.text.endswith("t399 ")


async def test_pane_keys_cancel_retry_copy_and_maximize(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script(
        "a",
        [
            openai_stream([f"x{i} " for i in range(400)], interval=0.05),
            openai_stream(["second ", "answer"]),
        ],
    )
    loopback.script("b", openai_stream(["b answer"]))
    app = QuorumApp(settings_for(write_config, loopback, ["a", "b"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "question one")
        await until(pilot, lambda: pane(app, "a").state.state == "streaming")
        pane(app, "a").focus()
        await pilot.press("c")
        await until(pilot, lambda: all_done(app))
        assert pane(app, "a").state.state == "cancelled"
        assert pane(app, "b").state.state == "done"  # only the focused model was cancelled

        await pilot.press("r")
        await until(pilot, lambda: all_done(app) and pane(app, "a").state.state == "done")
        assert pane(app, "a").state.text == "second answer"
        assert loopback.requests_for("a")[1].json["messages"][-1]["content"] == "question one"
        assert len(loopback.requests_for("b")) == 1

        await pilot.press("y")
        assert app.clipboard == "second answer"

        await pilot.press("m")
        assert app.screen.maximized is pane(app, "a")
        await pilot.press("escape")
        assert app.screen.maximized is None


async def test_retrying_a_finished_answer_resends_the_first_tries_context(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("a", [openai_stream(["first"]), openai_stream(["again"])])
    app = QuorumApp(settings_for(write_config, loopback, ["a"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "only question")
        await until(pilot, lambda: all_done(app))
        pane(app, "a").focus()
        await pilot.press("r")
        await until(pilot, lambda: all_done(app) and pane(app, "a").state.text == "again")
        first, retried = loopback.requests_for("a")
        # the retry must not see its own earlier answer as conversation history
        assert retried.json["messages"] == first.json["messages"]


async def test_tab_moves_between_panes(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    app = QuorumApp(settings_for(write_config, loopback, ["a", "b", "c"]))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.focused, PromptArea)
        await pilot.press("tab")
        assert app.focused is pane(app, "a")
        await pilot.press("tab")
        assert app.focused is pane(app, "b")


async def test_reasoning_is_folded_away_but_viewable(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("r", openai_stream(["Answer"], reasoning=["Let me ", "think hard"]))
    app = QuorumApp(settings_for(write_config, loopback, ["r"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "why?")
        await until(pilot, lambda: all_done(app))
        await pilot.pause()
        folded = pane(app, "r").reasoning
        assert folded.display and folded.collapsed
        assert "4 words" in str(folded.title)
        assert "think" not in shown(app, "r")
        folded.collapsed = False
        await pilot.pause()
        assert "Let me think hard" in str(pane(app, "r").reasoning_view.render())


async def test_query_history_recall_and_persistence(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["ok"]))
    settings = settings_for(write_config, loopback, ["m"])
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        for question in ("first question", "second question"):
            await ask(pilot, question)
            await until(pilot, lambda: all_done(app))
        prompt = app.query_one(PromptArea)
        await pilot.press("up")
        assert prompt.text == "second question"
        await pilot.press("up")
        assert prompt.text == "first question"
        await pilot.press("down")
        assert prompt.text == "second question"
        await pilot.press("down")
        assert prompt.text == ""

    again = QuorumApp(settings)  # a new session: the queries come back from the store
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("up")
        assert again.query_one(PromptArea).text == "second question"
        await pilot.press("ctrl+r")
        await pilot.press(*"first")
        await pilot.press("enter")
        await pilot.pause()
        assert again.query_one(PromptArea).text == "first question"


async def test_follow_up_sends_the_models_own_conversation(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", [openai_stream(["Paris"]), openai_stream(["2 million"])])
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "capital of France?")
        await until(pilot, lambda: all_done(app))
        await ask(pilot, "population?")
        await until(pilot, lambda: all_done(app) and pane(app, "m").state.text == "2 million")
        messages = loopback.requests_for("m")[1].json["messages"]
        assert [m["content"] for m in messages] == ["capital of France?", "Paris", "population?"]


async def test_palette_disables_and_enables_a_model(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("a", openai_stream(["A"]))
    loopback.script("b", openai_stream(["B"]))
    app = QuorumApp(settings_for(write_config, loopback, ["a", "b"]))
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Disable model: b")
        await until(pilot, lambda: "b" not in app.panes and len(app.query(ModelPane)) == 1)
        await ask(pilot, "q")
        await until(pilot, lambda: all_done(app))
        assert loopback.requests_for("b") == []
        await run_command(pilot, "Enable model: b")
        await until(pilot, lambda: [p.model_name for p in app.query(ModelPane)] == ["a", "b"])
        assert app.retrieval  # [store] rag is on by default
        await run_command(pilot, "Toggle retrieval")
        assert not app.retrieval
        assert any("Retrieval off" in str(n.message) for n in app._notifications)


async def run_command(pilot: Pilot[Any], command: str) -> None:
    await pilot.press("ctrl+p")
    await until(
        pilot,
        lambda: (
            pilot.app.screen.id == "--command-palette"
            or type(pilot.app.screen).__name__ == "CommandPalette"
        ),
    )
    await pilot.press(*command)
    # the palette searches in a worker: wait until the highlighted hit is the typed command
    await until(pilot, lambda: _palette_has(pilot, command))
    await pilot.press("enter")
    await until(pilot, lambda: type(pilot.app.screen).__name__ != "CommandPalette")


def _palette_has(pilot: Pilot[Any], command: str) -> bool:
    from textual.command import CommandList

    try:
        options = pilot.app.screen.query_one(CommandList)
    except Exception:
        return False
    if options.highlighted is None or options.option_count == 0:
        return False
    prompt = options.get_option_at_index(options.highlighted).prompt
    text = prompt.plain if hasattr(prompt, "plain") else str(prompt)
    return command.lower() in " ".join(text.lower().split())


async def test_export_from_palette_writes_the_session(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["exported answer"]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "to export")
        await until(pilot, lambda: all_done(app))
        await run_command(pilot, "Export session as Markdown")
        await until(pilot, lambda: app.last_export is not None)
        path = app.last_export
        assert path is not None
        content = read_text(path)
        assert "to export" in content and "exported answer" in content
        assert any(str(path) in str(n.message) for n in app._notifications)


async def test_switching_to_a_light_theme_rehighlights_code_already_shown(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["```python\n", "def f():\n    return 1\n", "```\n"]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "code please")
        await until(pilot, lambda: all_done(app))
        view = pane(app, "m").query_one(StreamView)

        def code_styles() -> set[str]:
            return {
                str(seg.style) for strip in view._block_strips for seg in strip if "def" in seg.text
            }

        dark = code_styles()
        app.theme = "quorum-light"
        await until(pilot, lambda: code_styles() != dark)


async def test_history_screen_shows_past_answers_and_reruns(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["remembered answer"]))
    settings = settings_for(write_config, loopback, ["m"])
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "old question")
        await until(pilot, lambda: all_done(app))
    again = QuorumApp(settings)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: type(again.screen).__name__ == "HistoryScreen")
        await pilot.pause()
        screen = again.screen
        assert isinstance(screen, HistoryScreen) and screen.selected is not None
        reader = rendered_text(render_record(screen.selected))
        assert "old question" in reader and "remembered answer" in reader
        await pilot.press("ctrl+r")
        await until(pilot, lambda: all_done(again) and again.panes["m"].state.query != "")
        assert again.panes["m"].state.query == "old question"
        assert len(loopback.requests_for("m")) == 2


@pytest.mark.parametrize(
    ("count", "width", "height", "expected"),
    [
        (1, 120, 30, (1, 30)),
        (2, 120, 30, (2, 30)),
        (4, 120, 30, (2, 15)),
        (5, 160, 30, (3, 15)),
        (16, 200, 40, (4, 10)),
        (16, 80, 20, (2, 8)),
    ],
)
def test_grid_shape(count: int, width: int, height: int, expected: tuple[int, int]) -> None:
    assert grid_shape(count, width, height) == expected


async def test_many_models_scroll_and_long_answers_follow_the_end(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    names = [f"m{i:02d}" for i in range(16)]
    lines = [f"line {i}\n\n" for i in range(60)] + ["THE END"]
    for name in names:
        loopback.script(name, openai_stream(lines))
    app = QuorumApp(settings_for(write_config, loopback, names))
    async with app.run_test(size=(100, 30)) as pilot:
        grid = app.query_one(PaneGrid)
        await until(pilot, lambda: grid.max_scroll_y > 0)  # 16 panes do not fit: it scrolls
        await ask(pilot, "count")
        await until(pilot, lambda: all_done(app))
        await pilot.pause()
        last = pane(app, "m15")
        assert "THE END" in last.body.plain_lines()[-1]
        assert last.body.lines_below == 0  # the pane followed the stream to its end
        last.focus()
        await pilot.pause()
        assert grid.scroll_y > 0  # focusing a pane below the fold scrolls it into view
        await pilot.press("home")
        assert last.body.lines_below > 0
