"""The consensus in the real app: three models on the loopback server (two say the same thing,
one answers something else), the built-in embedder, a synthesizer that is not asked itself.
The panel fills in, the outlier's pane is marked, the synthesis streams in and is stored with
the turn; a retry measures its new answer into the same turn and synthesizes again; the palette
chooses the synthesizer and turns synthesis off."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.config import load_settings
from core.history import HistoryStore
from tests.conftest import ConfigWriter
from tests.loopback import LoopbackServer, error_reply, openai_stream
from tests.test_tui import SIZE, all_done, ask, model, pane, run_command, until
from tests.test_tui_consensus import flat
from tui.app import QuorumApp

pytestmark = pytest.mark.anyio

PARIS_A = "The capital of France is Paris. It has been the seat of government for centuries."
PARIS_B = "Paris is France's capital city. The government has been seated there for centuries."
PARIS_C = "France's capital is Paris. For centuries the seat of government has been there."
GIT = "To undo the last git commit, run git reset --soft HEAD~1; your changes stay staged."
SYNTHESIS = "Paris is the capital of France. Disagreements: one answer was about git."


def council(loopback: LoopbackServer, write_config: ConfigWriter, **consensus: Any) -> QuorumApp:
    models = [model(loopback, n) for n in ("a", "b", "odd")]
    models += [model(loopback, n, enabled=False) for n in ("judge", "spare")]
    config = write_config(models=models, consensus={"synthesizer": "judge", **consensus})
    return QuorumApp(load_settings(config))


async def test_the_panel_fills_in_marks_the_outlier_and_streams_the_synthesis(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("a", openai_stream([PARIS_A]))
    loopback.script("b", openai_stream([PARIS_B]))
    loopback.script("odd", [openai_stream([GIT]), openai_stream([PARIS_C])])
    loopback.script("judge", [openai_stream(SYNTHESIS.split(" ")), openai_stream(["Paris."])])
    app = council(loopback, write_config)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "What is the capital of France?")
        await until(pilot, lambda: all_done(app) and "synthesis" in flat(app).lower())
        screen = flat(app)
        assert "3 of 3 answered" in screen
        assert "agreement" in screen and "outlier: odd" in screen
        assert pane(app, "odd").state.mark == "outlier"
        assert pane(app, "a").state.mark == "medoid" or pane(app, "b").state.mark == "medoid"
        (request,) = loopback.requests_for("judge")  # asked only to synthesize, anonymously
        sent = json.dumps(request.json)
        assert "git reset" in sent and '"odd"' not in sent

        await pilot.press("f4")
        assert app.panel.maximised
        await until(pilot, lambda: "Disagreements" in flat(app))
        assert "by judge" in flat(app)
        await pilot.press("f4")
        assert not app.panel.maximised

        pane(app, "odd").focus()
        await pilot.press("r")  # the outlier answers again, like the others this time
        await until(pilot, lambda: all_done(app) and len(loopback.requests_for("judge")) == 2)
        await until(pilot, lambda: pane(app, "odd").state.mark != "outlier")
        assert "outlier" not in flat(app)
        assert len(loopback.requests_for("a")) == 1  # the retry asked only the retried model

    with HistoryStore.open() as store:
        (turn,) = store.load_session(store.latest_session_id() or "").turns
    assert turn.consensus["outliers"] == [] and turn.consensus["synthesis"] == "Paris."
    assert turn.consensus["synthesizer"] == "judge"


async def test_the_palette_chooses_the_synthesizer_and_turns_synthesis_off(
    loopback: LoopbackServer, write_config: ConfigWriter
) -> None:
    loopback.script("a", openai_stream([PARIS_A]))
    loopback.script("b", openai_stream([PARIS_B]))
    loopback.script("odd", openai_stream([PARIS_C]))
    loopback.script("judge", error_reply(503, {"error": {"message": "overloaded"}}))
    loopback.script("spare", openai_stream(["Paris, said the spare."]))
    app = council(loopback, write_config)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Synthesize with: spare")
        assert app.consensus.candidates() == ("spare", "judge")
        await ask(pilot, "Capital of France?")
        await until(pilot, lambda: all_done(app))
        await until(pilot, lambda: "spare" in flat(app))
        assert loopback.requests_for("judge") == []  # spare answered first: no fallback needed

        await run_command(pilot, "Toggle synthesis")
        assert app.consensus.candidates() == ()
        await ask(pilot, "And of Italy?")
        await until(pilot, lambda: all_done(app) and "3 of 3 answered" in flat(app))
        assert len(loopback.requests_for("spare")) == 1  # no synthesis for the second question
        assert "most representative" in flat(app)
        await pilot.press("f4")
        await until(pilot, lambda: "synthesis is off; showing the most representative" in flat(app))
