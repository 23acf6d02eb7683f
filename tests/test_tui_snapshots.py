"""SVG snapshots of the main layouts, fed deterministic events (no network, fixed timings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.pilot import Pilot

from core.config import load_settings
from core.events import (
    Event,
    Failed,
    FailureKind,
    Finished,
    FirstToken,
    ModelStats,
    ReasoningDelta,
    Source,
    Started,
    TextDelta,
)
from tests.conftest import ConfigWriter
from tui.app import QuorumApp
from tui.history_bridge import MemoryHistory
from tui.widgets.prompt import PromptArea
from tui.widgets.sources import SourcesStrip

ANSWER = (
    "Two options are common:\n\n"
    "1. **SQLite** for a single user\n"
    "2. **Postgres** when several processes write\n\n"
    "```python\nimport sqlite3\nconn = sqlite3.connect('quorum.db')\n```\n\n"
    "Pick the *simplest* one that works."
)


def make_app(write_config: ConfigWriter, names: Sequence[str], theme: str | None = None) -> Any:
    models = [{"name": n, "provider": "openai", "model": n, "api_key": "k"} for n in names]
    tables: dict[str, Any] = {"ui": {"theme": theme}} if theme else {}
    settings = load_settings(write_config(models=models, **tables))
    return QuorumApp(settings, history=MemoryHistory())


def finished_run(name: str, index: int, text: str = ANSWER) -> list[Event]:
    stats = ModelStats(
        ttft_ms=200.0 + 50 * index,
        total_ms=1500.0 + 300 * index,
        tokens_in=12,
        tokens_out=40 + index,
        tokens_per_s=31.0,
        attempts=1,
    )
    return [
        Started(name, "openai", 1),
        FirstToken(name, stats.ttft_ms or 0),
        TextDelta(name, text),
        Finished(name, "stop", stats),
    ]


async def feed(app: QuorumApp, events: Sequence[Event], query: str = "Which database?") -> None:
    for pane in app.panes.values():
        pane.start(query)
    for event in events:
        app.apply_event(event)
    await app.tick()


async def settle(pilot: Pilot[Any]) -> None:
    steady_cursor(pilot)
    await pilot.pause()
    await pilot.app.tick()  # type: ignore[attr-defined]
    await pilot.pause()


def steady_cursor(pilot: Pilot[Any]) -> None:
    """A blinking cursor is drawn or not depending on when the screenshot lands: hold it on."""
    pilot.app.query_one(PromptArea).cursor_blink = False


def test_three_models_finished(snap_compare: Any, write_config: ConfigWriter) -> None:
    app = make_app(write_config, ["gpt", "claude", "gemini"])
    failure = Failed(
        "gemini",
        FailureKind.HTTP,
        "quota exceeded for [project]",
        429,
        ModelStats(total_ms=300.0, attempts=1),
    )

    async def run_before(pilot: Pilot[Any]) -> None:
        events = [
            *finished_run("gpt", 0),
            *finished_run("claude", 1),
            ReasoningDelta("claude", "hmm, let me think"),
            Started("gemini", "openai", 1),
            failure,
        ]
        await feed(app, events)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(130, 34), run_before=run_before)


def test_single_model(snap_compare: Any, write_config: ConfigWriter) -> None:
    app = make_app(write_config, ["solo"])

    async def run_before(pilot: Pilot[Any]) -> None:
        await feed(app, finished_run("solo", 0))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_eight_models_grid(snap_compare: Any, write_config: ConfigWriter) -> None:
    names = [f"model-{i}" for i in range(8)]
    app = make_app(write_config, names)

    async def run_before(pilot: Pilot[Any]) -> None:
        events = [e for i, n in enumerate(names) for e in finished_run(n, i, f"Answer {i}.")]
        await feed(app, events)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(170, 44), run_before=run_before)


def test_light_theme(snap_compare: Any, write_config: ConfigWriter) -> None:
    app = make_app(write_config, ["a", "b"], theme="quorum-light")

    async def run_before(pilot: Pilot[Any]) -> None:
        await feed(app, [*finished_run("a", 0), *finished_run("b", 1, "Short answer.")])
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


def test_help_screen(snap_compare: Any, write_config: ConfigWriter) -> None:
    app = make_app(write_config, ["a"])

    async def run_before(pilot: Pilot[Any]) -> None:
        steady_cursor(pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(110, 36), press=["f1"], run_before=run_before)


def test_sources_strip_and_citations(snap_compare: Any, write_config: ConfigWriter) -> None:
    app = make_app(write_config, ["gpt", "claude"])
    sources = (
        Source("a", "/srv/docs/ops.md", "Operations › Rollback", "lines 3-6", 0.71, "Roll back."),
        Source("b", "/srv/docs/releases.md", "Releases", "lines 1-4", 0.52, "Tag releases."),
    )

    async def run_before(pilot: Pilot[Any]) -> None:
        app.query_one(SourcesStrip).show_sources(sources)
        for pane in app.panes.values():
            pane.start("How do I roll back?", len(sources))
        answers = {"gpt": "Run `make rollback` [1], then tag it [2].", "claude": "See [1] [3]."}
        for index, (name, text) in enumerate(answers.items()):
            for event in finished_run(name, index, text):
                app.apply_event(event)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(110, 24), run_before=run_before)
