"""The consensus panel: agreement, the similarity grid, each of the most representative
answer's sentences with its support, the claims only one model made, and the synthesis; in
1-3 lines under the panes, or maximised.

Events go in through `apply` (`ConsensusUpdated`, `Synthesis`, `FanoutFinished`); the app's
frame tick calls `flush` to draw them, so a streaming synthesis costs one repaint per frame.
`reset` starts a turn. After each consensus the panel posts `Marked`, every pane's mark for
`ModelPane.set_consensus_mark`. Model names and text are untrusted: never parsed as markup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from core.consensus.records import Consensus
from core.events import Event
from tui import glyphs
from tui.consensus_state import ConsensusState, SynthesisView
from tui.markdown import FastMarkdown
from tui.pane_state import ConsensusMark, mark_text

# The grid's colour levels, on the built-in embedder's scale (core.consensus.agreement):
# paraphrases score 0.85 and more, the same subject with different claims about 0.7.
HIGH, MEDIUM = 0.75, 0.5
COMPACT_BAR, DETAIL_BAR = 10, 20
FIRST_WORDS = 200
_MARKDOWN_MARKS = re.compile(r"[*_`#>|]+")
_PARTIAL = " ▏▎▍▌▋▊▉"

Colors = Mapping[str, str]


def level(value: float) -> str:
    """The theme colour a similarity or agreement is drawn in."""
    return "success" if value >= HIGH else "warning" if value >= MEDIUM else "error"


def one_line(text: str) -> str:
    return " ".join(text.split())


def bar(value: float, width: int, colors: Colors) -> Text:
    """``value`` (0..1) as a bar ``width`` cells wide, in `glyphs.current()`'s characters."""
    value = min(1.0, max(0.0, value))
    style = colors.get(level(value), "")
    if glyphs.current().ascii:
        filled = round(value * width)
        return Text.assemble(("#" * filled, style), ("." * (width - filled), "dim"))
    eighths = round(value * width * 8)
    full, part = divmod(eighths, 8)
    head = "█" * full + (_PARTIAL[part] if part else "")
    return Text.assemble((head, style), ("░" * (width - len(head)), "dim"))


def agreement_text(c: Consensus, colors: Colors, width: int) -> Text:
    text = Text("agreement ", style="bold")
    if c.agreement is None:
        text.append("-", style="dim")
        if c.reason:
            text.append(f"  {one_line(c.reason)}", style="dim")
        return text
    text.append_text(bar(c.agreement, width, colors))
    text.append(f" {c.agreement:.2f}", style=f"bold {colors.get(level(c.agreement), '')}")
    return text


def representative_text(c: Consensus, colors: Colors) -> Text | None:
    """ "◆ most representative: claude  ◇ outliers: gemini", or None before there are two."""
    if c.agreement is None or c.medoid is None:
        return None
    text = mark_text("medoid", colors)
    text.append(": ")
    text.append(c.medoid, style="bold")
    if c.outliers:
        text.append("  ")
        text.append_text(mark_text("outlier", colors))
        text.append("s: " if len(c.outliers) > 1 else ": ")
        text.append(", ".join(c.outliers), style="bold")
    return text


def first_words(text: str) -> str:
    return one_line(_MARKDOWN_MARKS.sub("", text[: FIRST_WORDS * 2]))[:FIRST_WORDS]


def synthesis_text(view: SynthesisView, colors: Colors, *, compact: bool) -> Text | None:
    """What the synthesis is doing, on one line: its timings, or why there is none."""
    text = Text()
    if view.phase in ("none", "off"):
        if view.phase == "off":
            if compact:
                return None
            text.append(one_line(view.reason or "synthesis is off"), style="dim")
        else:
            text.append("no synthesis: ", style=f"bold {colors.get('warning', '')}")
            text.append(one_line(view.reason or ""))
        if view.fallback:
            text.append("; showing the most representative answer (")
            text.append(view.fallback, style="bold")
            text.append(")")
        return text
    for failure in view.failures:
        text.append(one_line(failure), style=colors.get("error", ""))
        text.append("; ")
    text.append("synthesis", style="dim")
    if view.model:
        text.append(" by ", style="dim")
        text.append(view.model, style="bold")
    if view.phase == "waiting":
        text.append(": starting" if view.failures else ": once every model has answered")
        return text
    if compact:
        words = first_words(view.text)
        text.append(": ")
        text.append(words or "starting", style="" if words else "dim")
        return text
    figures = ["streaming"] if view.phase == "streaming" else []
    if view.ttft_ms is not None:
        figures.append(f"ttft {view.ttft_ms / 1000:.2f}s")
    if view.total_ms is not None:
        label = "total " if view.phase == "done" else ""
        figures.append(f"{label}{view.total_ms / 1000:.1f}s")
    if figures:
        text.append(f"  {f' {glyphs.current().dot} '.join(figures)}", style="dim")
    return text


