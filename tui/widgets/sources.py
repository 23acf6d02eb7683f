"""The sources strip: what the knowledge base gave the models for the question on screen.

``[1] Rollback (docs/ops.md, lines 3-6)`` for each source, in the order the models number them;
hidden while there are none. Sources are untrusted text: control sequences are stripped and
nothing is parsed as markup. A click (or F3) opens the sources screen with the full chunks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from rich.text import Text
from textual import events
from textual.widgets import Static

from core.events import Source
from core.sanitize import strip_control
from tui import glyphs


def short_path(path: str, *, brief: bool = False) -> str:
    """Relative to the working directory when under it; else with ``~`` for the home, or
    (``brief``, for the one-line strip) just the file's name."""
    clean = strip_control(path)
    candidate = Path(clean)
    if not candidate.is_absolute():
        return clean
    with suppress(OSError, ValueError):
        cwd = Path.cwd()
        if candidate.is_relative_to(cwd):
            return str(candidate.relative_to(cwd))
        if brief:
            return candidate.name or clean
        home = Path.home()
        if candidate.is_relative_to(home):
            return f"~{os.sep}{candidate.relative_to(home)}"
    return clean


def where(source: Source, *, brief: bool = False) -> str:
    """``docs/ops.md, lines 3-6``."""
    location = strip_control(source.location)
    path = short_path(source.source, brief=brief)
    return f"{path}, {location}" if location else path


def source_label(number: int, source: Source, *, brief: bool = False) -> Text:
    """``[1] title (path, lines 3-9)``."""
    title = " ".join(strip_control(source.title).split())
    text = Text(f"[{number}]", style="bold")
    if title:
        text.append(f" {title}")
    text.append(f" ({where(source, brief=brief)})", style="dim")
    return text


class SourcesStrip(Static):
    """The numbered sources of the turn on screen; hidden when there are none."""

    DEFAULT_CSS = "SourcesStrip { height: auto; max-height: 3; padding: 0 1; display: none; }"

    def __init__(self) -> None:
        super().__init__("", markup=False, id="sources")
        self.sources: tuple[Source, ...] = ()

    def show_sources(self, sources: Sequence[Source]) -> None:
        self.sources = tuple(sources)
        if not self.sources:
            self.display = False
            return
        text = Text("sources  ", style="dim")
        text.append_text(
            Text(f"  {glyphs.current().dot}  ").join(
                source_label(n, s, brief=True) for n, s in enumerate(self.sources, start=1)
            )
        )
        self.update(text)
        self.display = True

    async def on_click(self, event: events.Click) -> None:
        event.stop()
        await self.run_action("app.show_source(1)")
