"""``quorum ask`` on a terminal: a status line per model still answering (its state, figures
and latest words), redrawn in place at most ten times a second; each answer printed whole,
under a heading, the moment its model ends; the timing table last.

The status block is always the last thing on screen: printing anything erases it first and
draws it again after, in the same write (inside a synchronized-update bracket, which terminals
that know it use to avoid tearing and the others ignore).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO

import anyio

from core.answer_cap import finished_state
from core.cli.glyphs import for_stream
from core.cli.printer import Labels, failure_line, ms, summary_text
from core.cli.table import columns, fit, fit_tail, one_line
from core.events import (
    Cancelled,
    Event,
    Failed,
    FanoutStarted,
    Finished,
    FirstToken,
    Loading,
    ModelEvent,
    ReasoningDelta,
    Retrying,
    Started,
    TerminalEvent,
    TextDelta,
    UsageReported,
)
from core.results import FanoutResult, ModelResult

REDRAW_S = 0.1
_TAIL_CHARS = 400  # enough of the latest words for the widest terminal line
_SYNC_ON, _SYNC_OFF = "\x1b[?2026h", "\x1b[?2026l"
Clock = Callable[[], float]


@dataclass(slots=True)
class Progress:
    """One model's answer so far, as its status line shows it."""

    name: str
    started_at: float
    state: str = "waiting"  # waiting | loading | thinking | streaming | retrying
    ttft_ms: float | None = None
    tokens_out: int | None = None
    chunks: int = 0
    retry_at: float | None = None
    retry_reason: str = ""
    tail: str = ""

    def apply(self, event: ModelEvent, now: float) -> None:
        if isinstance(event, TextDelta):
            self.chunks += 1
            self.state = "streaming"
            self.tail = (self.tail + event.text)[-_TAIL_CHARS:] if self.chunks > 1 else event.text
        elif isinstance(event, ReasoningDelta):
            if self.chunks == 0:
                self.state = "thinking"
                self.tail = (self.tail + event.text)[-_TAIL_CHARS:]
        elif isinstance(event, FirstToken):
            self.ttft_ms = event.ttft_ms
        elif isinstance(event, UsageReported) and event.tokens_out is not None:
            self.tokens_out = event.tokens_out
        elif isinstance(event, Loading):
            self.state = "loading"
        elif isinstance(event, Started) and event.attempt > 1:
            self.state, self.retry_at = "waiting", None
        elif isinstance(event, Retrying):
            self.state, self.retry_at = "retrying", now + event.delay_s
            self.retry_reason = event.reason

    def status(self, now: float) -> tuple[str, list[str], str]:
        """The state, the figures (most telling first) and the latest words."""
        elapsed = now - self.started_at
        if self.state == "retrying" and self.retry_at is not None:
            left = max(0.0, self.retry_at - now)
            return f"retrying in {left:.1f}s", [], self.retry_reason
        figures = [f"{elapsed:.1f}s"]
        tokens = self.tokens_out if self.tokens_out is not None else self.chunks
        if tokens:
            figures.append(f"{tokens} tok")
            streaming_s = elapsed - (self.ttft_ms or 0) / 1000
            if streaming_s > 0.25:
                figures.append(f"{tokens / streaming_s:.0f} tok/s")
        if self.ttft_ms is not None:
            figures.append(f"ttft {ms(self.ttft_ms)}")
        return self.state, figures, self.tail


