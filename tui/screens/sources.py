"""F3 (or a click on a ``[n]`` citation): every source of the question on screen, in full.

Each chunk shows its number, title, file, location and score, then its whole text as plain
text (sources are untrusted: control sequences stripped, never markup). A digit jumps to that
source; Up/Down and PgUp/PgDn scroll; Escape closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from core.events import Source
from core.sanitize import strip_control
from tui.keys import bind, keys_text
from tui.widgets.sources import source_label


def source_head(number: int, source: Source) -> Text:
    text = source_label(number, source)
    text.append(f"   score {source.score:.2f}", style="dim")
    return text


class SourceEntry(Vertical):
    def __init__(self, number: int, source: Source) -> None:
        super().__init__(id=f"source-{number}", classes="source")
        self.number = number
        self.source = source

    def compose(self) -> ComposeResult:
        yield Static(source_head(self.number, self.source), markup=False, classes="source-head")
        text = Text(strip_control(self.source.text).rstrip())
        yield Static(text, markup=False, classes="source-text")


class SourcesScreen(ModalScreen[None]):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("sources.close", "dismiss", "Close"),
        bind("sources.scroll-up", "scroll(-1)", "Scroll", show=False),
        bind("sources.scroll-down", "scroll(1)", "Scroll", show=False),
        bind("sources.page-up", "page(-1)", "Page", show=False),
        bind("sources.page-down", "page(1)", "Page", show=False),
        *(
            bind(f"sources.source-{n}", f"jump({n})", f"Source {n}", show=False)
            for n in range(1, 10)
        ),
    ]

    def __init__(self, sources: Sequence[Source], current: int = 1) -> None:
        super().__init__()
        self.sources = tuple(sources)
        self.current = max(1, min(current, len(self.sources)))

    def compose(self) -> ComposeResult:
        count = len(self.sources)
        title = Text.assemble(
            ("Sources", "bold"),
            (
                f"  {count} passage{'s' if count != 1 else ''} from the knowledge base, as every "
                "model got them   "
                + keys_text(
                    self.app,
                    "{sources.source-*} jumps · {sources.close:first} closes",
                    SourcesScreen,
                ),
                "dim",
            ),
        )
        with Vertical():
            yield Static(title, id="sources-title")
            with VerticalScroll(id="sources-list"):
                for number, source in enumerate(self.sources, start=1):
                    yield SourceEntry(number, source)

    def on_mount(self) -> None:
        self.call_after_refresh(self.action_jump, self.current)

    @property
    def entries(self) -> list[SourceEntry]:
        return list(self.query(SourceEntry))

    def action_jump(self, number: int) -> None:
        if not 1 <= number <= len(self.sources):
            self.notify(
                f"There is no source [{number}] for this question.",
                severity="warning",
                markup=False,
            )
            return
        self.current = number
        for entry in self.entries:
            entry.set_class(entry.number == number, "-current")
        target = self.query_one(f"#source-{number}", SourceEntry)
        self.query_one("#sources-list", VerticalScroll).scroll_to_widget(
            target, animate=False, top=True
        )

    def action_scroll(self, lines: int) -> None:
        self.query_one("#sources-list", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, pages: int) -> None:
        scroll = self.query_one("#sources-list", VerticalScroll)
        scroll.scroll_relative(y=pages * max(1, scroll.size.height - 1), animate=False)
