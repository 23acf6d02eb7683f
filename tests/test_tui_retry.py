"""Retrying one model: allowed as soon as that model's run ended, and stored in the same turn."""

from __future__ import annotations

import json
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, openai_stream
from tests.test_cli import quorum
from tests.test_tui import (
    SIZE,
    all_done,
    ask,
    pane,
    read_text,
    run_command,
    settings_for,
    until,
)
from tui.app import QuorumApp

pytestmark = pytest.mark.anyio


def script_cancel_and_retry(loopback: LoopbackServer) -> None:
    loopback.script(
        "a",
        [
            openai_stream([f"x{i} " for i in range(400)], interval=0.05),
            openai_stream(["second ", "answer"]),
            openai_stream(["a two"]),
        ],
    )
    # b keeps answering for seconds after a was cancelled (it is never waited for to end early)
    loopback.script(
        "b",
        [openai_stream([f"b{i} " for i in range(100)], interval=0.08), openai_stream(["b two"])],
    )


async def cancel_then_retry_a(pilot: Pilot[Any], app: QuorumApp, server: LoopbackServer) -> None:
    await ask(pilot, "question one")
    await until(pilot, lambda: pane(app, "a").state.state == "streaming")
    pane(app, "a").focus()
    await pilot.press("c")
    await until(pilot, lambda: pane(app, "a").state.state == "cancelled")
    assert pane(app, "b").state.active  # b is still answering
    await pilot.press("r")
    refused = [n for n in app._notifications if "still answering" in str(n.message)]
    assert not refused
    assert pane(app, "a").state.state != "cancelled"  # the retry started at once
    await until(pilot, lambda: pane(app, "a").state.text == "second answer")
    await until(pilot, lambda: all_done(app))
    assert pane(app, "b").state.state == "done"
    assert len(server.requests_for("a")) == 2


def export_json(*args: str) -> dict[str, Any]:
    result = quorum("export", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["session"]  # type: ignore[no-any-return]


async def test_retry_after_cancel_replaces_the_answer_in_the_same_stored_turn(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    script_cancel_and_retry(loopback)
    app = QuorumApp(settings_for(write_config, loopback, ["a", "b"]))
    async with app.run_test(size=SIZE) as pilot:
        await cancel_then_retry_a(pilot, app, loopback)
        await ask(pilot, "question two")
        await until(pilot, lambda: all_done(app) and pane(app, "b").state.text == "b two")

    session = export_json("--last")
    assert [t["query"] for t in session["turns"]] == ["question one", "question two"]
    first = session["turns"][0]
    assert first["state"] == "done"
    answers = {r["model"]: r for r in first["responses"]}
    assert [r["model"] for r in first["responses"]] == ["a", "b"]
    assert answers["a"]["state"] == "done" and answers["a"]["text"] == "second answer"
    assert answers["a"]["error"] is None
    assert answers["b"]["state"] == "done" and answers["b"]["text"].startswith("b0 b1 ")
    markdown = quorum("export", "--last").stdout
    assert markdown.count("## Turn") == 2 and "x0" not in markdown
    listing = quorum("history", "--json")
    sessions = json.loads(listing.stdout)["sessions"]
    assert [s["turn_count"] for s in sessions] == [2]


async def test_retry_replaces_the_answer_in_the_in_memory_session_too(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    script_cancel_and_retry(loopback)
    settings = settings_for(write_config, loopback, ["a", "b"], history={"enabled": False})
    app = QuorumApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await cancel_then_retry_a(pilot, app, loopback)
        await run_command(pilot, "Export session as JSON")
        await until(pilot, lambda: app.last_export is not None)
    assert app.last_export is not None
    session = json.loads(read_text(app.last_export))["session"]
    assert len(session["turns"]) == 1
    answers = {r["model"]: r for r in session["turns"][0]["responses"]}
    assert answers["a"]["text"] == "second answer" and answers["a"]["state"] == "done"
    assert answers["b"]["state"] == "done"
