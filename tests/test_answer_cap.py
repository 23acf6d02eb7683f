"""max_answer_chars: a long answer is stopped at the cap and marked ``cut``, everywhere it shows —
the engine's events, ``quorum ask --json`` and its exit code, history and exports, the app's pane.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.answer_cap import CUT, cut_message
from core.cli.live import LiveView
from core.config import ConfigError, load_settings
from core.events import Finished, ReasoningDelta, TextDelta
from core.providers.local import LocalProvider
from core.textbuf import TextBuffer
from tests.conftest import ConfigWriter, run_fanout
from tests.loopback import (
    LoopbackServer,
    Reply,
    anthropic_stream,
    gemini_stream,
    ollama_stream,
    openai_stream,
)
from tests.test_cli import model, quorum
from tests.test_engine import Spec, wait_for_server
from tests.test_local import NEVER_STOP, local_spec, run_local
from tests.test_tui import SIZE, ask, pane, shown, until
from tests.test_tui import model as tui_model
from tui.app import QuorumApp
from tui.pane_state import TERMINAL
from tui.widgets.summary import SummaryPanel

CAP = 1000
PIECE = "abcdefghij" * 10  # 100 characters a token
BIG = [PIECE] * 2000  # a 200,000-character answer


STREAMS: dict[str, Callable[..., Reply]] = {
    "openai": openai_stream,
    "anthropic": anthropic_stream,
    "gemini": gemini_stream,
    "ollama": ollama_stream,
}


def endless(provider: str) -> Reply:
    """2,000 characters, then "more " every 10 ms for five minutes: a stream that only ends
    early when the client hangs up (the server sees its next write fail)."""
    return STREAMS[provider](BIG[:20] + ["more "] * 30_000, interval=0.01)


def stored(home: Path, model_name: str) -> tuple[str, str, str | None, str | None]:
    """(state, text, finish_reason, error) of the model's last recorded answer."""
    (database,) = home.rglob("history.sqlite3")
    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT state, text, finish_reason, error FROM responses WHERE model = ? "
            "ORDER BY id DESC LIMIT 1",
            (model_name,),
        ).fetchone()
    return row[0], row[1], row[2], row[3]


