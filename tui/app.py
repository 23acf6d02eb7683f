"""The Quorum terminal app: one prompt, one pane per model, every answer streaming live.

The engine's one event stream is consumed in a worker; each event is folded into its pane's
state at once, and a frame tick draws whatever changed since a pane was last drawn; each pane is
drawn every ``FRAME_S``, and with many panes the ticks are staggered (a few panes per tick) so
that no single frame — and no key press waiting behind it — pays for every pane at once.
so 16 models at 100 tokens/s cost one cheap repaint per pane per frame, never one per token.
"""

from __future__ import annotations

import asyncio
import gc
import math
import signal
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.filter import LineFilter
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import Footer

from core.attachments import AttachmentError
from core.config import ModelSpec, Settings
from core.events import Cancelled, Event, Failed, Finished, ModelEvent, Source
from core.pacing import IntakePacer
from core.privacy import exposed_key_warning
from core.state import load_state, save_state
from tui import glyphs
from tui.attach import with_files
from tui.commands import pipe_to, quorum_commands, system_clipboard_command
from tui.consensus_run import TurnConsensus
from tui.history_bridge import open_history
from tui.history_types import ExportFormat, History, Recorder
from tui.keys import KeymapApp, bind
from tui.knowledge import NO_SOURCES, AppKnowledge, toggle_note
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.query_search import QuerySearchScreen
from tui.screens.sources import SourcesScreen
from tui.theming import initial_theme, register_themes
from tui.widgets.consensus import ConsensusPanel
from tui.widgets.grid import PaneGrid
from tui.widgets.pane import ModelPane
from tui.widgets.prompt import PromptArea, QueryHistory
from tui.widgets.question import QuestionStrip
from tui.widgets.sources import SourcesStrip
from tui.widgets.stream_view import StreamView
from tui.widgets.summary import SummaryPanel

if TYPE_CHECKING:  # the engine pulls in httpx: imported after the first paint
    import httpx

    from core.engine import FanOut
    from core.providers import ProviderSet
    from core.providers.base import Message
    from core.store.embedder import Embedder

FRAME_S = 1 / 15
PANES_PER_TICK = 4
GC_FREEZE_S = 1.0