class LiveView:
    """The ``ask`` printer for a terminal (same calls as `TextPrinter`)."""

    def __init__(
        self,
        out: TextIO,
        names: Sequence[str],
        *,
        clock: Clock = time.monotonic,
        size: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self.out = out
        self.glyphs = for_stream(out)
        self.labels = Labels(names, color=True)
        self._clock = clock
        self._size = size or _terminal_size
        self._order = list(names)
        self._answers = {n: ModelResult(n) for n in names}
        self._running: dict[str, Progress] = {}
        self._drawn: list[str] = []  # the status lines now on screen

    # --- the printer calls -------------------------------------------------------------------
    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Redraw the status block every `REDRAW_S` while the fan-out runs."""

        async def tick() -> None:
            while True:
                await anyio.sleep(REDRAW_S)
                self._write()

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    def show(self, event: Event) -> None:
        now = self._clock()
        if isinstance(event, FanoutStarted):
            self._order = list(event.models)
            for name in event.models:
                self._answers.setdefault(name, ModelResult(name))
                self._running[name] = Progress(name, now)
            self._write()
            return
        if not isinstance(event, ModelEvent):
            return
        model = event.model
        answer = self._answers.setdefault(model, ModelResult(model))
        answer.apply(event)
        progress = self._running.get(model)
        if progress is not None:
            progress.apply(event, now)
        if isinstance(event, TerminalEvent):
            self._running.pop(model, None)
            self._write(self._answer_text(answer, event))

    def interrupted(self, result: FanoutResult) -> None:
        """Ctrl+C: what every unfinished model had said so far, marked interrupted."""
        printed = [
            self._answer_text(self._answers[n], None) for n in self._order if n in self._running
        ]
        self._running.clear()
        self._write("".join(printed))

    def summary(self, result: FanoutResult) -> None:
        self._running.clear()
        self._write("\n" + summary_text(result))

    # --- drawing -----------------------------------------------------------------------------
    def _answer_text(self, answer: ModelResult, event: Event | None) -> str:
        g = self.glyphs
        if isinstance(event, Finished):
            s = event.stats
            state = finished_state(event.finish_reason)
            figures = [f"{state} in {ms(s.total_ms)}", f"ttft {ms(s.ttft_ms)}"]
            if s.tokens_out is not None:
                figures.append(f"{s.tokens_out} tok")
            if s.tokens_per_s is not None:
                figures.append(f"{s.tokens_per_s:.1f} tok/s")
            outcome = f" {g.dot} ".join(figures)
        elif isinstance(event, Failed | Cancelled):
            outcome = failure_line(event, g.cross)
        else:
            outcome = f"{g.cross} interrupted"
            progress = self._running.get(answer.model)
            if progress is not None:
                outcome += f" after {self._clock() - progress.started_at:.1f}s"
        width = self._width()
        name = self.labels.name(answer.model)
        heading = fit(f"{g.rule * 2} {name} {g.rule * 2} {outcome}", width)
        text = answer.text
        body = text if text.endswith("\n") or not text else text + "\n"
        if isinstance(event, Finished) and event.message:
            body += fit(one_line(event.message), width) + "\n"
        return self.labels.paint(answer.model, heading) + "\n" + body + "\n"

    def _status_lines(self) -> list[str]:
        width, height = self._width(), self._size()[1]
        now = self._clock()
        running = [self._running[n] for n in self._order if n in self._running]
        room = max(1, height - 2)
        shown = running if len(running) <= room else running[: room - 1]
        lines = [self._status_line(p, now, width) for p in shown]
        if len(shown) < len(running):
            lines.append(fit(f"+ {len(running) - len(shown)} more still answering", width))
        return lines

    def _status_line(self, progress: Progress, now: float, width: int) -> str:
        """``name │ state figures… │ latest words``: figures give way to words on a narrow
        terminal, words need at least a third of the line."""
        g = self.glyphs
        state, figures, tail = progress.status(now)
        label = self.labels.padded(progress.name)
        words = one_line(tail)
        head = f"{label} {g.bar} {state}"
        keep_for_words = min(columns(words), max(12, width // 3)) + 3 if words else 0
        for figure in figures:
            longer = f"{head} {g.dot} {figure}"
            if columns(longer) + keep_for_words > width:
                break
            head = longer
        head = fit(head, width)
        room = width - columns(head) - 3
        line = f"{head} {g.bar} {fit_tail(words, room)}" if words and room >= 8 else head
        if not line.startswith(label):  # a terminal too narrow for the whole name
            return line
        return self.labels.paint(progress.name, label) + line[len(label) :]

    def _width(self) -> int:
        return max(20, self._size()[0] - 1)  # never the last column: no automatic wrap

    def _write(self, printed: str = "") -> None:
        """Erase the status block, print ``printed``, draw the block again: one write."""
        lines = self._status_lines()
        if not printed and lines == self._drawn:
            return
        erase = f"\x1b[{len(self._drawn)}F\x1b[J" if self._drawn else ""
        block = "".join(line + "\n" for line in lines)
        self.out.write(_SYNC_ON + erase + printed + block + _SYNC_OFF)
        self.out.flush()
        self._drawn = lines


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size()
    return size.columns, size.lines
