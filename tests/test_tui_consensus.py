"""The consensus panel in a minimal app, fed real `Consensus` records (the real tracker and the
built-in embedder, over answers whose agreement is known by construction) and synthesis events
shaped like the stage's: what a user reads in the compact and the maximised panel, and the
marks on the panes' headers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.filter import LineFilter
from textual.geometry import Region
from textual.pilot import Pilot

from core.consensus.records import Consensus
from core.consensus.tracker import ConsensusTracker
from core.events import (
    Cancelled,
    ConsensusUpdated,
    Event,
    Failed,
    FailureKind,
    FanoutFinished,
    Finished,
    FirstToken,
    ModelStats,
    Started,
    Synthesis,
    TextDelta,
)
from core.store.embedder import BuiltinEmbedder
from tui import glyphs
from tui.consensus_state import ConsensusState
from tui.pane_state import PaneState, header_text
from tui.widgets.consensus import ConsensusPanel, grid_lines
from tui.widgets.pane import ModelPane

pytestmark = pytest.mark.anyio

ASKED = ("claude", "gpt", "gemini")
ANSWERS = {
    "claude": "The capital of France is Paris. It has been the seat of government for centuries.",
    "gpt": "Paris is France's capital city. The government has been seated there for centuries.",
    "gemini": "To undo the last git commit, run git reset --soft HEAD~1; your changes stay staged.",
}
PARAPHRASE = "France's capital is Paris. For centuries the seat of government has been there."
GRID_ROW = re.compile(r"^\s*(\d+ )?\S+(\s+(-|\d?\.\d+)){16}$")  # a label, 16 cells
SYNTHESIS = ["The capital of France is **Paris**,", " and it has been the seat of government", "."]


@pytest.fixture(scope="module")
def embedder() -> BuiltinEmbedder:
    return BuiltinEmbedder()


@pytest.fixture(scope="module")
def turn(embedder: BuiltinEmbedder) -> dict[str, Consensus]:
    """The consensus after each answer: claude, then gemini (unrelated), then gpt (claude's
    paraphrase); then gemini retried with another paraphrase."""
    tracker = ConsensusTracker(embedder, ASKED)
    records = {
        "one": tracker.add("claude", ANSWERS["claude"]),
        "two": tracker.add("gemini", ANSWERS["gemini"]),
        "three": tracker.add("gpt", ANSWERS["gpt"]),
        "retried": tracker.add("gemini", PARAPHRASE),
    }
    assert records["three"].outliers == ("gemini",)
    assert records["three"].medoid in ("claude", "gpt")
    assert records["retried"].outliers == ()
    return records


@pytest.fixture(scope="module")
def with_failure(embedder: BuiltinEmbedder) -> Consensus:
    tracker = ConsensusTracker(embedder, (*ASKED, "mistral"))
    for name in ASKED:
        tracker.add(name, ANSWERS[name])
    return tracker.drop("mistral", "failed")


@pytest.fixture
def ascii_glyphs() -> Iterator[None]:
    glyphs.use(glyphs.ASCII)
    try:
        yield
    finally:
        glyphs.use(glyphs.UNICODE)


class PanelApp(App[None]):
    """Panes and the panel, wired the way the app will: `Marked` marks the panes' headers."""

    CSS = "Horizontal { height: 1fr; } ModelPane { width: 1fr; }"

    def __init__(self, names: Sequence[str] = ASKED, *, filters: bool = True) -> None:
        super().__init__()
        self.panes = {name: ModelPane(name, "openai") for name in names}
        self.panel = ConsensusPanel(answer_text=lambda name: ANSWERS.get(name))
        self._ascii_filter = filters

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield from self.panes.values()
        yield self.panel

    def on_consensus_panel_marked(self, message: ConsensusPanel.Marked) -> None:
        for name, mark in message.marks.items():
            if name in self.panes:
                self.panes[name].set_consensus_mark(mark)

    def get_line_filters(self) -> Sequence[LineFilter]:  # as QuorumApp: ASCII output or not
        return [*super().get_line_filters(), *(glyphs.line_filters() if self._ascii_filter else [])]


def screen(app: App[Any]) -> str:
    """Every row on screen, as the user sees it."""
    return "\n".join(strip.text.rstrip() for strip in app.screen._compositor.render_strips())


def flat(app: App[Any]) -> str:
    """The screen's words, for phrases that may wrap."""
    return " ".join(screen(app).split())


