"""The consensus panel (for now: the timing summary)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from tui import glyphs
from tui.pane_state import PaneState


def timing_summary(states: Sequence[PaneState]) -> Text:
    """Who answered first, who was slowest, who failed — from the finished panes."""
    text = Text(no_wrap=True, overflow=glyphs.current().overflow)
    if not states or all(s.state == "idle" for s in states):
        text.append("Ask something: every enabled model answers side by side.", style="dim")
        return text
    running = [s for s in states if s.active]
    answered = ("done", "cut")
    done = [s for s in states if s.state in answered and s.stats and s.stats.total_ms is not None]
    failed = [s for s in states if s.state == "failed"]
    cancelled = [s for s in states if s.state == "cancelled"]
    first = [s for s in states if s.ttft_ms is not None or (s.stats and s.stats.ttft_ms)]
    parts: list[Text] = []
    if first:
        quickest = min(first, key=lambda s: _ttft(s))
        parts.append(
            Text.assemble(
                ("first ", "dim"), (quickest.name, "bold"), f" {_ttft(quickest) / 1000:.2f}s"
            )
        )
    if done:
        slowest = max(done, key=lambda s: s.stats.total_ms or 0.0 if s.stats else 0.0)
        total = slowest.stats.total_ms if slowest.stats else None
        parts.append(
            Text.assemble(
                ("slowest ", "dim"), (slowest.name, "bold"), f" {(total or 0) / 1000:.1f}s"
            )
        )
    parts.append(Text(f"{len(done)}/{len(states)} done", style="dim"))
    if running:
        parts.append(Text(f"{len(running)} running", style="dim"))
    if failed:
        parts.append(Text.assemble(("failed ", "dim"), (", ".join(s.name for s in failed), "bold")))
    if cancelled:
        parts.append(Text.assemble(("cancelled ", "dim"), ", ".join(s.name for s in cancelled)))
    return Text(f" {glyphs.current().dot} ", style="dim").join(parts)


def _ttft(state: PaneState) -> float:
    if state.ttft_ms is not None:
        return state.ttft_ms
    return state.stats.ttft_ms or 0.0 if state.stats else 0.0


class SummaryPanel(Static):
    DEFAULT_CSS = "SummaryPanel { height: 1; padding: 0 1; }"

    def __init__(self) -> None:
        super().__init__("", markup=False, id="summary")
        self._plain = ""

    def show(self, states: Sequence[PaneState]) -> None:
        text = timing_summary(states)
        if text.plain != self._plain:
            self._plain = text.plain
            self.update(text, layout=False)