# --- through the real CLI -----------------------------------------------------------------------
def test_ask_json_cuts_the_long_answer_only_and_history_keeps_the_cap(
    loopback: LoopbackServer, write_config: ConfigWriter, _isolated_user_dirs: Path
) -> None:
    loopback.script("big", openai_stream(BIG))
    loopback.script("own", anthropic_stream(BIG[:50]))
    loopback.script("small", ollama_stream(["Four", "."]))
    config = write_config(
        models=[
            model(loopback, "openai", "big"),
            model(loopback, "anthropic", "own", max_answer_chars=250),  # its own cap wins
            model(loopback, "ollama", "small"),
        ],
        limits={"max_answer_chars": CAP},
    )

    result = quorum("ask", "--config", str(config), "--json", "--no-synthesis", "Say a lot")

    assert result.returncode == 0, result.stderr  # a cut answer is an answer
    data = json.loads(result.stdout)
    big, own, small = data["responses"]
    assert (big["state"], big["finish_reason"], big["ok"]) == ("cut", "cut", True)
    assert big["text"] == "".join(BIG)[:CAP]
    assert big["error"] == "cut at 1,000 characters (max_answer_chars); the rest was not kept"
    assert (own["state"], len(own["text"]), own["error"]) == ("cut", 250, cut_message(250))
    assert (small["state"], small["text"], small["error"]) == ("done", "Four.", None)
    assert small["finish_reason"] == "stop"
    assert data["consensus"]["answered"] == 3  # the kept text is measured like any answer

    home = _isolated_user_dirs / "quorum"
    assert stored(home, "big") == ("cut", "".join(BIG)[:CAP], "cut", cut_message(CAP))
    assert stored(home, "small") == ("done", "Four.", "stop", None)

    exported = quorum("export", data["session_id"], "--format", "md", "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    assert "big — openai/big · cut" in exported.stdout
    assert f"> ✂ {cut_message(CAP)}" in exported.stdout
    back = json.loads(
        quorum("export", data["session_id"], "--format", "json", "--config", str(config)).stdout
    )
    (turn,) = back["session"]["turns"]
    assert [r["state"] for r in turn["responses"]] == ["cut", "cut", "done"]


def test_the_stream_is_stopped_at_the_cap(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("endless", endless("openai"))
    config = write_config(
        models=[model(loopback, "openai", "endless", idle_timeout_s=600, timeout_s=600)],
        limits={"max_answer_chars": CAP},
    )

    result = quorum("ask", "--config", str(config), "--json", "--no-history", "Go on")

    assert result.returncode == 0, result.stderr  # it ended, though the stream never would
    (answer,) = json.loads(result.stdout)["responses"]
    assert (answer["state"], len(answer["text"])) == ("cut", CAP)
    assert "more" not in answer["text"]
    assert loopback.wait_for(lambda s: s.closed_by_client == 1 and s.open_streams == 0)


def test_text_output_says_where_the_answer_was_cut(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("big", openai_stream(BIG))
    config = write_config(
        models=[model(loopback, "openai", "big")], limits={"max_answer_chars": CAP}
    )

    result = quorum("ask", "--config", str(config), "--no-history", "Say a lot")

    assert result.returncode == 0, result.stderr
    assert f"big │ {cut_message(CAP)}" in result.stdout.splitlines()
    row = next(line for line in result.stdout.splitlines() if line.startswith("big  "))
    assert row.split()[1] == "cut"  # the timing table's state


# --- the engine: every wire format, text and reasoning counted together ------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("provider", STREAMS)
async def test_every_wire_format_is_cut_and_its_connection_closed(
    loopback: LoopbackServer, spec: Spec, provider: str
) -> None:
    loopback.script("m", endless(provider))
    loopback.script("other", openai_stream(["whole"]))

    run = await run_fanout(
        [spec(provider, "m", max_answer_chars=CAP + 50), spec("openai", "other")]
    )

    finished = run.terminal("m")
    assert isinstance(finished, Finished)
    assert (finished.finish_reason, finished.message) == (CUT, cut_message(CAP + 50))
    kept = "".join(e.text for e in run.types("m", TextDelta))
    assert kept == "".join(BIG)[: CAP + 50]
    assert run.result.responses["m"].state == "cut" and run.result.any_ok
    assert run.result.responses["other"].text == "whole"
    assert run.result.responses["other"].state == "done"
    await wait_for_server(loopback, lambda s: s.closed_by_client == 1 and s.open_streams == 0)


@pytest.mark.anyio
async def test_reasoning_counts_toward_the_cap(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("r", openai_stream(["x" * 300] * 5, reasoning=["t" * 400, "u" * 400]))

    run = await run_fanout([spec("openai", "r", max_answer_chars=CAP)])

    reasoning = "".join(e.text for e in run.types("r", ReasoningDelta))
    text = "".join(e.text for e in run.types("r", TextDelta))
    assert (reasoning, text) == ("t" * 400 + "u" * 400, "x" * 200)
    assert run.result.responses["r"].state == "cut"


@pytest.mark.anyio
async def test_an_answer_exactly_at_the_cap_is_whole(loopback: LoopbackServer, spec: Spec) -> None:
    loopback.script("exact", openai_stream([PIECE] * 10))

    run = await run_fanout([spec("openai", "exact", max_answer_chars=CAP)])

    finished = run.terminal("exact")
    assert isinstance(finished, Finished)
    assert (finished.finish_reason, finished.message) == ("stop", None)
    assert run.result.responses["exact"].text == PIECE * 10


@pytest.mark.anyio
async def test_the_terminal_view_heads_the_answer_cut_and_says_why(
    loopback: LoopbackServer, spec: Spec
) -> None:
    loopback.script("big", openai_stream(BIG[:30]))
    run = await run_fanout([spec("openai", "big", max_answer_chars=CAP)])
    screen = io.StringIO()
    view = LiveView(screen, ["big"], size=lambda: (120, 40))

    for event in run.events:
        view.show(event)

    printed = screen.getvalue()
    assert "-- big -- cut in " in printed  # a StringIO gets the ASCII glyphs
    assert "".join(BIG)[:CAP] + "\n" + cut_message(CAP) in printed


@pytest.mark.local_model
@pytest.mark.anyio
async def test_a_local_model_is_cut_and_its_generation_stops() -> None:
    provider = LocalProvider()
    talker = local_spec(
        "talker", max_tokens=1500, temperature=0.8, extra_body=NEVER_STOP, max_answer_chars=40
    )
    try:
        run = await run_local(provider, [talker])
        finished = run.terminal("talker")
        assert isinstance(finished, Finished) and finished.finish_reason == CUT
        assert len(run.result.responses["talker"].text) == 40
        # The worker thread's loop saw the stop flag long before its 1500 tokens.
        assert provider.monitor.active == ()
        (record,) = provider.monitor.records
        assert record.outcome == "cancelled" and record.tokens < 1500
    finally:
        await provider.aclose()


# --- configuration --------------------------------------------------------------------------------
def test_the_default_cap_and_overrides(write_config: ConfigWriter) -> None:
    one = {"name": "a", "provider": "ollama", "model": "a"}
    two = {"name": "b", "provider": "ollama", "model": "b", "max_answer_chars": 5}
    assert load_settings(write_config(models=[one])).models[0].max_answer_chars == 2_000_000
    limited = load_settings(write_config(models=[one, two], limits={"max_answer_chars": 70}))
    assert [m.max_answer_chars for m in limited.models] == [70, 5]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"limits": {"max_answer_chars": 0}}, "[limits]: max_answer_chars must be positive, got 0"),
        ({"limits": {"max_answer_chars": -3}}, "max_answer_chars must be positive, got -3"),
        ({"limits": {"max_answer_chars": "2MB"}}, "must be an integer, got a string"),
        ({"limits": {"max_answer_chars": True}}, "must be an integer, got a boolean"),
        ({"limits": {"max_answer_chars": 1.5}}, "must be an integer, got a number"),
        ({"limits": {"max_answer_char": 9}}, "unknown key 'max_answer_char' (did you mean"),
        ({"limits": 5}, "[limits] must be a table"),
        ({"model": {"max_answer_chars": 0}}, "model 'a': max_answer_chars must be positive"),
    ],
)
def test_a_bad_cap_is_a_clear_config_error(
    write_config: ConfigWriter, tables: dict[str, Any], message: str
) -> None:
    one: dict[str, Any] = {"name": "a", "provider": "ollama", "model": "a"}
    one.update(tables.pop("model", {}))
    if tables.get("limits") == 5:
        path = write_config(
            "limits = 5\n[[models]]\nname = 'a'\nprovider = 'ollama'\nmodel = 'a'\n"
        )
    else:
        path = write_config(models=[one], **tables)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert message in str(error.value)