def compact_lines(state: ConsensusState, colors: Colors) -> list[Text]:
    """The panel under the panes: agreement and progress, the medoid and outliers, the
    synthesis; each on one line, cut at the panel's edge."""
    overflow = glyphs.current().overflow
    if not state.started:
        hint = "agreement among the answers appears here as they arrive"
        return [Text(hint, style="dim", no_wrap=True, overflow=overflow)]
    c = state.figures
    first = agreement_text(c, colors, COMPACT_BAR)
    first.append(f"  {glyphs.current().dot}  ", style="dim")
    first.append(c.progress)
    lines = [first]
    if (representative := representative_text(c, colors)) is not None:
        lines.append(representative)
    if (synthesis := synthesis_text(state.synthesis_view(), colors, compact=True)) is not None:
        lines.append(synthesis)
    for line in lines:
        line.no_wrap, line.overflow = True, overflow
    return lines


# --- the similarity grid -----------------------------------------------------------------
def abbreviations(names: Sequence[str], width: int) -> list[str] | None:
    """Each name in at most ``width`` characters, all different: cut at the end, else its
    start and end kept around a ``~``; None when even that is ambiguous."""

    def distinct(labels: list[str]) -> bool:
        return len(set(labels)) == len(labels)

    cut = [n[:width] for n in names]
    if distinct(cut):
        return cut
    half = (width - 1) // 2
    for tail in (*range(half, width - 2), *range(half - 1, 0, -1)):
        both = [n if len(n) <= width else f"{n[: width - 1 - tail]}~{n[-tail:]}" for n in names]
        if distinct(both):
            return both
    return None


def cell_text(value: float, width: int) -> str:
    shown = f"{value:.2f}"
    return (shown if width >= 4 else shown.removeprefix("0"))[:width].rjust(width)


@lru_cache(maxsize=64)
def cell_style(base: str, background: str) -> str:
    """A level's colour softened into the panel, with a readable text colour on it."""
    try:
        fill = Color.parse(base).blend(Color.parse(background), 0.35)
    except Exception:  # a theme without that colour: the value is still written in the cell
        return "reverse"
    ink = "#000000" if fill.brightness > 0.5 else "#ffffff"
    return f"{ink} on {fill.hex6}"


