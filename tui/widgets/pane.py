"""One model's pane: header (name, provider, state, live figures), folded reasoning, answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Collapsible, Static

from core.events import ModelEvent, ReasoningDelta, TextDelta
from tui import glyphs
from tui.blocks import BlockSplitter
from tui.keys import bind
from tui.pane_state import TERMINAL, ConsensusMark, PaneState, header_text, notice_text
from tui.widgets.stream_view import StreamView


class PaneHeader(Widget):
    """The pane's header: one line, or two when the figures do not fit beside the name.
    Repaints without layout unless that line count changes."""

    DEFAULT_CSS = "PaneHeader { height: 1; padding: 0 1; }"

    def __init__(self, state: PaneState, lines_below: Callable[[], int]) -> None:
        super().__init__()
        self.state = state
        self._lines_below = lines_below
        self.show_figures = True
        self._last: Text | None = None
        self._rows = 1

    def _text(self) -> Text:
        return header_text(
            self.state,
            self.app.theme_variables,
            show_figures=self.show_figures,
            below=self._lines_below(),
            width=self.size.width or None,
        )

    def render(self) -> Text:
        self._last = self._text()  # what is on screen: `tick` compares with it
        return self._last

    def tick(self) -> None:
        text = self._text()
        rows = text.plain.count("\n") + 1
        if rows != self._rows:
            self._rows = rows
            self.styles.height = rows
        if self._last is None or text.plain != self._last.plain or text.spans != self._last.spans:
            self._last = text
            self.refresh()

    def on_resize(self) -> None:
        self.tick()


class ModelPane(Vertical, can_focus=True):
    """Events go in through `apply`; the app's frame tick calls `flush` to draw them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("pane.cancel", "cancel", "Cancel model"),
        bind("pane.retry", "retry", "Retry model"),
        bind("pane.copy", "copy", "Copy answer"),
        bind("pane.maximize", "toggle_maximize", "Maximize"),
        *(
            bind(f"pane.source-{n}", f"app.show_source({n})", f"Source {n}", show=False)
            for n in range(1, 10)
        ),
        bind("pane.scroll-up", "scroll(-1)", "Scroll", show=False),
        bind("pane.scroll-down", "scroll(1)", "Scroll", show=False),
        bind("pane.page-up", "page(-1)", "Page", show=False),
        bind("pane.page-down", "page(1)", "Page", show=False),
        bind("pane.top", "edge(0)", "Top", show=False),
        bind("pane.bottom", "edge(1)", "End", show=False),
    ]

    class Action(Message):
        """The user asked for something about this pane (cancel, retry, copy)."""

        def __init__(self, pane: ModelPane, action: str) -> None:
            super().__init__()
            self.pane = pane
            self.action = action

    def __init__(self, name: str, provider: str, *, show_figures: bool = True) -> None:
        super().__init__(classes="pane -idle")
        self.state = PaneState(name, provider)
        self.splitter = BlockSplitter()
        self.body = StreamView()
        self.header = PaneHeader(self.state, lambda: self.body.lines_below)
        self.header.show_figures = show_figures
        self.reasoning_view = Static("", markup=False)
        g = glyphs.current()
        self.reasoning = Collapsible(
            self.reasoning_view,
            title="reasoning",
            collapsed=True,
            collapsed_symbol=g.collapsed,
            expanded_symbol=g.expanded,
        )
        self._dirty = False
        self._reasoning_dirty = False
        self._shown_state = "idle"

    @property
    def model_name(self) -> str:
        return self.state.name

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.reasoning
        yield self.body

    def on_mount(self) -> None:
        self.reasoning.display = False

    # --- events -------------------------------------------------------------------------
    def start(self, query: str, sources: int = 0) -> None:
        """A new answer to ``query``; its ``[1]``..``[sources]`` citations are links."""
        self.state.reset(query)
        self.splitter = BlockSplitter()
        self.body.citations = sources
        self.body.clear()
        self.reasoning_view.update("")
        self.reasoning.display = False
        self._dirty = True

    def apply(self, event: ModelEvent) -> None:
        self.state.apply(event)
        if isinstance(event, TextDelta):
            self.splitter.feed(event.text)
        elif isinstance(event, ReasoningDelta):
            self._reasoning_dirty = True
        self._dirty = True

    def flush(self) -> None:
        """Draw what arrived since the last frame (called by the app's frame tick)."""
        state = self.state
        if self._dirty:
            self._dirty = False
            if state.state in TERMINAL and self._shown_state not in TERMINAL:
                self.splitter.close()
                self.body.finish(self.splitter.take())
            elif state.state not in TERMINAL:
                splitter = self.splitter
                self.body.update(
                    splitter.take(),
                    splitter.tail_since,
                    code=splitter.in_code,
                    joined=splitter.tail_joined,
                    growing=splitter.in_code or splitter.tail_paragraph,
                )
            self.body.set_notice(notice_text(state))
            if state.state != self._shown_state:
                self.remove_class(f"-{self._shown_state}")
                self.add_class(f"-{state.state}")
                self._shown_state = state.state
        if self._reasoning_dirty:
            self._reasoning_dirty = False
            reasoning = state.reasoning
            if not self.reasoning.display:
                self.reasoning.display = True
            self.reasoning.title = f"reasoning ({len(reasoning.split())} words)"
            if not self.reasoning.collapsed:
                self.reasoning_view.update(Text(reasoning))
        self.header.tick()

    def set_consensus_mark(self, mark: ConsensusMark | None) -> None:
        """Mark the header "most representative" (the medoid) or "outlier", or neither."""
        if mark != self.state.mark:
            self.state.mark = mark
            self.header.tick()

    def on_stream_view_moved(self, event: StreamView.Moved) -> None:
        event.stop()
        self.header.tick()  # the count of lines below changed

    def on_collapsible_expanded(self) -> None:
        self.reasoning_view.update(Text(self.state.reasoning))

    # --- actions ------------------------------------------------------------------------
    def action_cancel(self) -> None:
        self.post_message(self.Action(self, "cancel"))

    def action_retry(self) -> None:
        self.post_message(self.Action(self, "retry"))

    def action_copy(self) -> None:
        self.post_message(self.Action(self, "copy"))

    def action_toggle_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is self:
            screen.minimize()
        else:
            screen.maximize(self, container=False)
        self.body.refresh()

    def action_scroll(self, lines: int) -> None:
        self.body.scroll_lines(lines)
        self.header.tick()

    def action_page(self, pages: int) -> None:
        self.body.scroll_page(pages)
        self.header.tick()

    def action_edge(self, end: int) -> None:
        self.body.scroll_edge(bool(end))
        self.header.tick()