class QuorumApp(KeymapApp):
    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "Quorum"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("app.cancel-all", "cancel_all", "Cancel all"),
        bind("app.search-queries", "search_queries", "Search queries"),
        bind("app.open-history", "open_history", "History"),
        bind("app.sources", "show_source(1)", "Sources"),
        bind("app.consensus", "consensus", "Consensus"),
        bind("app.new-session", "new_session", "New session"),
        bind("app.help", "help", "Help"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        history: History | None = None,
        show_figures: bool = True,
    ) -> None:
        super().__init__(settings.keys)
        self.settings = settings
        self.enabled = {m.name: m.enabled for m in settings.models}
        self._embedder: Embedder | None = None  # one for the app: knowledge and consensus
        self.knowledge = AppKnowledge(settings, embedder=self.embedder)
        self.consensus = TurnConsensus(settings, self.embedder)
        self.show_figures = show_figures
        self.panes: dict[str, ModelPane] = {}
        self.summary = SummaryPanel()
        self.panel = ConsensusPanel(answer_text=self._answer_text)
        # The fan-out each model is answering in, until that model's run ends; a model can
        # be retried as soon as its own run has ended, while the others still answer.
        self._runs: dict[str, FanOut] = {}
        self._fanouts: set[FanOut] = set()  # every fan-out still running, however few models
        self._intake = IntakePacer()  # runaway streams leave the loop to keys and frames
        self._turn_context: dict[str, list[Message]] = {}
        self._turn_sources: tuple[Source, ...] = ()  # retrieved once per question, kept for retries
        self._retrieving = False
        self._turn: Recorder | None = None  # records the question on screen (retries go there)
        # The store is opened just after the first paint, or sooner when first needed.
        self._history: History | None = history
        self.queries = QueryHistory(loader=self._load_queries)
        self._client: httpx.AsyncClient | None = None
        self._providers: ProviderSet | None = None
        # Registered before the first stylesheet pass: switching later re-styles everything.
        self._theme_problems = register_themes(self)
        self._state, state_note = load_state()
        wanted, theme_note = initial_theme(self.available_themes, settings.theme, self._state.theme)
        self._theme_notes = [note for note in (state_note, theme_note) if note]
        self.theme = self._shown_theme = wanted
        self.last_export: Path | None = None

    # --- setup --------------------------------------------------------------------------
    @property
    def history(self) -> History:
        if self._history is None:
            self._history, note = open_history(self.settings.history)
            if note:
                self.notify(note, severity="information")
        return self._history

    def _load_queries(self) -> list[str]:
        try:
            return self.history.recent_queries(500)
        except Exception:
            return []

    def compose(self) -> ComposeResult:
        yield QuestionStrip(id="question")
        with PaneGrid(id="grid"):
            for spec in self.active_models():
                yield self._new_pane(spec)
        yield self.summary
        yield self.panel
        yield SourcesStrip()
        yield PromptArea(self.queries, id="prompt")
        yield Footer()

    def _new_pane(self, spec: ModelSpec) -> ModelPane:
        pane = ModelPane(spec.name, spec.provider, show_figures=self.show_figures)
        self.panes[spec.name] = pane
        return pane

    def on_mount(self) -> None:
        for problem in self._theme_problems:
            self.notify(problem, title="Theme file skipped", severity="warning", timeout=10)
        for note in self._theme_notes:
            self.notify(note, severity="warning")
        exposed = exposed_key_warning(self.settings)
        if exposed:
            self.notify(exposed, title="API key", severity="warning", timeout=15, markup=False)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        with suppress(NotImplementedError, RuntimeError):  # Windows; not the main thread
            # SIGTERM ends the app as Ctrl+Q does: answers so far kept, the terminal restored
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit)
        self.call_after_refresh(self._after_first_paint)
        self._ticks = 0
        self._groups = 1
        self._ticker = self.set_interval(FRAME_S, self._frame, pause=True)
        if not self.active_models():
            self.notify(
                f"No enabled models: enable one with Ctrl+P, or edit {self.settings.path}",
                severity="warning",
                timeout=10,
            )
        self.query_one(PromptArea).focus()
        self.summary.show([])

    async def on_unmount(self) -> None:
        with suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        self.knowledge.close()
        for fanout in self._fanouts:
            fanout.cancel()
        if self._providers is not None:
            await self._providers.aclose()
        if self._client is not None:
            await self._client.aclose()
        if self._history is not None:
            self._history.close()

    def embedder(self) -> Embedder:
        if self._embedder is None:
            from core.store.kb import make_embedder

            self._embedder = make_embedder(self.settings.store, self.settings.models)
        return self._embedder

    def _answer_text(self, model: str) -> str | None:
        pane = self.panes.get(model)
        return pane.state.text if pane is not None else None

    def _after_first_paint(self) -> None:
        # Before any worker thread can: numpy's first import edits os.environ and fails when
        # another thread imports it at the same moment (numpy#30627), and the embedder,
        # chromadb and the consensus each import it from a thread of their own.
        import numpy  # noqa: F401

        self.queries.search("")  # opens the history store and reads past queries
        self.knowledge.warm_soon()
        if len(self.active_models()) > 1:  # the consensus measures the first answers at once
            load = getattr(self.embedder(), "load", None)
            if load is not None:
                self.run_worker(load, thread=True, group="preload", exit_on_error=False)
        providers = self._ensure_providers()
        local = [m for m in self.active_models() if m.provider == "local"]
        if local:  # load in-process models now, so the first question does not wait for them
            preload = providers.get("local").preload  # type: ignore[attr-defined]
            self.run_worker(preload(local), group="preload", exit_on_error=False)

    def _ensure_providers(self) -> ProviderSet:
        """One HTTP client and provider set for the app's life (closed on exit)."""
        if self._providers is None:
            from core.providers import ProviderSet, make_client

            self._client = make_client(len(self.settings.models))
            self._providers = ProviderSet(self._client)
        return self._providers

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name == self._shown_theme:
            return
        self._shown_theme = theme.name
        for view in self.query(StreamView):
            view.restyle()
        if self.settings.theme:  # the config's choice wins at the next start
            self.notify(
                f"Theme {theme.name} for this run only: [ui] theme in {self.settings.path} "
                f"sets the theme ({self.settings.theme}).",
                timeout=6,
            )
            return
        self._state = replace(self._state, theme=theme.name)
        try:
            note = save_state(self._state)
        except OSError as exc:
            note = f"could not save the theme: {exc}"
        if note:
            self.notify(note, severity="warning")

    def active_models(self) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.settings.models if self.enabled.get(m.name))

    # --- running ------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._fanouts) or self._retrieving

    @property
    def retrieval(self) -> bool:
        return self.knowledge.enabled

    @on(PromptArea.Submitted)
    def _submitted(self, event: PromptArea.Submitted) -> None:
        self.send(event.text)

    def send(self, query: str) -> None:
        if not query.strip():
            return
        if self.busy:
            self.notify("Models are still answering — Escape cancels them.", severity="warning")
            return
        self._sync_panes()
        models = self.active_models()
        if not models:
            self.notify(
                "No enabled models — enable one from the command palette (Ctrl+P).",
                severity="error",
            )
            return
        try:
            prompt = with_files(query)  # each @path's whole file, as `ask --file`
        except AttachmentError as exc:
            self.notify(f"Not sent: {exc}", severity="error", timeout=10, markup=False)
            return
        self.queries.add(query)
        self.query_one(PromptArea).set_query("")
        self.query_one(QuestionStrip).show(query)
        self.query_one(SourcesStrip).show_sources(())
        # Kept for retries: a retried model gets the context its first try had, not its answer.
        self._turn_context = {m.name: self._conversation(m.name) for m in models}
        self._turn = self._recorder(lambda: self.history.record(prompt, models))
        self.consensus.begin(prompt, models)
        self.panel.reset(
            [m.name for m in models], self.consensus.candidates(), self.consensus.off_reason()
        )
        self._retrieving = True
        self.run_worker(self._retrieve_then_start(models, prompt, query, self._turn), group="ask")

    async def _retrieve_then_start(
        self, models: Sequence[ModelSpec], prompt: str, question: str, recorder: Recorder | None
    ) -> None:
        try:
            found = await self.knowledge.retrieve(question)  # the words, not the attached files
        except BaseException:
            if recorder is not None:
                recorder.close()
            raise
        finally:
            self._retrieving = False
        if found.problem:
            self.notify(found.problem, severity="warning", timeout=8, markup=False)
        self._turn_sources = found.sources
        self.consensus.set_context(found.sources)
        self.query_one(SourcesStrip).show_sources(found.sources)
        self._start(models, prompt, recorder)

    def _start(self, models: Sequence[ModelSpec], query: str, recorder: Recorder | None) -> None:
        from core.engine import FanOut

        providers = self._ensure_providers()
        conversations = {m.name: self._turn_context.get(m.name, []) for m in models}
        for spec in models:
            self.panes[spec.name].start(query, len(self._turn_sources))
        stage = self.consensus.stage()
        fanout = FanOut(
            models,
            providers,
            query,
            conversations=conversations,
            context=self._turn_sources,
            stages=() if stage is None else (stage,),
            pacer=self._intake,
        )
        for spec in models:
            self._runs[spec.name] = fanout
        self._fanouts.add(fanout)
        self._start_ticker()
        self.run_worker(self._consume(fanout, recorder), group="fanout", exit_on_error=False)

    def _conversation(self, model: str) -> list[Message]:
        try:
            return self.history.conversation(
                model, self.settings.history_turns, self.settings.follow_up
            )
        except Exception:
            return []

    def _recorder(self, make: Callable[[], Recorder]) -> Recorder | None:
        try:
            return make()
        except Exception as exc:
            self.notify(f"this answer will not be saved to history: {exc}", severity="warning")
            return None

    async def _consume(self, fanout: FanOut, recorder: Recorder | None) -> None:
        try:
            async with fanout.run() as events:
                async for event in events:
                    model = getattr(event, "model", None)
                    if model is not None and self._runs.get(model) is not fanout:
                        continue  # that model's run has ended (it may be a retry's now)
                    self.apply_event(event)
                    if isinstance(event, Finished | Failed | Cancelled):
                        del self._runs[event.model]
                    if recorder is not None:
                        try:
                            recorder.apply(event)
                        except Exception as exc:
                            recorder = None
                            self.notify(f"history stopped recording: {exc}", severity="warning")
        finally:
            if recorder is not None:
                try:
                    recorder.close()
                except Exception as exc:
                    self.notify(f"history could not be saved: {exc}", severity="warning")
            for spec in fanout.models:
                if self._runs.get(spec.name) is fanout:
                    del self._runs[spec.name]
            self._fanouts.discard(fanout)
            await self.tick()
            if not self._fanouts:
                self._ticker.pause()
                gc.unfreeze()

    def apply_event(self, event: Event) -> None:
        """Fold one engine event into its pane (drawn at the next frame tick)."""
        if not isinstance(event, ModelEvent):
            self.panel.apply(event)  # the consensus, the synthesis, the fan-out's end
            return
        pane = self.panes.get(event.model)
        if pane is not None:
            pane.apply(event)

    def _start_ticker(self) -> None:
        groups = max(1, math.ceil(len(self.panes) / PANES_PER_TICK))
        if groups != self._groups:
            self._ticker.stop()
            self._groups = groups
            self._ticker = self.set_interval(FRAME_S / groups, self._frame)
        else:
            self._ticker.resume()

    async def _frame(self) -> None:
        self._ticks += 1
        if self._ticks % round(GC_FREEZE_S * self._groups / FRAME_S) == 0:
            # A full collection walks every rendered line and stalls the loop for 100+ ms;
            # while answers stream, what is already drawn is exempted from it (objects that
            # die are still freed by reference counting) and handed back when the run ends.
            gc.freeze()
        group = self._ticks % self._groups
        await self.tick(list(self.panes.values())[group :: self._groups])

    async def tick(self, panes: Sequence[ModelPane] | None = None) -> None:
        """Draw one frame's worth of changes, yielding between panes so that a key press
        never waits for every pane's rendering."""
        for pane in list(self.panes.values()) if panes is None else panes:
            pane.flush()
            await asyncio.sleep(0)
        self.summary.show([p.state for p in self.panes.values()])
        self.panel.flush()

    @on(ConsensusPanel.Marked)
    def _consensus_marks(self, event: ConsensusPanel.Marked) -> None:
        for name, mark in event.marks.items():
            if name in self.panes:
                self.panes[name].set_consensus_mark(mark)

    def _sync_panes(self) -> None:
        """Make the grid match the enabled models (after the palette changed them)."""
        grid = self.query_one(PaneGrid)
        wanted = self.active_models()
        names = {m.name for m in wanted}
        for name in [n for n in self.panes if n not in names]:
            self.panes.pop(name).remove()
        for index, spec in enumerate(wanted):
            if spec.name not in self.panes:
                pane = self._new_pane(spec)
                following = [
                    self.panes[m.name]
                    for m in wanted[index + 1 :]
                    if m.name in self.panes
                    and self.panes[m.name] is not pane
                    and self.panes[m.name].is_attached
                ]
                if following:
                    grid.mount(pane, before=following[0])
                else:
                    grid.mount(pane)
        self.call_after_refresh(grid.relayout)

    # --- actions ------------------------------------------------------------------------
    def action_cancel_all(self) -> None:
        if not self._fanouts:
            return
        for fanout in self._fanouts:
            fanout.cancel()
        self.notify("Cancelled every model still answering.", timeout=2)

    @on(ModelPane.Action)
    def _pane_action(self, event: ModelPane.Action) -> None:
        pane = event.pane
        name = pane.model_name
        if event.action == "cancel":
            fanout = self._runs.get(name)
            if fanout is not None:
                fanout.cancel(name)
        elif event.action == "retry":
            self.retry(name)
        elif event.action == "copy":
            self.copy_answer(pane)

    def retry(self, name: str) -> None:
        pane = self.panes.get(name)
        if pane is None or not pane.state.query:
            self.notify("Nothing to retry yet.", severity="warning")
            return
        if name in self._runs or self._retrieving:
            self.notify(
                f"{name} is still answering — press c to cancel it first.", severity="warning"
            )
            return
        spec = next(m for m in self.settings.models if m.name == name)
        turn = self._turn
        # The retry replaces this model's answer in the question's turn, not a new turn.
        recorder = None if turn is None else self._recorder(lambda: turn.restart([spec]))
        self._start([spec], pane.state.query, recorder)

    def copy_answer(self, pane: ModelPane) -> None:
        text = pane.state.text
        if not text:
            self.notify("This pane has no answer to copy.", severity="warning")
            return
        self.copy_to_clipboard(text)
        tool = system_clipboard_command()
        if tool is not None:
            self.run_worker(pipe_to(tool, text), exit_on_error=False)
        self.notify(f"Copied {len(text)} characters from {pane.model_name}.", timeout=2)

    def action_search_queries(self) -> None:
        def chosen(query: str | None) -> None:
            if query is not None:
                prompt = self.query_one(PromptArea)
                prompt.set_query(query)
                prompt.focus()

        self.push_screen(QuerySearchScreen(self.queries.search), chosen)

    def action_open_history(self) -> None:
        def chosen(query: str | None) -> None:
            if query is not None:
                self.send(query)

        self.push_screen(HistoryScreen(self.history), chosen)

    def action_consensus(self) -> None:
        self.panel.toggle_maximised()

    def toggle_synthesis(self) -> None:
        self.notify(self.consensus.toggle_synthesis(), timeout=5, markup=False)

    def choose_synthesizer(self, name: str) -> None:
        self.notify(self.consensus.choose(name), timeout=5, markup=False)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_new_session(self) -> None:
        if self.busy:
            self.notify("Finish or cancel (Escape) the running question first.", severity="warning")
            return
        self.history.new_session()
        self._turn, self._turn_sources = None, ()
        self.query_one(QuestionStrip).show("")
        self.query_one(SourcesStrip).show_sources(())
        for pane in self.panes.values():
            pane.state.state = "idle"
            pane.state.query = ""
            pane.start("")
            pane.state.state = "idle"
            pane.flush()
        self.summary.show([])
        self.consensus.end()
        self.panel.reset()
        self.notify("New session: models start without earlier context.", timeout=3)

    def toggle_model(self, name: str) -> None:
        self.enabled[name] = not self.enabled.get(name, False)
        state = "enabled" if self.enabled[name] else "disabled"
        if self.busy:
            self.notify(f"{name} {state}; the grid changes with the next question.")
        else:
            self._sync_panes()
            self.notify(f"{name} {state}.", timeout=2)

    def toggle_retrieval(self) -> None:
        on = self.knowledge.toggle()
        self.notify(toggle_note(on, self.knowledge.empty), timeout=5, markup=False)

    def action_show_source(self, number: int) -> None:
        if not self._turn_sources:
            self.notify(NO_SOURCES, timeout=4, markup=False)
        elif isinstance(self.screen, SourcesScreen):
            self.screen.action_jump(number)
        else:
            self.push_screen(SourcesScreen(self._turn_sources, number))

    def export_session(self, fmt: ExportFormat) -> None:
        try:
            path = self.history.export(fmt)
        except Exception as exc:
            self.notify(f"Export failed: {exc}", severity="error")
            return
        self.last_export = path
        self.notify(f"Session exported to {path}", title="Export", timeout=10)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from quorum_commands(self)

    def get_css_variables(self) -> dict[str, str]:  # $frame: ASCII frames or not
        return {**super().get_css_variables(), **glyphs.css_variables()}

    def get_line_filters(self) -> Sequence[LineFilter]:  # ASCII output or not
        return [*super().get_line_filters(), *glyphs.line_filters()]


def run_app(settings: Settings) -> int:
    glyphs.configure()  # ASCII frames and symbols on a terminal that cannot show Unicode
    app = QuorumApp(settings)
    app.run()
    return 0
