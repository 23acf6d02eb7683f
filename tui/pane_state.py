"""What one model pane knows, folded from the event stream (no Textual here).

The pane widget reads this to draw its header; the app's frame tick decides when to redraw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

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
from tui import glyphs

ConsensusMark = Literal["medoid", "outlier"]
STATES = (
    "idle",
    "queued",
    "loading",
    "streaming",
    "retrying",
    "done",
    "cut",
    "failed",
    "cancelled",
)
TERMINAL = frozenset({"done", "cut", "failed", "cancelled"})


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
    mark: ConsensusMark | None = None  # set by the consensus panel, cleared by a new answer

    def __post_init__(self) -> None:
        self.answer = ModelResult(self.name, self.provider)

    def reset(self, query: str) -> None:
        self.state, self.query = "queued", query
        self.answer = ModelResult(self.name, self.provider)
        self.started_at = self.clock()
        self.ttft_ms = self.tokens_out = self.retry_at = None
        self.retry_reason = self.mark = None

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
            return f"retrying in {math.ceil(left)}s"  # a countdown: 0.4 s to go reads "1s"
        return self.state

    def figures(self, *, short: bool = False) -> list[str]:
        """Live figures while running, the engine's own stats once finished. ``short`` drops
        the labels and the token count (``0.06s · 1.2s · 45t/s``) for a narrow pane."""
        s = self.stats
        if s is not None:
            ttft, total = s.ttft_ms, s.total_ms
            rate, tokens = s.tokens_per_s, s.tokens_out
        else:
            ttft = self.ttft_ms
            total = (self.clock() - self.started_at) * 1000 if self.started_at else None
            chunks = self.answer.text_chunks
            tokens = self.tokens_out if self.tokens_out is not None else chunks or None
            rate = None
            if tokens and ttft is not None and total is not None and total - ttft > 250:
                rate = tokens / ((total - ttft) / 1000)
        out = []
        if ttft is not None:
            out.append(f"{ttft / 1000:.2f}s" if short else f"ttft {ttft / 1000:.2f}s")
        if total is not None and self.state != "idle":
            out.append(f"{total / 1000:.1f}s")
        if rate:
            out.append(f"{rate:.0f}t/s" if short else f"{rate:.0f} tok/s")
        if tokens and not short:
            out.append(f"{tokens} tok")
        return out


STATE_STYLE = {
    "idle": "dim",
    "queued": "dim",
    "loading": "bold",
    "streaming": "bold",
    "retrying": "bold",
    "done": "bold",
    "cut": "bold",
    "failed": "bold",
    "cancelled": "dim",
}


def mark_text(mark: ConsensusMark, colors: Mapping[str, str], *, short: int = 0) -> Text:
    """The consensus mark: "most representative" (the medoid) or "outlier"; ``short`` 1 or 2
    for a narrow header (a shorter label, then the symbol alone)."""
    ascii_only = glyphs.current().ascii
    if mark == "medoid":
        symbol = "*" if ascii_only else "◆"
        label = ("most representative", "representative", "")[short]
        color = colors.get("success", "")
    else:
        symbol = "!" if ascii_only else "◇"
        label, color = ("outlier", "outlier", "")[short], colors.get("warning", "")
    return Text(f"{symbol} {label}".rstrip(), style=f"bold {color}".strip())


def header_text(
    state: PaneState,
    colors: dict[str, str],
    *,
    show_figures: bool = True,
    below: int = 0,
    width: int | None = None,
) -> Text:
    """The header: name, provider, state, figures and the lines below the view. On one line
    when that fits ``width``; else the figures go to a second line, in shorter forms as the
    pane narrows (never cut off while a form fits), and the provider goes before any figure.
    Model names come from the user's config; still never parsed as markup."""
    g = glyphs.current()
    color = {
        "streaming": colors.get("primary", ""),
        "loading": colors.get("secondary", ""),
        "retrying": colors.get("warning", ""),
        "done": colors.get("success", ""),
        "cut": colors.get("warning", ""),
        "failed": colors.get("error", ""),
    }.get(state.state, "")

    def head(provider: bool, short_mark: int = 0) -> Text:
        text = Text(no_wrap=True, overflow=g.overflow)
        text.append(state.name, style="bold")
        if provider:
            text.append(f"  {state.provider}", style="dim")
        text.append("  ")
        text.append(state.state_label(), style=f"{STATE_STYLE[state.state]} {color}".strip())
        if state.mark:
            text.append("  ")
            text.append_text(mark_text(state.mark, colors, short=short_mark))
        if below:
            text.append(f"  {g.below}{below}", style="dim")
        return text

    full = head(provider=True)
    forms = []
    if show_figures and (long := state.figures()):
        short = state.figures(short=True)
        untallied = [f for f in long if not f.endswith(" tok")]
        forms = [f" {g.dot} ".join(f) for f in (long, untallied, short)]

    def fitted(width: int) -> Text:  # a long mark is shortened before the name is cut
        if full.cell_len <= width:
            return full
        narrow = (head(False), head(False, 1), head(False, 2))
        return next((h for h in narrow if h.cell_len <= width), narrow[-1])

    if not forms:
        return fitted(width) if state.mark and width is not None else full
    if width is None:
        return _joined(full, "  ", forms[0])
    for figures in forms[:2]:
        if full.cell_len + 2 + len(figures) <= width:
            return _joined(full, "  ", figures)
    first = fitted(width)
    second = next((f for f in forms if len(f) <= width), forms[-1])
    return _joined(first, "\n", second)


def _joined(head: Text, gap: str, figures: str) -> Text:
    text = head.copy()
    text.append(gap)
    text.append(figures, style="dim")
    return text


def notice_text(state: PaneState) -> Text | None:
    """The readable message shown at the end of a pane that did not finish."""
    g = glyphs.current()
    if state.state == "failed":
        return Text(f"{g.failed} {state.error}", style="bold red")
    if state.state == "cancelled":
        return Text("Cancelled.", style="dim italic")
    if state.state == "cut":  # the answer kept in part: the message says where it stopped
        return Text(state.answer.error or "cut", style="yellow")
    if state.state == "retrying" and state.error:
        return Text(f"{g.retrying} {state.error}", style="yellow")
    return None