def panel_rows(app: PanelApp) -> list[str]:
    region = app.panel.region
    rows = app.screen._compositor.render_strips()[region.y : region.bottom]
    return [strip.crop(region.x, region.right).text.rstrip() for strip in rows]


async def feed(pilot: Pilot[Any], app: PanelApp, *events: Event) -> None:
    for event in events:
        app.panel.apply(event)
    app.panel.flush()  # the app's frame tick
    await pilot.pause()
    await pilot.pause()


async def start(pilot: Pilot[Any], app: PanelApp, synthesizers: Sequence[str] = ("gpt",)) -> None:
    app.panel.reset(list(app.panes), synthesizers)
    await pilot.pause()


def synthesis_run(model: str, chunks: Sequence[str], *, ttft: float = 420.0) -> list[Event]:
    stats = ModelStats(ttft_ms=ttft, total_ms=3100.0, tokens_out=20, attempts=1)
    return [
        Synthesis(Started(model, "openai", 1)),
        Synthesis(FirstToken(model, ttft)),
        *(Synthesis(TextDelta(model, chunk)) for chunk in chunks),
        Synthesis(Finished(model, "stop", stats)),
    ]


def failed(model: str, message: str, status: int | None = None) -> list[Event]:
    kind = FailureKind.HTTP if status else FailureKind.TIMEOUT
    return [Synthesis(Started(model, "openai", 1)), Synthesis(Failed(model, kind, message, status))]


async def test_the_compact_panel_fills_in_while_models_still_answer(
    turn: dict[str, Consensus],
) -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        assert "appears here as they arrive" in screen(app)
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(turn["one"]))
        rows = panel_rows(app)
        assert "1 of 3 answered" in rows[0]
        assert "agreement -" in rows[0] and "agreement needs at least two" in rows[0]
        assert "synthesis by gpt: once every model has answered" in "\n".join(rows)

        await feed(pilot, app, ConsensusUpdated(turn["two"]))
        assert "2 of 3 answered" in panel_rows(app)[0]

        three = turn["three"]
        await feed(pilot, app, ConsensusUpdated(three))
        rows = panel_rows(app)
        assert len(rows) == 3
        assert "3 of 3 answered" in rows[0] and f"{three.agreement:.2f}" in rows[0]
        assert f"most representative: {three.medoid}" in rows[1]
        assert "outlier: gemini" in rows[1]
        assert "correct" not in screen(app)


async def test_the_medoid_and_the_outlier_are_marked_on_their_panes(
    turn: dict[str, Consensus],
) -> None:
    app = PanelApp()
    async with app.run_test(size=(150, 24)) as pilot:
        await start(pilot, app)
        three = turn["three"]
        await feed(pilot, app, ConsensusUpdated(three))
        headers = {name: pane.header.render().plain for name, pane in app.panes.items()}
        assert "most representative" in headers[three.medoid or ""]
        assert "outlier" in headers["gemini"]
        (plain,) = set(ASKED) - {three.medoid, "gemini"}
        assert "most representative" not in headers[plain] and "outlier" not in headers[plain]

        await feed(pilot, app, ConsensusUpdated(turn["retried"]))  # gemini retried, now agrees
        assert "outlier" not in app.panes["gemini"].header.render().plain
        await start(pilot, app)  # a new turn: no marks until its figures arrive
        assert all("most representative" not in p.header.render().plain for p in app.panes.values())


def test_a_long_mark_is_shortened_before_the_header_is_cut() -> None:
    state = PaneState("claude", "anthropic")
    state.mark = "medoid"
    colors = {"success": "green"}
    assert "most representative" in header_text(state, colors, width=60).plain
    narrow = header_text(state, colors, width=30).plain
    assert "representative" in narrow and "most" not in narrow and len(narrow) <= 30
    assert header_text(state, colors, width=16).plain == "claude  idle  ◆"


async def test_a_failed_model_is_left_out_and_the_panel_says_so(with_failure: Consensus) -> None:
    app = PanelApp((*ASKED, "mistral"))
    async with app.run_test(size=(80, 40)) as pilot:
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(with_failure))
        assert "3 of 4 answered, 1 failed (not counted)" in panel_rows(app)[0]
        app.panel.toggle_maximised()
        await feed(pilot, app)
        text = flat(app)
        assert "left out of every figure: mistral (failed)" in text
        assert "agreement is over the 3 answers measured" in text


