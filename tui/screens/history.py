"""Past sessions and their queries, searchable; open one to read its answers or re-run it."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from core.sanitize import strip_control
from tui.history_types import History, QueryRecord
from tui.markdown import FastMarkdown
from tui.timefmt import human_time


def render_record(record: QueryRecord) -> RenderableType:
    parts: list[RenderableType] = [
        Text(record.query, style="bold"),
        Text(human_time(record.when), style="dim"),
    ]
    for answer in record.answers:
        parts.append(Rule(Text(answer.model), align="left"))
        if answer.error:
            parts.append(Text(answer.error, style="red"))
        else:
            parts.append(FastMarkdown(answer.text))
    return Group(*parts)


def first_line(text: str) -> str:
    lines = strip_control(text).strip().splitlines()
    return lines[0] if lines else ""


class HistoryScreen(Screen[str | None]):
    """Dismisses with a query to re-run, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("ctrl+r", "rerun", "Re-run query"),
        Binding("ctrl+f", "focus_search", "Search"),
    ]
    DEFAULT_CSS = """
    HistoryScreen #lists { width: 45%; }
    HistoryScreen OptionList { height: 1fr; }
    HistoryScreen #reader { width: 1fr; border: round $panel; padding: 0 1; }
    """

    def __init__(self, history: History) -> None:
        super().__init__()
        self.history = history
        self.records: list[QueryRecord] = []
        self.selected: QueryRecord | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="lists"):
                yield Input(placeholder="search history…", id="search")
                yield OptionList(id="sessions")
                yield OptionList(id="queries")
            with VerticalScroll(id="reader"):
                yield Static("", id="answers")
        yield Footer()

    def on_mount(self) -> None:
        self._fill_sessions("")
        self.query_one("#search", Input).focus()  # typing right away searches

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self._fill_sessions(event.value)

    def _fill_sessions(self, needle: str) -> None:
        sessions = self.query_one("#sessions", OptionList)
        sessions.clear_options()
        for info in self.history.sessions(needle):
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(human_time(info.when), style="dim")
            label.append("  ")
            label.append(first_line(info.title))
            sessions.add_option(Option(label, id=info.id))
        if sessions.option_count:
            sessions.highlighted = 0
            return
        self._fill_queries([])  # nothing is selected: no questions and no answers either
        if needle.strip():
            message = Text.assemble("No session matches ", (needle.strip(), "bold"), ".")
        else:
            message = Text("No past sessions yet.")
        message.stylize("dim")
        self.query_one("#answers", Static).update(message)

    @on(OptionList.OptionHighlighted, "#sessions")
    def _session(self, event: OptionList.OptionHighlighted) -> None:
        self._fill_queries(self.history.session_queries(event.option.id or ""))

    def _fill_queries(self, records: list[QueryRecord]) -> None:
        self.records = records
        self.selected = None
        queries = self.query_one("#queries", OptionList)
        queries.clear_options()
        for index, record in enumerate(records):
            queries.add_option(
                Option(
                    Text(first_line(record.query), no_wrap=True, overflow="ellipsis"), id=str(index)
                )
            )
        if records:
            queries.highlighted = 0
            self._show(records[0])

    @on(OptionList.OptionHighlighted, "#queries")
    @on(OptionList.OptionSelected, "#queries")
    def _query(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        self._show(self.records[int(event.option.id or 0)])

    def _show(self, record: QueryRecord) -> None:
        self.selected = record
        self.query_one("#answers", Static).update(render_record(record))

    def action_rerun(self) -> None:
        if self.selected is not None:
            self.dismiss(self.selected.query)

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()