def grid_lines(c: Consensus, colors: Colors, width: int) -> list[Text]:
    """The similarity matrix over the measured answers, each line at most ``width`` cells:
    columns shrink to four cells and names are abbreviated before anything is cut."""
    names = c.models
    count = len(names)
    if count < 2 or not c.similarity:
        return []
    longest = max(len(n) for n in names)
    widest = min(12, max(6, longest + 1))  # a cell is a gap and a label or a value
    cell = max(4, min(widest, (width - min(longest, 8)) // count))
    label_width = max(3, min(longest, 16, width - count * cell))
    numbers = [str(i + 1) for i in range(count)]
    named = abbreviations(names, cell - 1)
    columns = named or numbers
    if named is None:  # numbered columns: each row says its number
        rows = abbreviations(names, label_width - 3) or [""] * count
        rows = [f"{number:>2} {row}" for number, row in zip(numbers, rows, strict=True)]
    else:
        rows = abbreviations(names, label_width) or numbers
    background = colors.get("surface") or colors.get("panel") or "#000000"
    header = Text(" " * label_width, no_wrap=True, overflow="crop")
    for column in columns:
        header.append(" " + column.rjust(cell - 1), style="dim")
    lines = [header]
    for i, (label, values) in enumerate(zip(rows, c.similarity, strict=True)):
        style = "bold" if names[i] == c.medoid else ""
        if names[i] in c.outliers:
            style = f"bold {colors.get('warning', '')}"
        line = Text(label.ljust(label_width), style=style, no_wrap=True, overflow="crop")
        for j, value in enumerate(values):
            line.append(" ")
            if i == j:
                line.append("-".rjust(cell - 1), style="dim")
            else:
                line.append(
                    cell_text(value, cell - 1), cell_style(colors.get(level(value), ""), background)
                )
        lines.append(line)
    legend = Text(no_wrap=True, overflow="crop")
    for name, label in (("success", f"{HIGH:g}+ alike"), ("warning", f"{MEDIUM:g}+ partly")):
        legend.append("  ", style=cell_style(colors.get(name, ""), background))
        legend.append(f" {label}  ", style="dim")
    legend.append("  ", style=cell_style(colors.get("error", ""), background))
    legend.append(" less: different", style="dim")
    return [*lines, legend]


class Fitted:
    """A renderable laid out at the width it is given (the grid adapts to the panel)."""

    def __init__(self, build: Callable[[int], RenderableType]) -> None:
        self._build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._build(options.max_width)


def figures_view(state: ConsensusState, colors: Colors, width: int) -> RenderableType:
    """The maximised panel's top: agreement, progress, what is left out, medoid, the grid."""
    c = state.figures
    parts: list[RenderableType] = []
    parts.append(agreement_text(c, colors, DETAIL_BAR))
    if c.agreement is not None:
        parts.append(Text("how alike the answers are, not whether they are right", "dim"))
    progress = Text(c.progress)
    if c.pending:
        progress.append(f"  {glyphs.current().dot}  still answering: ", style="dim")
        progress.append(", ".join(c.pending))
    parts.append(progress)
    if (left_out := state.left_out()) is not None:
        parts.append(Text(left_out, style=colors.get("warning", "")))
    if (representative := representative_text(c, colors)) is not None:
        parts.append(representative)
    if grid := grid_lines(c, colors, width):
        parts.append(Text("\nsimilarity between the answers (1: alike, 0: unrelated)", "bold"))
        parts.extend(grid)
    return Group(*parts)


def sentences_view(c: Consensus, colors: Colors) -> RenderableType | None:
    """The medoid's sentences, each marked k/n, and the claims only one model made."""
    parts: list[RenderableType] = []
    others = len(c.models) - 1
    if c.medoid is not None and c.support and others > 0:
        title = Text(style="bold")
        title.append(c.medoid)
        title.append(f"'s answer, each sentence supported by k of {others} other answers")
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", no_wrap=True)
        table.add_column(ratio=1)
        for sentence in c.support:
            share = sentence.count / others
            style = colors.get("success" if share == 1 else "error" if share == 0 else "warning")
            mark = Text(f"{sentence.count}/{others}", style=style or "")
            table.add_row(mark, Text(sentence.text))
        parts += [title, table]
    if c.unique:
        if parts:
            parts.append(Text())
        parts.append(Text("said by one model only (no other answer says anything close)", "bold"))
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, max_width=16, overflow=glyphs.current().overflow)
        table.add_column(ratio=1)
        for claim in c.unique:
            table.add_row(Text(claim.model, style="bold"), Text(claim.text))
        parts.append(table)
    return Group(*parts) if parts else None


def _static(id: str) -> Static:
    return Static("", id=id, markup=False)


class ConsensusPanel(Vertical):
    DEFAULT_CSS = (Path(__file__).parent.parent / "consensus.tcss").read_text(encoding="utf-8")
    ALLOW_MAXIMIZE = True

    class Marked(Message):
        """Every asked model's pane mark after a new consensus (None: no mark)."""

        def __init__(self, marks: dict[str, ConsensusMark | None]) -> None:
            super().__init__()
            self.marks = marks

    def __init__(
        self,
        *,
        answer_text: Callable[[str], str | None] | None = None,
        state: ConsensusState | None = None,
        id: str | None = "consensus",
    ) -> None:
        """``answer_text(model)``: that model's answer, shown when there is no synthesis
        (without it, the medoid's sentences are shown instead)."""
        super().__init__(id=id)
        self.state = state or ConsensusState()
        self._answer_text = answer_text
        self.compact = _static("consensus-compact")
        self.figures = _static("consensus-figures")
        self.synthesis_head = _static("consensus-synthesis-head")
        self.synthesis_body = _static("consensus-synthesis")
        self.sentences = _static("consensus-sentences")
        self.detail = VerticalScroll(
            self.figures,
            self.synthesis_head,
            self.synthesis_body,
            self.sentences,
            id="consensus-detail",
        )
        self._shown: dict[str, object] = {}  # what each part last drew, to skip repeats
        self._focus_before: Widget | None = None

    def compose(self) -> ComposeResult:
        yield self.compact
        yield self.detail

    def on_mount(self) -> None:
        self.watch(self.screen, "maximized", self._maximized_changed, init=False)
        self.app.theme_changed_signal.subscribe(self, lambda _: self.redraw())
        self.flush()

    # --- events -----------------------------------------------------------------------
    def reset(
        self,
        asked: Sequence[str] = (),
        synthesizers: Sequence[str] | None = None,
        off_reason: str = "synthesis is off",
    ) -> None:
        """A new turn: the models asked, in pane order, and the synthesizer then each
        fallback (``()``: synthesis is off; None: not known, the fan-out's end decides)."""
        before = self.state.asked
        self.state.reset(asked, synthesizers, off_reason)
        self.post_message(self.Marked(dict.fromkeys((*before, *self.state.asked))))
        self.flush()

    def apply(self, event: Event) -> None:
        """Fold in a `ConsensusUpdated`, `Synthesis` or `FanoutFinished`; others are ignored."""
        before = self.state.version
        if self.state.apply(event) and self.state.version != before:
            self.post_message(self.Marked(self.state.marks()))

    @property
    def maximised(self) -> bool:
        return self.is_attached and self.screen.maximized is self

    def toggle_maximised(self) -> None:
        screen = self.screen
        if screen.maximized is self:
            screen.minimize()
        else:
            self._focus_before = screen.focused
            screen.maximize(self, container=False)

    def _maximized_changed(self) -> None:
        if self.maximised:
            self.flush()
            self.detail.focus()
        elif self._focus_before is not None:
            if self._focus_before.is_attached:
                self._focus_before.focus()
            self._focus_before = None

    # --- drawing ----------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw everything again (the theme changed)."""
        self._shown.clear()
        self.flush()

    def flush(self) -> None:
        """Draw what changed since the last call; the maximised parts only while shown."""
        if not self.is_attached:
            return
        colors = self.app.theme_variables
        compact = compact_lines(self.state, colors)
        self._draw(self.compact, "compact", [(t.plain, t.spans) for t in compact], Group(*compact))
        if not self.maximised:
            return
        state, version = self.state, (self.state.version, self.app.theme)
        if self._shown.get("figures") != version:
            self._shown["figures"] = version
            self.figures.update(Fitted(lambda width: figures_view(state, colors, width)))
            sentences = sentences_view(state.figures, colors)
            self.sentences.display = sentences is not None
            self.sentences.update(sentences or "")
        view = state.synthesis_view()
        head = synthesis_text(view, colors, compact=False)
        self._draw(self.synthesis_head, "head", head and (head.plain, head.spans), head or "")
        body = self._body_text(view)
        if self._shown.get("body") != (body, self.app.theme):
            self._shown["body"] = (body, self.app.theme)
            self.synthesis_body.display = bool(body)
            dark = self.app.current_theme.dark
            self.synthesis_body.update(
                FastMarkdown(body, code_theme="monokai" if dark else "friendly") if body else ""
            )

    def _draw(self, part: Static, key: str, seen: object, renderable: RenderableType) -> None:
        if self._shown.get(key) != seen:
            self._shown[key] = seen
            part.update(renderable)

    def _body_text(self, view: SynthesisView) -> str:
        if view.phase in ("streaming", "done"):
            return view.text
        if view.fallback is None:
            return ""
        text = self._answer_text(view.fallback) if self._answer_text else None
        return text or " ".join(s.text for s in self.state.figures.support)
