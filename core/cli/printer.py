"""``quorum ask`` as plain text for a pipe or file: interleaved lines, each labelled with its
model, then a timing table. (On a terminal, `core.cli.live` draws progress instead.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TextIO

from core.cli.glyphs import Glyphs, for_stream
from core.cli.table import columns, format_table, one_line
from core.events import Cancelled, Event, Failed, Finished, Retrying, TextDelta
from core.results import FanoutResult, ModelResult


class Labels:
    """Each model's label: its name (sanitised: names are untrusted too), padded, coloured on
    a terminal."""

    def __init__(self, names: Sequence[str], *, color: bool) -> None:
        self.names = {n: one_line(n) for n in names}
        self.width = max((columns(n) for n in self.names.values()), default=4)
        self.color = color
        self._palette = {n: 31 + i % 6 for i, n in enumerate(names)}

    def name(self, model: str) -> str:
        return self.names.get(model) or one_line(model)

    def paint(self, model: str, text: str) -> str:
        return f"\x1b[{self._palette.get(model, 37)}m{text}\x1b[0m" if self.color else text

    def padded(self, model: str) -> str:
        name = self.name(model)
        return name + " " * (self.width - columns(name))


def failure_line(event: Failed | Cancelled, cross: str) -> str:
    if isinstance(event, Cancelled):
        return f"{cross} cancelled"
    status = f"HTTP {event.status}: " if event.status else ""
    return one_line(f"{cross} {event.kind}: {status}{event.message}")


def retry_line(event: Retrying, name: str) -> str:
    return one_line(
        f"{name}: retrying in {event.delay_s:.1f} s (attempt {event.attempt}): {event.reason}"
    )


class TextPrinter:
    """Interleaved streams, each line labelled with its model; a timing table at the end."""

    def __init__(self, out: TextIO, err: TextIO, names: Sequence[str]) -> None:
        self.out = out
        self.err = err
        self.glyphs: Glyphs = for_stream(out)
        self.labels = Labels(names, color=out.isatty())
        self.pending: dict[str, str] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield  # lines are printed as they complete: nothing runs beside the fan-out

    def _label(self, name: str) -> str:
        return self.labels.paint(name, f"{self.labels.padded(name)} {self.glyphs.bar} ")

    def show(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            buffered = self.pending.get(event.model, "") + event.text
            *lines, rest = buffered.split("\n")
            for line in lines:
                self.out.write(self._label(event.model) + line + "\n")
            self.pending[event.model] = rest
            if lines:
                self.out.flush()
        elif isinstance(event, Finished | Failed | Cancelled):
            self._flush_pending(event.model)
            if isinstance(event, Finished) and event.message:  # cut at max_answer_chars
                self.out.write(self._label(event.model) + one_line(event.message) + "\n")
            elif isinstance(event, Failed | Cancelled):
                self.out.write(self._label(event.model) + failure_line(event, self.glyphs.cross))
                self.out.write("\n")
            self.out.flush()
        elif isinstance(event, Retrying):
            self.err.write(retry_line(event, self.labels.name(event.model)) + "\n")

    def _flush_pending(self, model: str) -> None:
        rest = self.pending.pop(model, "")
        if rest:
            self.out.write(self._label(model) + rest + "\n")

    def interrupted(self, result: FanoutResult) -> None:
        """Ctrl+C: finish every unfinished model's last line and mark it interrupted."""
        for model in unfinished(result):
            self._flush_pending(model.model)
            self.out.write(self._label(model.model) + f"{self.glyphs.cross} interrupted\n")
        self.out.flush()

    def summary(self, result: FanoutResult) -> None:
        self.out.write("\n" + summary_text(result))
        self.out.flush()


def unfinished(result: FanoutResult) -> list[ModelResult]:
    ended = ("done", "cut", "failed", "cancelled")
    return [r for r in result.responses.values() if r.state not in ended]


def summary_text(result: FanoutResult) -> str:
    """The timing table and the wall time."""
    rows = [("model", "state", "ttft", "total", "tok out", "tok/s", "tries")]
    rows += [_row(r) for r in result.responses.values()]
    wall = f"{result.wall_ms / 1000:.2f} s" if result.wall_ms is not None else "?"
    table = format_table(rows, right_aligned=range(2, 7)) + f"wall time {wall}\n"
    return table + consensus_text(result)


def consensus_text(result: FanoutResult) -> str:
    """Agreement, the medoid, outliers, claims only one model made and the synthesis."""
    c = result.consensus
    if c is None or len(c.asked) < 2:  # one model asked: nothing to compare, nothing to say
        return ""
    lines = [""]
    if c.agreement is None:
        lines.append(f"agreement: - ({one_line(c.reason or '')})")
    else:
        lines.append(
            f"agreement {c.agreement:.2f} ({c.progress}; how alike the answers are, "
            "not whether they are right)"
        )
        lines.append(f"most representative answer: {one_line(c.medoid or '-')}")
        if c.outliers:
            lines.append("outliers: " + ", ".join(one_line(m) for m in c.outliers))
        if c.unique:
            lines.append("said by one model only:")
            lines += [f"  {one_line(u.model)}: {one_line(u.text)}" for u in c.unique]
    synthesis = result.synthesis
    errors = "; ".join(one_line(e) for e in synthesis.errors)
    if synthesis.ok and synthesis.synthesizer:
        stats = synthesis.runs[-1].stats
        lines.append(f"\nsynthesis by {one_line(synthesis.synthesizer)} ({ms(stats.total_ms)}):")
        if errors:
            lines.append(f"(after: {errors})")
        lines.append((synthesis.text or "").strip())
    elif errors:
        shown = f"; the most representative answer is {one_line(c.medoid)}'s" if c.medoid else ""
        lines.append(f"\nno synthesis: {errors}{shown}")
    return "\n".join(lines) + "\n"


def _row(r: ModelResult) -> tuple[str, str, str, str, str, str, str]:
    s = r.stats
    state = "ok" if r.state == "done" else r.state
    return (
        r.model,
        state,
        ms(s.ttft_ms),
        ms(s.total_ms),
        "-" if s.tokens_out is None else str(s.tokens_out),
        "-" if s.tokens_per_s is None else f"{s.tokens_per_s:.1f}",
        str(s.attempts),
    )


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"