# --- the app ------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_the_pane_shows_cut_and_why(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("big", endless("openai"))
    loopback.script("small", openai_stream(["fine"]))
    path = write_config(
        models=[tui_model(loopback, "big"), tui_model(loopback, "small")],
        limits={"max_answer_chars": CAP},
        history={"enabled": False},
    )
    app = QuorumApp(load_settings(path))
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "Say a lot")
        await until(
            pilot,
            lambda: not app.busy and all(p.state.state in TERMINAL for p in app.panes.values()),
        )
        await pilot.pause()
        big = pane(app, "big")
        assert big.state.state == "cut" and big.has_class("-cut")
        assert len(big.state.text) == CAP
        assert "  cut" in str(big.header.render())
        assert cut_message(CAP) in " ".join(shown(app, "big").split())  # the notice, wrapped
        assert pane(app, "small").state.state == "done"
        assert "2/2 done" in str(app.query_one(SummaryPanel).render())
        assert loopback.wait_for(lambda s: s.closed_by_client == 1 and s.open_streams == 0)


def test_streamed_text_is_kept_as_one_string() -> None:
    buffer = TextBuffer()
    pieces = [f"{i}," for i in range(1000)]
    for piece in pieces:
        buffer.append(piece)
    assert len(buffer) == sum(map(len, pieces)) and str(buffer) == "".join(pieces)
    assert str(buffer) is str(buffer)  # read twice, joined once
    buffer.append("end")
    assert str(buffer) == "".join(pieces) + "end"
