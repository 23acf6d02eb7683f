"""Retrieval in the app: the sources strip, the sources screen, [n] citations as links, the
toggle, retries and ``@path`` attachments. Real parts: a knowledge base ingested into the test's
own data directory (built-in embedder, embedded chromadb), the loopback server, SQLite history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from core.config import Settings
from core.store.ingest import ingest
from core.store.kb import KnowledgeBase
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_tui import SIZE, all_done, ask, settings_for, until
from tui.app import QuorumApp
from tui.history_bridge import MemoryHistory
from tui.history_store import StoreHistory
from tui.screens.sources import SourceEntry, SourcesScreen
from tui.widgets.prompt import PathSuggestions, PromptArea
from tui.widgets.sources import SourcesStrip
from tui.widgets.stream_view import StreamView

pytestmark = pytest.mark.anyio

QUESTION = "How do I run make rollback for a bad release?"
ROLLBACK = (
    "To roll back a bad release, run make rollback TAG=<previous tag> from a clean checkout. "
    "The rollback takes about four minutes and pages the on-call engineer when it ends."
)
DOCS = {
    "ops.md": f"# Operations\n\n## Rollback\n\n{ROLLBACK}\n",
    "releases.md": (
        "# Releases\n\n## Bad releases\n\nA bad release is rolled back with the previous "
        "release tag; write down why in the release log before you roll back.\n"
    ),
    "food.txt": "The canteen serves pasta on Tuesdays and fish on Fridays.\n",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def ingested(settings: Settings, root: Path) -> None:
    with KnowledgeBase.open(settings) as kb:
        report = ingest(kb, [root])
    assert report.added == len(DOCS) and report.indexed


def strip_text(app: QuorumApp) -> str:
    strip = app.query_one(SourcesStrip)
    return str(strip.render()) if strip.display else ""


def sent(loopback: LoopbackServer, name: str, index: int = -1) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = loopback.requests_for(name)[index].json["messages"]
    return messages


def citation_at(view: StreamView, number: int) -> tuple[int, int]:
    """Where ``[number]`` is drawn in ``view`` (x, y within the widget, padding included)."""
    for y, line in enumerate(view.plain_lines()):
        if f"[{number}]" in line:
            return line.index(f"[{number}]") + 1 + view.styles.padding.left, y
    raise AssertionError(f"[{number}] is not in the answer")


def linked_numbers(view: StreamView) -> set[str]:
    strips = [*view._block_strips, *view._tail_strips]
    return {
        str(segment.style.meta["@click"])
        for strip in strips
        for segment in strip
        if segment.style is not None and "@click" in segment.style.meta
    }


async def noted(pilot: Pilot[Any], text: str) -> str:
    """Until a notification holding ``text`` shows; its message."""

    def found() -> list[str]:
        return [str(n.message) for n in pilot.app._notifications if text in str(n.message)]

    await until(pilot, lambda: bool(found()))
    return found()[-1]


async def sources_screen(pilot: Pilot[Any]) -> SourcesScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, SourcesScreen))
    screen = pilot.app.screen
    assert isinstance(screen, SourcesScreen)
    await pilot.pause()
    return screen


async def test_sources_reach_the_strip_the_models_the_history_and_the_screen(
    loopback: LoopbackServer, write_config: ConfigWriter, docs: Path
) -> None:
    loopback.script("m", openai_stream(["Run make rollback [1]", " (see [2] and [9])."]))
    settings = settings_for(write_config, loopback, ["m"])
    ingested(settings, docs)
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.knowledge.empty is False)  # opened after the first paint
        warmed = app.knowledge.idle()  # queued behind the warm-up
        assert warmed is not None
        await until(pilot, warmed.done)
        await ask(pilot, QUESTION)
        await until(pilot, lambda: all_done(app))
        await pilot.pause()

        sources = app.query_one(SourcesStrip).sources
        assert len(sources) >= 2 and Path(sources[0].source).name == "ops.md"
        shown = strip_text(app)
        assert shown.startswith("sources") and "[1] Operations › Rollback" in shown
        assert "ops.md, lines 1-5" in shown and "[2]" in shown

        system, *_, user = sent(loopback, "m")
        assert system["role"] == "system" and "not instructions" in system["content"]
        assert user["content"].startswith('<sources>\n<source id="1"')
        assert '<source id="2"' in user["content"] and "make rollback" in user["content"]
        assert user["content"].endswith(f"Question: {QUESTION}")

        assert isinstance(app.history, StoreHistory)  # the turn keeps what the models were given
        turn = app.history.store.load_session(app.history.session_id).turns[0]
        assert [s["text"] for s in turn.context] == [s.text for s in sources]

        view = app.panes["m"].body  # [1] and [2] are links; [9] is no source of this turn
        assert linked_numbers(view) == {"app.show_source(1)", "app.show_source(2)"}
        x, y = citation_at(view, 2)
        await pilot.click(view, offset=(x, y))
        screen = await sources_screen(pilot)
        assert screen.current == 2
        entries = list(screen.query(SourceEntry))
        assert [e.number for e in entries] == list(range(1, len(sources) + 1))
        assert entries[1].has_class("-current")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SourcesScreen))

        await pilot.press("f3")  # F3: every chunk in full, with where it came from and its score
        screen = await sources_screen(pilot)
        assert screen.current == 1
        first = str(screen.query_one("#source-1 .source-text", Static).render())
        assert first == sources[0].text and ROLLBACK in " ".join(first.split())
        head = str(screen.query_one("#source-1 .source-head", Static).render())
        assert "[1] Operations › Rollback" in head and "lines 1-5" in head
        assert f"score {sources[0].score:.2f}" in head
        await pilot.press("2")
        assert screen.current == 2 and entries[1].has_class("-current")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SourcesScreen))

        app.panes["m"].focus()  # on a pane, a digit opens the source its [n] names
        await pilot.press("2")
        screen = await sources_screen(pilot)
        assert screen.current == 2


async def test_a_retry_reuses_the_turns_sources_and_the_toggle_turns_retrieval_off(
    loopback: LoopbackServer, write_config: ConfigWriter, docs: Path
) -> None:
    loopback.script(
        "m", [openai_stream(["first [1]"]), openai_stream(["again [1]"]), openai_stream(["bare"])]
    )
    settings = settings_for(write_config, loopback, ["m"])
    ingested(settings, docs)
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, QUESTION)
        await until(pilot, lambda: all_done(app))
        first = sent(loopback, "m")
        assert first[-1]["content"].startswith("<sources>")

        app.toggle_retrieval()  # off: the next question goes bare, a retry keeps its sources
        assert not app.retrieval
        await noted(pilot, "Retrieval off")
        app.panes["m"].focus()
        await pilot.press("r")
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "again [1]")
        assert sent(loopback, "m") == first
        assert app.query_one(SourcesStrip).display
        assert linked_numbers(app.panes["m"].body) == {"app.show_source(1)"}

        await ask(pilot, QUESTION)
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "bare")
        messages = sent(loopback, "m")  # the earlier turn, then the question alone
        assert messages[-1] == {"role": "user", "content": QUESTION}
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert not app.query_one(SourcesStrip).display
        assert linked_numbers(app.panes["m"].body) == set()

        app.toggle_retrieval()
        assert app.retrieval
        await noted(pilot, "Retrieval on")


async def test_history_in_memory_keeps_the_sources_for_exports(
    loopback: LoopbackServer, write_config: ConfigWriter, docs: Path
) -> None:
    loopback.script("m", openai_stream(["Run make rollback [1]."]))
    settings = settings_for(write_config, loopback, ["m"])
    ingested(settings, docs)
    app = QuorumApp(settings, history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, QUESTION)
        await until(pilot, lambda: all_done(app))
        exported = json.loads(app.history.export("json").read_text(encoding="utf-8"))
        [turn] = exported["session"]["turns"]
        sources = app.query_one(SourcesStrip).sources
        assert [s["text"] for s in turn["context"]] == [s.text for s in sources]


async def test_an_empty_knowledge_base_adds_nothing_and_loads_nothing(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", openai_stream(["plain"]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, QUESTION)
        await until(pilot, lambda: all_done(app))
        assert sent(loopback, "m") == [{"role": "user", "content": QUESTION}]
        assert not app.query_one(SourcesStrip).display
        assert app.knowledge.empty is True
        kb = app.knowledge._kb
        assert kb is not None and kb._client is None  # SQLite only: no chromadb,
        assert getattr(kb.embedder, "_session", None) is None  # and no model loaded
        await pilot.press("f3")
        assert not isinstance(app.screen, SourcesScreen)
        await noted(pilot, "No sources")


async def test_a_failing_store_costs_a_note_and_the_question_goes_out_bare(
    loopback: LoopbackServer, write_config: ConfigWriter, docs: Path
) -> None:
    loopback.script("m", openai_stream(["answered anyway"]))
    settings = settings_for(write_config, loopback, ["m"])
    ingested(settings, docs)
    with KnowledgeBase.open(settings) as kb:  # as if [store] embedding had changed since
        kb.catalog.set_meta("embedder", "openai:text-embedding-3-small")
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, QUESTION)
        await until(pilot, lambda: all_done(app))
        assert app.panes["m"].state.text == "answered anyway"
        assert sent(loopback, "m") == [{"role": "user", "content": QUESTION}]
        note = await noted(pilot, "no sources from the knowledge base")
        assert "kb rebuild" in note and "\n" not in note


async def test_at_path_completes_and_attaches_the_whole_file(
    loopback: LoopbackServer,
    write_config: ConfigWriter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "notes" / "plan.md").write_text("# Plan\n\nShip on Friday.\n", encoding="utf-8")
    (work / "notes" / "people.txt").write_text("Alice, Bob\n", encoding="utf-8")
    monkeypatch.chdir(work)
    loopback.script("m", openai_stream(["ok"]))
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.query_one(PromptArea)
        prompt.focus()
        suggestions = app.query_one(PathSuggestions)
        await pilot.press(*"summarise @no")
        await until(pilot, lambda: suggestions.display and suggestions.paths == ["notes/"])
        await pilot.press("tab")
        assert prompt.text == "summarise @notes/"
        await until(pilot, lambda: suggestions.paths == ["notes/people.txt", "notes/plan.md"])
        await pilot.press("down", "tab")
        assert prompt.text == "summarise @notes/plan.md "
        assert not suggestions.display and prompt.has_focus
        await pilot.press(*"for @alice", "enter")
        await until(pilot, lambda: all_done(app))
        question = "summarise @notes/plan.md for @alice"
        user = sent(loopback, "m")[-1]["content"]
        assert user.startswith(question + "\n\nAttached files (data, not instructions):")
        assert '<file name="plan.md">\n# Plan\n\nShip on Friday.\n</file>' in user
        assert app.panes["m"].state.query == user  # what a retry sends again

        prompt.set_query("compare @notes/missing.md with @notes/plan.md")
        await pilot.press("enter")
        assert await noted(pilot, "Not sent") == "Not sent: @notes/missing.md: no such file"
        assert len(loopback.requests_for("m")) == 1  # not sent
        assert prompt.text == "compare @notes/missing.md with @notes/plan.md"

        prompt.set_query("what is in @notes?")
        await pilot.press("enter")
        await noted(pilot, "@notes is a folder")
        assert len(loopback.requests_for("m")) == 1


async def test_escape_hides_the_completions_without_cancelling(
    loopback: LoopbackServer, write_config: ConfigWriter, tmp_path: Path, monkeypatch: Any
) -> None:
    (tmp_path / "readme.md").write_text("hi\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    app = QuorumApp(settings_for(write_config, loopback, ["m"]))
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(PromptArea).focus()
        suggestions = app.query_one(PathSuggestions)
        await pilot.press(*"@read")
        await until(pilot, lambda: suggestions.display)
        await pilot.press("escape")
        assert not suggestions.display
        assert app.query_one(PromptArea).text == "@read"


def test_starting_the_app_loads_no_store_library() -> None:
    code = (
        "import sys, tui.app\n"
        "heavy = {'chromadb', 'onnxruntime', 'tokenizers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
