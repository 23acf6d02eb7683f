"""Ctrl+R: incremental search through past queries, by their words and by meaning.

The words match as each key is typed (the past queries in memory); the meaning search runs in
an exclusive thread worker and its hits are merged in when they arrive (see
`tui.screens.history`). Each question is listed once, marked with what found it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker

from tui.history_types import History, QueryMatch, merge_matches
from tui.keys import bind
from tui.screens.history import (
    MEANING_GROUP,
    app_history,
    match_label,
    meaning_result,
    show_note,
    start_meaning_search,
)

LIMIT = 200


class QuerySearchScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("query-search.close", "dismiss(None)", "Close"),
        bind("query-search.older", "move(1)", "Older", show=False),
        bind("query-search.newer", "move(-1)", "Newer", show=False),
    ]
    DEFAULT_CSS = """
    QuerySearchScreen { align: center bottom; }
    QuerySearchScreen > Vertical {
        width: 100%; height: 60%; border: round $primary; background: $surface;
    }
    QuerySearchScreen OptionList {
        height: 1fr; border: none; text-wrap: nowrap; text-overflow: ellipsis;
    }
    QuerySearchScreen #search-note { height: auto; padding: 0 1; }
    """

    def __init__(self, search: Callable[[str], list[str]], history: History | None = None) -> None:
        """``search`` finds past queries by their words at once; ``history`` (the app's, when
        not given) finds them by meaning."""
        super().__init__()
        self._search = search
        self._history = history
        self.needle = ""
        self._by_words: list[QueryMatch] = []
        self._by_meaning: list[QueryMatch] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield OptionList(id="matches")
            yield Static("", id="search-note")
            yield Input(placeholder="search past queries…", id="needle")

    def on_mount(self) -> None:
        if self._history is None:
            self._history = app_history(self.app)
        self.query_one("#search-note", Static).display = False
        self.refill("")
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self.refill(event.value)

    def refill(self, needle: str) -> None:
        """The words' matches at once; the meaning search's merged in when it reports."""
        self.needle = needle
        try:
            queries = self._search(needle)
        except Exception:  # an unreadable history: nothing found by words
            queries = []
        self._by_words = [QueryMatch("", 0, query, "") for query in queries]
        self._by_meaning = []
        self._show()
        note = self.query_one("#search-note", Static)
        if needle.strip():
            show_note(note, start_meaning_search(self, self._history, needle))
        else:
            self.workers.cancel_group(self, MEANING_GROUP)
            show_note(note, None)

    @on(Worker.StateChanged)
    def _meaning_found(self, event: Worker.StateChanged) -> None:
        result = meaning_result(event, self.needle)
        if result is None:
            return
        self._by_meaning = result.matches
        show_note(self.query_one("#search-note", Static), result.note)
        self._show()

    def _show(self) -> None:
        """The queries found (each once); the one highlighted stays highlighted."""
        options = self.query_one(OptionList)
        highlighted = options.highlighted
        kept = None if highlighted is None else options.get_option_at_index(highlighted).id
        searching = bool(self.needle.strip())
        found = (
            merge_matches(self._by_words, self._by_meaning, LIMIT, key=lambda m: m.query)
            if searching
            else self._by_words
        )
        options.clear_options()
        options.add_options(
            [Option(self._label(m, searching), id=m.query) for m in found if m.query.strip()]
        )
        if options.option_count:
            ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
            options.highlighted = ids.index(kept) if kept in ids else 0

    @staticmethod
    def _label(match: QueryMatch, searching: bool) -> Text:
        if searching:
            return match_label(match, when=False)
        first = match.query.strip().splitlines()[0]
        return Text(first, no_wrap=True, overflow="ellipsis")

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
