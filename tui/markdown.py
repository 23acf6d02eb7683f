"""Rich's Markdown renderable with one shared parser, and the rendering of a growing text.

`rich.markdown.Markdown` builds a new markdown-it parser for every instance, which costs more
than parsing a short block; the panes render thousands of small blocks, so they share one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it import MarkdownIt
from rich.markdown import Markdown
from textual.strip import Strip

_PARSER = MarkdownIt().enable("strikethrough").enable("table")


class FastMarkdown(Markdown):
    """Same rendering as `rich.markdown.Markdown`; links are never turned into hyperlinks
    (model text is untrusted)."""

    def __init__(self, markup: str, code_theme: str = "monokai") -> None:
        self.markup = markup
        self.parsed = _PARSER.parse(markup)
        self.code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False
        self.inline_code_lexer = None
        self.inline_code_theme = code_theme


Render = Callable[[str], list[Strip]]

LIVE_CHARS = 1024  # a growing text longer than this has its settled lines frozen
KEEP_LINES = 2  # wrapped lines left live after a cut: only they can still change
WINDOW_CHARS = 8192  # never render more than this much new text at once
FORCE_CHARS = 16384  # past this, cut even where no seamless cut was found
_FORCE_KEEP = 256

# A cut must not leave the rest starting with something Markdown reads as a new block (list
# item, quote, heading, fence, rule, table, HTML, link definition, indented code).
_BLOCK_START = re.compile(r"\s|[-+*>#=_|<`~\[]|\d{1,9}[.)]")
_SPACE = re.compile(r"\s+")


class GrowingText:
    """The rendering of a text that only grows (an unfinished paragraph or code block), at a
    cost bounded by what is new rather than by its length.

    Once the live text is longer than `LIVE_CHARS`, all but its last `KEEP_LINES` wrapped lines
    are frozen: cut off at the source offset where the next line starts, and kept as strips.
    A cut is taken only where the two halves, rendered apart, give exactly the lines the whole
    gave, so the seams never show. Only if no such cut turns up (inline markup spanning every
    candidate) by `FORCE_CHARS` is the text cut at a space, and the seam starts a new line.
    """

    __slots__ = ("_next_try", "_render", "frozen", "markdown", "start")

    def __init__(self, render: Render, *, markdown: bool) -> None:
        self._render = render
        self.markdown = markdown
        self.frozen: list[Strip] = []
        self.start = 0  # where the live text begins in the whole text
        self._next_try = 0

    def advance(self, live: str) -> list[Strip]:
        """Render ``live`` (the whole text from `start` on), freezing what has settled; returns
        the strips of what is still live."""
        offset, end = 0, min(len(live), WINDOW_CHARS)
        while True:
            part = live[offset:end]
            consumed, strips = self._freeze(part, self._render(part))
            offset += consumed
            if end == len(live):
                self.start += offset
                return strips
            end = min(len(live), end + WINDOW_CHARS)

    def _freeze(self, part: str, strips: list[Strip]) -> tuple[int, list[Strip]]:
        if len(part) <= LIVE_CHARS or len(strips) <= KEEP_LINES or len(part) < self._next_try:
            return 0, strips
        for line in range(len(strips) - KEEP_LINES, max(0, len(strips) - KEEP_LINES - 2), -1):
            for cut in self._candidates(part, strips, line):
                rest = self._render(part[cut:])
                if rest == strips[line:] and (head := self._render(part[:cut])) == strips[:line]:
                    self.frozen.extend(head)
                    self._next_try = 0
                    return cut, rest
        if len(part) <= FORCE_CHARS:
            self._next_try = len(part) + LIVE_CHARS // 2  # not every frame: when it has grown
            return 0, strips
        cut = self._forced_cut(part)
        self.frozen.extend(self._render(part[:cut]))
        self._next_try = 0
        return cut, self._render(part[cut:])

    def _candidates(self, part: str, strips: list[Strip], line: int) -> list[int]:
        """Source offsets where wrapped line ``line`` may begin. Rendering mostly drops
        characters (markup), so the lines before it are matched into the source character by
        character; the cut is right there (a word folded across lines), or after the
        whitespace that follows (or only after its last newline, keeping an indentation)."""
        end = 0
        for strip in strips[:line]:
            for char in strip.text.replace(" ", ""):
                end = part.find(char, end) + 1
                if not end:
                    return []
        found = [end]
        gap = _SPACE.search(part, end)
        if gap is not None:
            found.append(gap.end())
            newline = part.rfind("\n", gap.start(), gap.end())
            if newline >= 0:
                found.append(newline + 1)
        return [c for c in dict.fromkeys(found) if 0 < c < len(part) and self._safe(part, c)]

    def _safe(self, part: str, cut: int) -> bool:
        return not self.markdown or not _BLOCK_START.match(part, cut)

    def _forced_cut(self, part: str) -> int:
        target = len(part) - _FORCE_KEEP
        space = max(part.rfind(" ", 0, target), part.rfind("\n", 0, target))
        cut = space + 1 if space > len(part) // 2 else target
        while cut < len(part) - 1 and not self._safe(part, cut):
            cut += 1
        return cut
