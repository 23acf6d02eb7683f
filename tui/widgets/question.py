"""The question being answered, in one or two lines above the panes."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console
from rich.segment import Segment
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from core.sanitize import strip_control

MAX_LINES = 2
PREFIX = "› "


@lru_cache(maxsize=8)
def question_lines(question: str, width: int, console: Console) -> tuple[Text, ...]:
    """``question`` wrapped to ``width``: at most two lines, the last cut with an ellipsis."""
    text = Text.assemble((PREFIX, "dim"), (question, "bold"))
    lines = list(text.wrap(console, max(1, width)))
    if len(lines) > MAX_LINES:
        rest = [line.copy() for line in lines[MAX_LINES - 1 :]]
        for line in rest:
            line.rstrip()
        last = Text(" ").join(rest)
        last.truncate(width, overflow="ellipsis")
        lines = [*lines[: MAX_LINES - 1], last]
    return tuple(lines)


class QuestionStrip(Widget):
    """Hidden until a question is sent. Whitespace is folded, so a long or many-line question
    takes at most two lines; control sequences are removed (the text is never markup)."""

    DEFAULT_CSS = """
    QuestionStrip { height: auto; padding: 0 1; background: $boost; display: none; }
    QuestionStrip.-shown { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.question = ""

    def show(self, question: str) -> None:
        self.question = " ".join(strip_control(question).split())
        self.set_class(bool(self.question), "-shown")
        self.refresh(layout=True)

    def _lines(self, width: int) -> tuple[Text, ...]:
        return question_lines(self.question, width, self.app.console) if self.question else ()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width))

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        lines = self._lines(width)
        if y >= len(lines):
            return Strip.blank(width, self.rich_style)
        segments = Segment.apply_style(lines[y].render(self.app.console, end=""), self.rich_style)
        return Strip(segments).adjust_cell_length(width, self.rich_style)
