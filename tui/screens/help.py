"""Every key, in one place, as the bindings and ``[keys]`` have them now.

A row's ``{id}`` is filled with that action's current keys (`tui.keys.fill`); the rows without
one are the prompt's own keys and Textual's, which no keymap moves. The screens' own actions
follow as rows of `core.keymap` (keys, what it does, the action's id for ``[keys]``), so every
remappable action is listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from core.keymap import SCOPES, group_id, group_keys, groups
from tui.keys import bind, current_keys, fill
from tui.screens.history import HistoryScreen
from tui.screens.query_search import QuerySearchScreen
from tui.screens.sources import SourcesScreen
from tui.widgets.pane import ModelPane

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Prompt",
        (
            ("Enter", "send the question to every enabled model"),
            ("Shift+Enter / Ctrl+J", "new line"),
            ("Up / Down", "previous / next query (at the first / last line)"),
            ("{app.search-queries}", "search past queries"),
            ("@path, Tab", "attach a file's whole text (Tab completes the path)"),
        ),
    ),
    (
        "Everywhere",
        (
            (
                "{app.cancel-all}",
                "cancel every model still answering (restores a maximized pane first)",
            ),
            ("Tab / Shift+Tab", "next / previous pane"),
            (
                "Ctrl+P",
                "command palette: models, retrieval, synthesis, theme, session, history, export",
            ),
            (
                "{app.open-history}",
                "history: past sessions, search, re-run ({history.rerun} there)",
            ),
            (
                "{app.sources}",
                "the question's sources in full ({sources.source-*} jumps; or click a [n])",
            ),
            (
                "{app.consensus}",
                "the consensus panel maximised: agreement grid, support, synthesis "
                "({app.consensus} restores)",
            ),
            ("{app.help}", "this help"),
            ("{app.new-session}", "new session (models forget earlier turns)"),
            ("Ctrl+Q", "quit"),
        ),
    ),
    (
        "Focused pane",
        (
            ("{pane.cancel}", "cancel this model"),
            ("{pane.retry}", "retry this model with the same question"),
            ("{pane.copy}", "copy the answer"),
            ("{pane.maximize}", "maximize / restore"),
            ("{pane.source-*}", "open the source an [n] citation names"),
            (
                "{pane.scroll-up} / {pane.scroll-down} / {pane.page-up} / {pane.page-down} / "
                "{pane.top} / {pane.bottom}",
                "scroll the answer",
            ),
        ),
    ),
)


# The screens whose actions are listed one by one, from `core.keymap`.
SCREEN_SCOPES = ("history", "query-search", "sources", "help")


def help_table(keys: Mapping[str, tuple[str, ...]]) -> Table:
    """The rows of `KEYS` and of the screens' actions with ``keys`` (each action id's current
    keys) filled in."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for section, rows in KEYS:
        table.add_row(f"[u]{section}[/u]", "")
        for key, what in rows:
            table.add_row(Text(fill(key, keys)), Text(fill(what, keys)))  # "[n]": text, not markup
        table.add_row("", "")
    for scope in SCREEN_SCOPES:
        table.add_row(f"[u]{SCOPES[scope].title}[/u]", "")
        for group in groups(scope):
            row = Text(group[0].does)
            row.append(f"  {group_id(group)}", style="dim")
            table.add_row(Text(group_keys(group, keys)), row)
        table.add_row("", "")
    table.add_row(
        "", Text("[keys] in config.toml moves these keys (the ids in grey; all in the README).")
    )
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [bind("help.close", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 95%; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 1 2;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            owners = (ModelPane, HistoryScreen, QuerySearchScreen, SourcesScreen, HelpScreen)
            yield Static(help_table(current_keys(self.app, type(self.app), *owners)))
