"""What one model pane knows, folded from the event stream (no Textual here).

The pane widget reads this to draw its header; the app's frame tick decides when to redraw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.text import Text

from core.events import (
    Cancelled,
    Failed,
    Finished,
    FirstToken,
    Loading,
    ModelEvent,
    ModelStats,
    Retrying,
    Started,
    UsageReported,
)
from core.results import ModelResult

STATES = ("idle", "queued", "loading", "streaming", "retrying", "done", "failed", "cancelled")
TERMINAL = frozenset({"done", "failed", "cancelled"})


@dataclass(slots=True)
class PaneState:
    """The pane's view of one model: `answer` folds the text, errors and final stats (the same
    `ModelResult` the CLI uses); this adds what only a live pane shows — loading, retrying, the
    running figures."""

    name: str
    provider: str
    clock: Callable[[], float] = time.monotonic
    state: str = "idle"
    query: str = ""
    answer: ModelResult = field(init=False)
    started_at: float | None = None
    ttft_ms: float | None = None
    tokens_out: int | None = None
    retry_at: float | None = None
    retry_reason: str | None = None

    def __post_init__(self) -> None:
        self.answer = ModelResult(self.name, self.provider)

    def reset(self, query: str) -> None:
        self.state, self.query = "queued", query
        self.answer = ModelResult(self.name, self.provider)
        self.started_at = self.clock()
        self.ttft_ms = self.tokens_out = self.retry_at = None
        self.retry_reason = None

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def reasoning(self) -> str:
        return self.answer.reasoning

    @property
    def stats(self) -> ModelStats | None:
        """The engine's final figures, once the model has ended."""
        return self.answer.stats if self.state in TERMINAL else None

    @property
    def error(self) -> str | None:
        if self.state == "failed":
            return self.answer.error_text
        return self.retry_reason if self.state == "retrying" else None

    @property
    def active(self) -> bool:
        return self.state not in TERMINAL and self.state != "idle"

    def apply(self, event: ModelEvent) -> None:
        self.answer.apply(event)
        if isinstance(event, FirstToken):
            self.ttft_ms = event.ttft_ms
            self.state = "streaming"
        elif isinstance(event, UsageReported):
            if event.tokens_out is not None:
                self.tokens_out = event.tokens_out
        elif isinstance(event, Loading):
            self.state = "loading"
        elif isinstance(event, Started):
            self.provider = event.provider
            if self.state != "loading" or event.attempt > 1:
                self.state = "queued" if self.ttft_ms is None else "streaming"
            self.retry_at = None
        elif isinstance(event, Retrying):
            self.state = "retrying"
            self.retry_at = self.clock() + event.delay_s
            self.retry_reason = event.reason
        elif isinstance(event, Finished | Failed | Cancelled):
            self.state = self.answer.state

    def state_label(self) -> str:
        if self.state == "retrying" and self.retry_at is not None:
            left = max(0.0, self.retry_at - self.clock())
            return f"retrying in {left:.0f}s"
        return self.state

    def figures(self) -> list[str]:
        """Live figures while running, the engine's own stats once finished."""
        s = self.stats
        if s is not None:
            ttft, total = s.ttft_ms, s.total_ms
            rate, tokens = s.tokens_per_s, s.tokens_out
        else:
            ttft = self.ttft_ms
            total = (self.clock() - self.started_at) * 1000 if self.started_at else None
            chunks = len(self.answer.text_parts)
            tokens = self.tokens_out if self.tokens_out is not None else chunks or None
            rate = None
            if tokens and ttft is not None and total is not None and total - ttft > 250:
                rate = tokens / ((total - ttft) / 1000)
        out = []
        if ttft is not None:
            out.append(f"ttft {ttft / 1000:.2f}s")
        if total is not None and self.state != "idle":
            out.append(f"{total / 1000:.1f}s")
        if rate:
            out.append(f"{rate:.0f} tok/s")
        if tokens:
            out.append(f"{tokens} tok")
        return out


STATE_STYLE = {
    "idle": "dim",
    "queued": "dim",
    "loading": "bold",
    "streaming": "bold",
    "retrying": "bold",
    "done": "bold",
    "failed": "bold",
    "cancelled": "dim",
}


def header_text(state: PaneState, colors: dict[str, str], *, show_figures: bool = True) -> Text:
    """One header line. Model names come from the user's config; still never parsed as markup."""
    color = {
        "streaming": colors.get("primary", ""),
        "loading": colors.get("secondary", ""),
        "retrying": colors.get("warning", ""),
        "done": colors.get("success", ""),
        "failed": colors.get("error", ""),
    }.get(state.state, "")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(state.name, style="bold")
    text.append(f"  {state.provider}", style="dim")
    text.append("  ")
    text.append(state.state_label(), style=f"{STATE_STYLE[state.state]} {color}".strip())
    if show_figures:
        figures = state.figures()
        if figures:
            text.append("  " + " · ".join(figures), style="dim")
    return text


def notice_text(state: PaneState) -> Text | None:
    """The readable message shown at the end of a pane that did not finish."""
    if state.state == "failed":
        return Text(f"✗ {state.error}", style="bold red")
    if state.state == "cancelled":
        return Text("Cancelled.", style="dim italic")
    if state.state == "retrying" and state.error:
        return Text(f"⟳ {state.error}", style="yellow")
    return None