async def test_the_maximised_panel_shows_the_grid_support_and_unique_claims(
    turn: dict[str, Consensus],
) -> None:
    three = turn["three"]
    app = PanelApp()
    async with app.run_test(size=(80, 50)) as pilot:
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(three))
        app.panel.toggle_maximised()
        await feed(pilot, app)
        assert app.panel.maximised
        text = screen(app)
        assert "how alike the answers are, not whether they are right" in text
        assert "similarity between the answers" in text
        lines = text.splitlines()
        top = next(i for i, line in enumerate(lines) if "similarity between" in line)
        rows = {line.split()[0]: line for line in lines[top + 2 : top + 2 + len(three.models)]}
        for i, name in enumerate(three.models):
            cells = [f"{v:.2f}" for j, v in enumerate(three.similarity[i]) if j != i]
            assert all(cell in rows[name] for cell in cells), rows[name]
        assert f"{three.medoid}'s answer, each sentence supported by k of 2 other answers" in text
        for sentence in three.support:
            assert f"{sentence.count}/2 {sentence.text}" in text
        assert "said by one model only" in text
        assert "gemini To undo the last git commit" in text

        app.panel.toggle_maximised()
        await feed(pilot, app)
        assert not app.panel.maximised and "similarity between" not in screen(app)


async def test_the_synthesis_streams_in_with_its_own_timings(turn: dict[str, Consensus]) -> None:
    app = PanelApp()
    run = synthesis_run("gpt", SYNTHESIS)
    async with app.run_test(size=(80, 50)) as pilot:
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(turn["three"]))
        app.panel.toggle_maximised()
        await feed(pilot, app, *run[:3])
        text = screen(app)
        assert "synthesis by gpt  streaming" in text and "ttft 0.42s" in text
        assert "The capital of France is Paris," in text
        assert "and it has been" not in text
        await feed(pilot, app, *run[3:5])
        assert "The capital of France is Paris, and it has been the seat of" in screen(app)
        await feed(pilot, app, run[5], FanoutFinished(5000.0))
        text = screen(app)
        assert "synthesis by gpt  ttft 0.42s" in text and "total 3.1s" in text
        assert "streaming" not in text
        app.panel.toggle_maximised()
        await feed(pilot, app)
        assert "synthesis by gpt: The capital of France is Paris, and it" in panel_rows(app)[2]


async def test_a_failed_synthesizer_says_why_and_the_fallback_answers(
    turn: dict[str, Consensus],
) -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 50)) as pilot:
        await start(pilot, app, ("gpt", "claude"))
        await feed(pilot, app, ConsensusUpdated(turn["three"]))
        await feed(pilot, app, *failed("gpt", "quota exceeded", 429))
        assert "gpt failed: HTTP 429: quota exceeded; synthesis by claude" in panel_rows(app)[2]
        app.panel.toggle_maximised()
        await feed(pilot, app, *synthesis_run("claude", ["Paris, ", "since the Middle Ages."]))
        text = screen(app)
        assert "gpt failed: HTTP 429: quota exceeded; synthesis by claude" in text
        assert "Paris, since the Middle Ages." in text


async def test_with_no_synthesizer_left_the_medoid_answer_is_shown_as_such(
    turn: dict[str, Consensus],
) -> None:
    three = turn["three"]
    medoid = three.medoid or ""
    app = PanelApp()
    async with app.run_test(size=(100, 50)) as pilot:
        await start(pilot, app, ("gpt", "claude"))
        await feed(pilot, app, ConsensusUpdated(three))
        await feed(pilot, app, *failed("gpt", "quota exceeded", 429))
        await feed(pilot, app, *failed("claude", "no first token within 30 s"))
        expected = (
            "no synthesis: gpt failed: HTTP 429: quota exceeded; claude failed: no first token "
            f"within 30 s; showing the most representative answer ({medoid})"
        )
        assert expected.split(";")[0] in panel_rows(app)[2]
        app.panel.toggle_maximised()
        await feed(pilot, app)
        text = flat(app)
        assert expected in text
        assert ANSWERS[medoid] in text


async def test_a_retried_model_replaces_the_figures_and_the_synthesis_runs_again(
    turn: dict[str, Consensus],
) -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 24)) as pilot:
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(turn["three"]))
        await feed(pilot, app, *synthesis_run("gpt", ["First synthesis."]), FanoutFinished(1.0))
        assert "First synthesis." in panel_rows(app)[2]
        retried = turn["retried"]
        await feed(pilot, app, ConsensusUpdated(retried))
        rows = panel_rows(app)
        assert f"{retried.agreement:.2f}" in rows[0] and "outlier" not in rows[1]
        await feed(pilot, app, *synthesis_run("gpt", ["Second synthesis."]))
        assert "Second synthesis." in panel_rows(app)[2]
        assert "First synthesis." not in screen(app)


