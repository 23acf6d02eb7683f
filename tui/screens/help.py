"""Every key, in one place."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Prompt",
        (
            ("Enter", "send the question to every enabled model"),
            ("Shift+Enter / Ctrl+J", "new line"),
            ("Up / Down", "previous / next query (at the first / last line)"),
            ("Ctrl+R", "search past queries"),
            ("@path, Tab", "attach a file's whole text (Tab completes the path)"),
        ),
    ),
    (
        "Everywhere",
        (
            ("Escape", "cancel every model still answering (restores a maximized pane first)"),
            ("Tab / Shift+Tab", "next / previous pane"),
            (
                "Ctrl+P",
                "command palette: models, retrieval, synthesis, theme, session, history, export",
            ),
            ("F2", "history: past sessions, search, re-run (Ctrl+R there)"),
            ("F3", "the question's sources in full (1-9 jumps; or click a [n])"),
            (
                "F4",
                "the consensus panel maximised: agreement grid, support, synthesis (F4 restores)",
            ),
            ("F1", "this help"),
            ("Ctrl+N", "new session (models forget earlier turns)"),
            ("Ctrl+Q", "quit"),
        ),
    ),
    (
        "Focused pane",
        (
            ("c", "cancel this model"),
            ("r", "retry this model with the same question"),
            ("y", "copy the answer"),
            ("m", "maximize / restore"),
            ("1-9", "open the source an [n] citation names"),
            ("Up / Down / PgUp / PgDn / Home / End", "scroll the answer"),
        ),
    ),
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for section, rows in KEYS:
        table.add_row(f"[u]{section}[/u]", "")
        for key, what in rows:
            table.add_row(Text(key), Text(what))  # "[n]" is text here, not markup
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 95%; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 1 2;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_table())
