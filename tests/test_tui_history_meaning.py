"""Ctrl+R and the history screen find past questions by meaning as well as by words; the index
is caught up in the background after each turn. Real parts: the history's SQLite file, the
built-in embedder and an embedded chromadb, all in the test's own data directory."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static
from textual.worker import WorkerCancelled

from core import paths
from core.config import StoreSettings
from core.history import HistoryStore
from core.store.history_index import HistoryIndex
from core.store.kb import KnowledgeBase
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_store_history import record
from tests.test_tui import SIZE, all_done, ask, rendered_text, settings_for, until
from tui.app import QuorumApp
from tui.history_store import StoreHistory
from tui.screens.history import MEANING_GROUP, HistoryScreen, render_record
from tui.screens.query_search import QuerySearchScreen
from tui.widgets.prompt import PromptArea

pytestmark = pytest.mark.anyio

GIT = "How do I undo my last git commit?"
DINNER = "What should I cook for dinner tonight?"
RISOTTO = "A mushroom risotto: arborio rice, stock, butter and parmesan."
TURNS = [
    (GIT, "Run git reset --soft HEAD~1: the commit goes, its changes stay staged."),
    (DINNER, RISOTTO),
    ("How do I make sourdough bread rise better?", "Feed the starter twice; proof it warm."),
    ("What is the capital of Australia?", "Canberra, not Sydney."),
]


@pytest.fixture
def seeded() -> list[tuple[str, int]]:
    """Past turns in the app's own history file (no index built: the app catches it up)."""
    with HistoryStore.open() as store:
        return [record(store, q, a) for q, a in TURNS]


def labels(screen: Any, list_id: str) -> list[str]:
    options = screen.query_one(list_id, OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def note(screen: Any) -> str:
    widget = screen.query_one("#search-note", Static)
    return rendered_text(widget.render()).strip() if widget.display else ""


async def settled(pilot: Pilot[Any], screen: Any, needle: str) -> None:
    """Until the screen has seen ``needle`` and its meaning search (if any) has reported."""
    await until(pilot, lambda: screen.needle == needle)
    while running := [
        w for w in pilot.app.workers if w.group == MEANING_GROUP and not w.is_finished
    ]:
        with suppress(WorkerCancelled):  # made pointless by a newer key press meanwhile
            await pilot.app.workers.wait_for_complete(running)
    await pilot.pause()  # the finished search's message is handled


async def open_search(pilot: Pilot[Any], app: QuorumApp) -> QuerySearchScreen:
    await pilot.press("ctrl+r")
    await until(pilot, lambda: isinstance(app.screen, QuerySearchScreen))
    screen = app.screen
    assert isinstance(screen, QuerySearchScreen)
    return screen


async def open_history(pilot: Pilot[Any], app: QuorumApp) -> HistoryScreen:
    await pilot.press("f2")
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
    screen = app.screen
    assert isinstance(screen, HistoryScreen)
    return screen


def found(rows: list[str], text: str) -> str:
    [row] = [r for r in rows if text in r]
    return row


@pytest.mark.usefixtures("seeded")
async def test_ctrl_r_finds_a_question_by_meaning_and_by_words(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot, app)
        await pilot.press(*"revert previous commit")  # no word in common with the question
        await settled(pilot, screen, "revert previous commit")
        row = found(labels(screen, "#matches"), GIT)
        assert row.split()[0] == "meaning" and "words" not in row
        assert note(screen) == ""

        screen.query_one(Input).value = "creamy italian rice with fungi"  # the answer matches
        await settled(pilot, screen, "creamy italian rice with fungi")
        row = found(labels(screen, "#matches"), DINNER)
        assert row.split()[0] == "meaning"
        assert RISOTTO[:30] in row  # the snippet: the start of the answer that matched

        screen.refill("sourdough")  # words still match, listed before the loop runs again
        assert labels(screen, "#matches")[0].split()[0] == "words"
        await settled(pilot, screen, "sourdough")
        row = found(labels(screen, "#matches"), "sourdough bread")
        assert row.split()[0] in {"words", "words+meaning"}

        screen.query_one(Input).value = "revert previous commit"
        await settled(pilot, screen, "revert previous commit")
        await pilot.press("enter")  # the question found by meaning goes into the prompt
        await until(pilot, lambda: not isinstance(app.screen, QuerySearchScreen))
        assert app.query_one(PromptArea).text == GIT


@pytest.mark.usefixtures("seeded")
async def test_history_screen_finds_a_question_by_meaning_with_its_snippet(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(pilot, app)
        await pilot.press(*"creamy italian rice with fungi")
        await settled(pilot, screen, "creamy italian rice with fungi")
        rows = labels(screen, "#sessions")
        row = found(rows, DINNER)
        assert row.split()[2] == "meaning"  # after the time ("today 14:05")
        assert RISOTTO[:30] in row
        await until(pilot, lambda: screen.selected is not None and screen.selected.query == DINNER)
        assert labels(screen, "#queries") == [DINNER]
        assert "mushroom risotto" in rendered_text(render_record(screen.selected))

        screen.query_one("#search", Input).value = "parmesan arborio"  # words of the answer
        await settled(pilot, screen, "parmesan arborio")
        row = found(labels(screen, "#sessions"), DINNER)
        assert row.split()[2] == "words+meaning"

        screen.query_one("#search", Input).value = "zzzz"
        await settled(pilot, screen, "zzzz")
        assert labels(screen, "#sessions") == []
        assert "No session matches zzzz" in rendered_text(
            screen.query_one("#answers", Static).render()
        )


async def test_memory_history_searches_by_words_only(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["Run git reset --soft HEAD~1."]))
    settings = settings_for(write_config, loopback, ["m"], history={"enabled": False})
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, GIT)
        await until(pilot, lambda: all_done(app))
        assert not app.history.persistent

        screen = await open_search(pilot, app)
        await pilot.press(*"git commit")
        await settled(pilot, screen, "git commit")
        assert found(labels(screen, "#matches"), GIT).split()[0] == "words"
        assert note(screen) == "by words only: history is kept in memory only"
        screen.query_one(Input).value = "revert previous commit"
        await settled(pilot, screen, "revert previous commit")
        assert labels(screen, "#matches") == []
        await pilot.press("escape")

        history = await open_history(pilot, app)
        await pilot.press(*"reset soft")  # a word of the answer
        await settled(pilot, history, "reset soft")
        assert found(labels(history, "#sessions"), GIT).split()[2] == "words"
        assert note(history) == "by words only: history is kept in memory only"
        assert not [w for w in app.workers if w.group == MEANING_GROUP]  # never started


