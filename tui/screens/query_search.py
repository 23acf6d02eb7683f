"""Ctrl+R: incremental search through past queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option


class QuerySearchScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("down,ctrl+r", "move(1)", "Older", show=False),
        Binding("up", "move(-1)", "Newer", show=False),
    ]
    DEFAULT_CSS = """
    QuerySearchScreen { align: center bottom; }
    QuerySearchScreen > Vertical {
        width: 100%; height: 60%; border: round $primary; background: $surface;
    }
    QuerySearchScreen OptionList { height: 1fr; border: none; }
    """

    def __init__(self, search: Callable[[str], list[str]]) -> None:
        super().__init__()
        self._search = search

    def compose(self) -> ComposeResult:
        with Vertical():
            yield OptionList(id="matches")
            yield Input(placeholder="search past queries…", id="needle")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def _fill(self, needle: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        for query in self._search(needle):
            first = query.strip().splitlines()[0] if query.strip() else query
            options.add_option(Option(Text(first, no_wrap=True, overflow="ellipsis"), id=query))
        if options.option_count:
            options.highlighted = 0

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + delta))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            self.dismiss(None)
            return
        self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
