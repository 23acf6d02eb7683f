"""A pane's answer: streamed Markdown drawn with the Line API, touching only itself.

Finished blocks (see `tui.blocks`) are rendered to strips once and kept; only the live tail is
re-rendered, at most once per frame tick. A tail that only grows (a paragraph, a code block) is
rendered as a `GrowingText`: its settled lines are frozen too, so a frame costs what is new, not
the tail's length (one runaway paragraph of megabytes). The widget scrolls itself (no
ScrollView) so new text never asks the screen for a layout pass — a pane's size is fixed by the
grid.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tui import glyphs
from tui.blocks import Block, plain_paragraph
from tui.citations import citation_style, link_citations
from tui.markdown import WINDOW_CHARS, FastMarkdown, GrowingText, Render

Tail = Callable[[int], str]  # the tail's text from an offset on

BUDGET_CHARS = 32_768  # finished Markdown rendered per call at most (past the first block)


def _no_tail(start: int) -> str:
    return ""


class StreamView(Widget):
    """Markdown blocks + a live tail + an optional notice (error, cancelled) at the end."""

    class Moved(Message):
        """The view scrolled or resized by itself (not by a key the pane forwarded)."""

    DEFAULT_CSS = """
    StreamView { height: 1fr; padding: 0 1; }
    """

    TAIL_AS_MARKDOWN = True

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._blocks: list[Block] = []
        self._block_strips: list[Strip] = []
        self._block_starts: list[int] = []  # where each rendered block begins in _block_strips
        self._rendered = 0  # blocks rendered so far; the rest wait for the next calls
        self._catching_up = False
        self._tail: Tail = _no_tail
        self._tail_code = False
        self._tail_joined = False
        self._tail_growing = False
        self._grown: GrowingText | None = None  # the growing tail's frozen lines
        self._grown_width = 0
        self._tail_gap: list[Strip] = []  # the blank line before the tail
        self._tail_strips: list[Strip] = []  # the tail's live lines
        self._notice: Text | None = None
        self._notice_strips: list[Strip] = []
        self._width = 0
        self._fitted = Size(0, 0)  # the size the lines and the place were last fitted to
        self._top = 0
        self.follow = True
        self._style: Style | None = None
        self._shown: list[Strip | None] = []  # what each visible row showed last time
        self.citations = 0  # the turn's sources: [1]..[n] are drawn as links to them

    # --- content ----------------------------------------------------------------------
    def clear(self) -> None:
        self._blocks.clear()
        self._block_strips, self._block_starts, self._rendered = [], [], 0
        self._tail, self._grown, self._tail_gap, self._tail_strips = _no_tail, None, [], []
        self._notice, self._notice_strips = None, []
        self._top, self.follow = 0, True
        self._repaint_changed()

    def update(
        self,
        blocks: list[Block],
        tail: Tail,
        *,
        code: bool,
        joined: bool,
        growing: bool = False,
    ) -> None:
        """New finished blocks (rendered once) and the current tail. ``growing``: the tail can
        only grow until it ends as a block (a plain paragraph, a code block)."""
        width = self._render_width()
        if blocks and self._rendered < len(self._blocks):
            self._grown = None  # the tail's block is not next in line: render it afresh
        self._blocks.extend(blocks)
        if width:
            self._render_pending(width, self._grown if blocks else None)
        if blocks:
            self._grown = None  # the first finished block was the tail
        self._tail, self._tail_code, self._tail_joined = tail, code, joined
        self._tail_growing = growing
        self._tail_strips = self._render_tail(width) if width else []
        if not width:
            self._width = 0  # nothing rendered: the next resize renders it all
        self._changed()

    def finish(self, blocks: list[Block]) -> None:
        """The answer is complete: the last blocks are final, and the view settles so that the
        end of the answer sits at the bottom of the pane."""
        self.update(blocks, _no_tail, code=False, joined=False)
        self._settle()

    @property
    def caught_up(self) -> bool:
        return self._rendered >= len(self._blocks)

    def _render_pending(self, width: int, grown: GrowingText | None = None) -> None:
        """Render waiting blocks, about `BUDGET_CHARS` of them (at least one); a huge answer
        that arrived at once is drawn over the next refreshes, the event loop free between."""
        spent = 0
        while self._rendered < len(self._blocks) and spent < BUDGET_CHARS:
            block = self._blocks[self._rendered]
            self._add_block_strips(block, width, grown)
            grown = None
            self._rendered += 1
            spent += len(block.text)
        if not self.caught_up and not self._catching_up and self.is_attached:
            self._catching_up = True
            self.call_after_refresh(self._catch_up)

    def _catch_up(self) -> None:
        self._catching_up = False
        width = self._render_width()
        if not width or self.caught_up:
            return
        self._render_pending(width)
        if self.caught_up:
            self._settle()
        else:
            self._changed()
        self.post_message(self.Moved())

    def set_notice(self, notice: Text | None) -> None:
        self._notice = notice
        width = self._render_width()
        self._notice_strips = self._render_notice(width) if width and notice else []
        if not width:
            self._width = 0
        self._changed()

    def _parts(self) -> tuple[list[Strip], ...]:
        frozen = self._grown.frozen if self._grown is not None else []
        return self._block_strips, self._tail_gap, frozen, self._tail_strips, self._notice_strips

    @property
    def line_count(self) -> int:
        return sum(len(part) for part in self._parts())

    @property
    def lines_below(self) -> int:
        return max(0, self.line_count - self._top - self.size.height)

    # --- rendering --------------------------------------------------------------------
    def _render_width(self) -> int:
        return max(0, self.size.width)

    def _markdown(self, text: str) -> RenderableType:
        dark = self.app.current_theme.dark if self.is_attached else True
        return FastMarkdown(text, code_theme="monokai" if dark else "friendly")

    def _lines(self, renderable: RenderableType, width: int) -> list[Strip]:
        console = self.app.console
        options = console.options.update_width(width)
        if glyphs.current().ascii:
            options.encoding = "ascii"  # Rich then draws rules, tables and panels in ASCII
        lines = console.render_lines(renderable, options, pad=False)
        return [Strip(line) for line in lines]

    def _cited(self, strips: list[Strip]) -> list[Strip]:
        if not self.citations:
            return strips
        accent = self.app.theme_variables.get("accent") if self.is_attached else None
        return link_citations(strips, self.citations, citation_style(accent))

    def _render_text(self, width: int, *, code: bool, markdown: bool) -> Render:
        def render(text: str) -> list[Strip]:
            if markdown:
                return self._cited(self._lines(self._markdown(text), width))
            strips = self._lines(Text(text, style="dim" if code else ""), width)
            return strips if code else self._cited(strips)

        return render

    def _add_block_strips(self, block: Block, width: int, grown: GrowingText | None) -> None:
        if grown is not None and grown.markdown and not block.code and self._grown_width == width:
            # The tail this block completes: its frozen lines stand, the rest is rendered
            # on from there (the splitter's tail is always the start of its next block).
            live = grown.advance(block.text[grown.start :])
            strips = [*grown.frozen, *live]
        elif not block.code and len(block.text) > WINDOW_CHARS and plain_paragraph(block.text):
            long = GrowingText(self._render_text(width, code=False, markdown=True), markdown=True)
            live = long.advance(block.text)
            strips = [*long.frozen, *live]
        else:
            strips = self._lines(self._markdown(block.text), width)
            if not block.code:
                strips = self._cited(strips)
        if self._block_strips and not block.joined:
            strips.insert(0, Strip.blank(0))
        self._block_starts.append(len(self._block_strips))
        self._block_strips.extend(strips)

    def _render_tail(self, width: int) -> list[Strip]:
        code = self._tail_code
        markdown = not code and self.TAIL_AS_MARKDOWN
        render = self._render_text(width, code=code, markdown=markdown)
        grown = self._grown
        if not self._tail_growing or (grown is not None and grown.markdown != markdown):
            grown = self._grown = None
        if grown is not None and self._grown_width != width:
            grown = self._grown = None  # resized before `on_resize` ran: start over
        self._grown_width = width
        if self._tail_growing:
            if grown is None:
                grown = self._grown = GrowingText(render, markdown=markdown)
            live = self._tail(grown.start)
            strips = grown.advance(live) if live else []
        else:
            text = self._tail(0)
            strips = render(text) if text else []
        shown = bool(strips) or (grown is not None and bool(grown.frozen))
        gap = shown and bool(self._blocks) and not self._tail_joined
        self._tail_gap = [Strip.blank(0)] if gap else []
        return strips

    def _render_notice(self, width: int) -> list[Strip]:
        assert self._notice is not None
        strips = self._lines(self._notice, width)
        if self._blocks or self._tail_strips or (self._grown and self._grown.frozen):
            strips.insert(0, Strip.blank(0))
        return strips

    def restyle(self) -> None:
        """Render every block again (the theme changed: code blocks switch highlighting)."""
        self._rerender()

    def _rerender(self) -> None:
        """Render everything again (new width or theme), keeping the reader's place: the end
        while following, otherwise the same part of the same block at the top."""
        width = self._render_width()
        anchor = self._anchor()
        self._block_strips, self._block_starts, self._grown = [], [], None
        self._rendered = 0
        if width:
            self._render_pending(width)
        self._tail_strips = self._render_tail(width) if width else []
        self._notice_strips = self._render_notice(width) if width and self._notice else []
        if not self.follow:
            self._top = self._restore(anchor)
        self._settle()

    def _sections(self) -> list[int]:
        """Line counts of what is drawn, in order: each rendered block, the tail, the notice."""
        starts = self._block_starts
        ends = [*starts[1:], len(self._block_strips)][: len(starts)]
        blocks = [end - start for start, end in zip(starts, ends, strict=True)]
        _, gap, frozen, live, notice = self._parts()
        return [*blocks, len(gap) + len(frozen) + len(live), len(notice)]

    def _anchor(self) -> tuple[int, int, int]:
        """(section, line in it, its line count) of the top row."""
        index = self._top
        for section, length in enumerate(sections := self._sections()):
            if index < length:
                return section, index, length
            index -= length
        return len(sections), 0, 0

    def _restore(self, anchor: tuple[int, int, int]) -> int:
        """The top row that shows the anchored section again after a re-render; the line
        within it scales with the section's new length."""
        section, line, length = anchor
        sections = self._sections()
        if section >= len(sections):
            return self.line_count
        top = sum(sections[:section])
        if length and sections[section]:
            top += min(sections[section] - 1, line * sections[section] // length)
        return top

    def _changed(self) -> None:
        """Repaint only the rows whose content changed.

        While following a growing answer the view jumps ahead by a third of the pane when the
        text reaches the bottom (like a terminal's jump scroll), so most frames repaint only the
        line or two of the live tail instead of shifting, and repainting, the whole pane.
        """
        height = self.size.height
        if self.follow and self.line_count > self._top + height:
            self._top = max(0, self.line_count - height + max(1, height // 3))
        self._repaint_changed()

    def _settle(self) -> None:
        """End at the bottom while following; never leave blank rows below the end."""
        limit = max(0, self.line_count - self.size.height)
        self._top = limit if self.follow else max(0, min(self._top, limit))
        self._repaint_changed()

    def _visible(self) -> list[Strip | None]:
        rows: list[Strip | None] = []
        parts = self._parts()
        for y in range(self.size.height):
            index = self._top + y
            strip: Strip | None = None
            for part in parts:
                if index < len(part):
                    strip = part[index]
                    break
                index -= len(part)
            rows.append(strip)
        return rows

    def _repaint_changed(self) -> None:
        rows = self._visible()
        old = self._shown
        if len(old) != len(rows):
            self._shown = rows
            self.refresh()
            return
        width = self.size.width
        for y, (before, after) in enumerate(zip(old, rows, strict=True)):
            if before is not after and before != after:
                self.refresh(Region(0, y, width, 1))
        self._shown = rows

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None
        self._shown = []

    def on_resize(self, event: events.Resize) -> None:
        if self.size != self._fitted:
            self._fit()

    def _fit(self) -> None:
        """Take the current size: a new width renders again, and the end (or the reader's
        place) stays in view."""
        self._fitted = size = self.size
        self._shown = []
        if not size.width:
            return  # hidden for now: keep the lines and the place until it has a width again
        if size.width != self._width:
            self._width = size.width
            self._rerender()
        self._settle()
        self.post_message(self.Moved())

    def render_line(self, y: int) -> Strip:
        if self.size != self._fitted:
            # Textual can resize a widget without a Resize event (a partial reflow updates the
            # layout map first, so the full one sees no change): catch it before drawing.
            self._fit()
        width = self.size.width
        index = self._top + y
        strip: Strip | None = None
        for part in self._parts():
            if index < len(part):
                strip = part[index]
                break
            index -= len(part)
        style = self._style
        if style is None:
            style = self._style = self.rich_style
        if strip is None:
            return Strip.blank(width, style)
        return strip.crop_extend(0, width, style).apply_style(style)

    # --- scrolling (the pane forwards keys; the mouse wheel lands here) ---------------
    def scroll_lines(self, delta: int) -> None:
        limit = max(0, self.line_count - self.size.height)
        self._top = min(limit, max(0, self._top + delta))
        self.follow = self._top >= limit
        self._repaint_changed()

    def scroll_page(self, pages: int) -> None:
        self.scroll_lines(pages * max(1, self.size.height - 1))

    def scroll_edge(self, end: bool) -> None:
        self.scroll_lines(self.line_count if end else -self.line_count)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_lines(3)
        self.post_message(self.Moved())

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_lines(-3)
        self.post_message(self.Moved())

    def plain_lines(self) -> list[str]:
        """The rendered text (for tests)."""
        return [strip.text for part in self._parts() for strip in part]
