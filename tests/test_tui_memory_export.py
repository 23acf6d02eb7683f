"""With history recording off, every export format still works, through `core.export`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import quorum
from tests.test_tui import SIZE, all_done, ask, read_text, run_command, settings_for, until
from tui.app import QuorumApp

pytestmark = pytest.mark.anyio


async def test_each_format_exports_from_the_in_memory_session(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("m", [openai_stream(["a <b>bold</b> **claim**"]), openai_stream(["more"])])
    settings = settings_for(write_config, loopback, ["m"], history={"enabled": False})
    app = QuorumApp(settings)
    written: dict[str, Path] = {}
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "first <question>")
        await until(pilot, lambda: all_done(app))
        await ask(pilot, "second")
        await until(pilot, lambda: all_done(app) and app.panes["m"].state.text == "more")
        for fmt, label in (("md", "Markdown"), ("json", "JSON"), ("html", "HTML")):
            app.last_export = None
            await run_command(pilot, f"Export session as {label}")
            await until(pilot, lambda: app.last_export is not None)
            assert app.last_export is not None
            written[fmt] = app.last_export
    assert not app.history.persistent

    assert {fmt: path.suffix for fmt, path in written.items()} == {
        "md": ".md",
        "json": ".json",
        "html": ".html",
    }
    markdown = read_text(written["md"])
    assert "## Turn 1" in markdown and "## Turn 2" in markdown and "**claim**" in markdown

    data = json.loads(read_text(written["json"]))
    assert data["format"] == "quorum-session"
    turns = data["session"]["turns"]
    assert [t["query"] for t in turns] == ["first <question>", "second"]
    assert turns[0]["responses"][0]["text"] == "a <b>bold</b> **claim**"
    assert turns[0]["responses"][0]["provider"] == "openai"
    assert turns[0]["state"] == "done"

    html = read_text(written["html"])
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<b>bold</b>" not in html and "first &lt;question&gt;" in html

    # the JSON written from memory is a real export: the importer accepts it as it is
    restored = quorum("import", str(written["json"]))
    assert restored.returncode == 0, restored.stderr
    again = quorum("export", "--last", "--format", "json")
    assert json.loads(again.stdout)["session"]["turns"] == turns


async def test_exporting_an_empty_in_memory_session_says_so(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    settings = settings_for(write_config, loopback, ["m"], history={"enabled": False})
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Export session as HTML")
        await until(pilot, lambda: any("no answers" in str(n.message) for n in app._notifications))
    assert app.last_export is None