@pytest.mark.usefixtures("seeded")
async def test_a_broken_store_leaves_the_words_and_one_line(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    (paths.data_dir() / "store").write_text("not a directory", encoding="utf-8")
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_history(pilot, app)
        await pilot.press(*"git commit")
        await settled(pilot, screen, "git commit")
        assert found(labels(screen, "#sessions"), GIT).split()[2] == "words"
        shown = note(screen)
        assert shown.startswith("by words only: ") and "\n" not in shown
        assert "Traceback" not in shown


async def test_the_index_catches_up_after_each_turn_in_the_background(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    question = "How can I speed up my slow laptop?"
    loopback.script("m", openai_stream(["Close background apps and add more RAM."]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, question)
        await until(pilot, lambda: all_done(app))  # the turn has ended and been written
        history = app.history
        assert isinstance(history, StoreHistory)
        await asyncio.wrap_future(history.meaning.idle())  # the catch-up the turn queued ran

        # Another reader of the same store (as `quorum history --search` would be) finds the
        # question by meaning, without catching anything up itself.
        kb = KnowledgeBase(StoreSettings(), root=paths.data_dir() / "store")
        try:
            with HistoryStore.open() as store:
                assert store.search("make my computer faster") == []
                index = HistoryIndex(kb, store.path)
                hits = index.search("make my computer faster")
                [turn] = store.turn_summaries([(hits[0].session_id, hits[0].seq)])
        finally:
            kb.close()
        assert turn.query == question
        assert len(kb_keys()) == 2  # the question and its answer


def kb_keys() -> set[str]:
    kb = KnowledgeBase(StoreSettings(), root=paths.data_dir() / "store")
    try:
        return kb.catalog.history_keys()
    finally:
        kb.close()