def test_a_cancelled_synthesis_or_too_few_answers_mean_no_synthesis(
    turn: dict[str, Consensus],
) -> None:
    state = ConsensusState()
    state.reset(ASKED, ("gpt",))
    state.apply(ConsensusUpdated(turn["three"]))
    state.apply(Synthesis(Started("gpt", "openai", 1)))
    state.apply(Synthesis(Cancelled("gpt", ModelStats())))
    view = state.synthesis_view()
    assert view.phase == "none" and view.reason == "gpt's synthesis was cancelled"
    assert view.fallback == turn["three"].medoid and view.failures == ()

    state.reset(ASKED, ("gpt",))
    state.apply(ConsensusUpdated(turn["one"]))
    state.apply(FanoutFinished(1.0))
    assert state.synthesis_view().reason == "a synthesis needs at least two answers"
    state.reset(ASKED, ())
    assert state.synthesis_view().phase == "off"


async def test_ascii_mode_draws_the_panel_in_ascii(
    ascii_glyphs: None, turn: dict[str, Consensus]
) -> None:
    app = PanelApp(filters=False)  # the panel's own characters, not the line filter's folding
    async with app.run_test(size=(80, 50)) as pilot:
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(turn["three"]))
        await feed(pilot, app, *synthesis_run("gpt", ["Plain words."]))
        rows = panel_rows(app)
        assert all(row.isascii() for row in rows), rows
        assert "#" in rows[0] and "* most representative" in rows[1] and "! outlier" in rows[1]
        assert "! outlier" in app.panes["gemini"].header.render().plain
        app.panel.toggle_maximised()
        await feed(pilot, app)
        text = screen(app)
        assert text.isascii(), [line for line in text.splitlines() if not line.isascii()]
        assert "similarity between the answers" in text


def sixteen_answers() -> dict[str, str]:
    topics = [
        "The capital of France is Paris.",
        "Paris is the capital city of France.",
        "To undo the last git commit, run git reset --soft HEAD~1.",
        "Water boils at 100 degrees Celsius at sea level.",
    ]
    names = [
        f"{family}-{size}"
        for family in ("claude-3-5-sonnet", "gpt-4o", "gemini-1.5", "llama-3.1")
        for size in ("mini", "large", "instruct", "20241022")
    ]
    return {name: topics[i % 4] + f" Answer number {i}." for i, name in enumerate(names)}


def test_the_grid_fits_80_columns_from_2_to_16_models(embedder: BuiltinEmbedder) -> None:
    answers = sixteen_answers()
    tracker = ConsensusTracker(embedder, list(answers))
    colors = {"success": "#4EBF71", "warning": "#FEA62B", "error": "#B93C5B", "surface": "#000"}
    for count, (name, text) in enumerate(answers.items(), start=1):
        consensus = tracker.add(name, text)
        if count < 2:
            continue
        lines = grid_lines(consensus, colors, 77)
        assert len(lines) == count + 2  # header, one row per model, legend
        assert all(line.cell_len <= 77 for line in lines), [line.cell_len for line in lines]
        columns = lines[0].plain.split()
        assert len(columns) == count and len(set(columns)) == count  # abbreviations differ


async def test_the_maximised_panel_is_readable_at_80_columns_with_16_models(
    embedder: BuiltinEmbedder,
) -> None:
    answers = sixteen_answers()
    tracker = ConsensusTracker(embedder, list(answers))
    for name, text in answers.items():
        consensus = tracker.add(name, text)
    app = PanelApp(list(answers))
    async with app.run_test(size=(80, 60)) as pilot:
        await start(pilot, app)
        await feed(pilot, app, ConsensusUpdated(consensus))
        app.panel.toggle_maximised()
        await feed(pilot, app)
        detail = app.panel.detail
        assert detail.max_scroll_x == 0
        for part in detail.children:
            for strip in part.render_lines(Region(0, 0, *part.size)):
                assert strip.cell_length <= 80
        figures = [s.text for s in app.panel.figures.render_lines(Region(0, 0, 80, 60))]
        assert not any("…" in line for line in figures), "nothing in the grid was cut to fit"
        grid_rows = [line for line in figures if GRID_ROW.match(line.rstrip())]
        assert len(grid_rows) == 16, figures
