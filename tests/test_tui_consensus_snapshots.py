"""SVG snapshots of the consensus panel at 80x24, compact under three panes and maximised: real
figures from the built-in embedder, a finished synthesis with fixed timings."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from core.consensus.records import Consensus
from core.consensus.tracker import ConsensusTracker
from core.events import ConsensusUpdated, Event, FanoutFinished, Finished, ModelStats, TextDelta
from core.store.embedder import BuiltinEmbedder
from tests.test_tui_consensus import ANSWERS, ASKED, SYNTHESIS, PanelApp, failed, synthesis_run


@pytest.fixture(scope="module")
def consensus() -> Consensus:
    tracker = ConsensusTracker(BuiltinEmbedder(), ASKED)
    for name in ASKED:
        tracker.add(name, ANSWERS[name])
    return tracker.current


def answered(app: PanelApp, consensus: Consensus) -> list[Event]:
    for index, (name, pane) in enumerate(app.panes.items()):
        pane.start("What is the capital of France?")
        pane.apply(TextDelta(name, ANSWERS[name]))
        stats = ModelStats(ttft_ms=200.0 + 50 * index, total_ms=1500.0 + 300 * index, attempts=1)
        pane.apply(Finished(name, "stop", stats))
    return [
        ConsensusUpdated(consensus),
        *failed("gpt", "quota exceeded", 429),
        *synthesis_run("claude", SYNTHESIS),
        FanoutFinished(4200.0),
    ]


async def settle(pilot: Pilot[Any], app: PanelApp, events: list[Event]) -> None:
    app.panel.reset(list(app.panes), ("gpt", "claude"))
    for event in events:
        app.panel.apply(event)
    await pilot.pause()
    for pane in app.panes.values():
        pane.flush()
    app.panel.flush()
    await pilot.pause()


def test_compact_under_the_panes(snap_compare: Any, consensus: Consensus) -> None:
    app = PanelApp()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, app, answered(app, consensus))

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_maximised(snap_compare: Any, consensus: Consensus) -> None:
    app = PanelApp()

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, app, answered(app, consensus))
        app.panel.toggle_maximised()
        await pilot.pause()
        app.panel.flush()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
