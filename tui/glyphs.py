"""The app's own symbols and frames: Unicode, or ASCII on a terminal that cannot show Unicode.

Chosen once at start-up from the encoding of the stream Textual draws on (`configure`). The
one switch then reaches: the app's own symbols (widgets read `current()`), its frames (the
stylesheet draws them with `$frame` / `$frame-strong`, see `css_variables`), and whatever else
would still be drawn (Textual's own widgets, model text): a line filter (`line_filters`) folds
it to ASCII cell for cell, so the layout never moves.
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TextIO

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter


@dataclass(frozen=True, slots=True)
class Glyphs:
    ascii: bool
    dot: str  # between figures
    below: str  # before the count of lines below the view
    failed: str
    retrying: str
    collapsed: str
    expanded: str
    frame: str  # the border type of panes and the prompt
    frame_strong: str  # the focused border of a failed pane
    overflow: Literal["ellipsis", "crop"]  # how a line too long for its row ends


UNICODE = Glyphs(
    ascii=False,
    dot="·",
    below="↓",
    failed="✗",
    retrying="⟳",
    collapsed="▶",
    expanded="▼",
    frame="round",
    frame_strong="double",
    overflow="ellipsis",
)
ASCII = Glyphs(
    ascii=True,
    dot="|",
    below="v",
    failed="x",
    retrying="~",
    collapsed=">",
    expanded="v",
    frame="ascii",
    frame_strong="ascii",
    overflow="crop",
)

_current = UNICODE

# Characters seen in Rich's Markdown (bullets, quote bars), Textual's widgets and typography,
# each replaced by one ASCII character so that nothing moves on screen.
_FOLD = {
    "•": "*",
    "◦": "o",
    "▪": "*",
    "▌": "|",
    "▐": "|",
    "▏": "|",
    "▕": "|",
    "—": "-",
    "\u2013": "-",  # en dash
    "\u2018": "'",  # left quote
    "\u2019": "'",  # right quote
    "“": '"',
    "”": '"',
    "…": ".",
    "·": "|",
    "›": ">",
    "\u2039": "<",  # single angle quote
    "\u276f": ">",  # heavy angle quote
    "→": ">",
    "←": "<",
    "↑": "^",
    "↓": "v",
    "▶": ">",
    "▼": "v",
    "✗": "x",
    "✓": "v",
    "⟳": "~",
    "\u00a0": " ",
}


def current() -> Glyphs:
    return _current


def use(glyphs: Glyphs) -> None:
    global _current
    _current = glyphs


def unicode_stream(stream: TextIO | None) -> bool:
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
    return encoding.startswith("utf")


def configure(stream: TextIO | None = None) -> Glyphs:
    """Pick the glyphs for the terminal the app draws on (Textual writes to stderr). On a
    non-Unicode one, any character still unencodable is written as `?` rather than as a
    six-cell `\\uXXXX` escape that would tear the layout apart."""
    stream = sys.__stderr__ if stream is None else stream
    if unicode_stream(stream):
        use(UNICODE)
    else:
        use(ASCII)
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    return _current


def css_variables() -> dict[str, str]:
    return {"frame": _current.frame, "frame-strong": _current.frame_strong}


def fold(text: str) -> str:
    """``text`` in ASCII, one cell for one cell: known symbols by their ASCII look-alikes, box
    drawing by ``+ - |``, accents dropped, anything else ``?`` (``??`` for a wide one)."""
    if text.isascii():
        return text
    return "".join(char if char.isascii() else _fold_char(char) for char in text)


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if char in _FOLD:
        return _FOLD[char]
    if unicodedata.combining(char):
        return ""
    name = unicodedata.name(char, "")
    if name.startswith("BOX DRAWINGS"):
        horizontal, vertical = "HORIZONTAL" in name, "VERTICAL" in name
        return "-" if horizontal and not vertical else "|" if vertical and not horizontal else "+"
    if name.endswith("ONE EIGHTH BLOCK") and ("UPPER" in name or "LOWER" in name):
        return "-"  # the top and bottom of Textual's "tall" borders
    if name.startswith(("LEFT", "RIGHT")) and "BLOCK" in name:
        return "|"
    if "BLOCK" in name or "SHADE" in name:
        return " "  # coloured areas (scrollbar thumbs): the colour still shows
    base = unicodedata.normalize("NFKD", char)[:1]
    if base.isascii() and base.isprintable() and base:
        return base
    return "??" if unicodedata.east_asian_width(char) in "WF" else "?"


class AsciiFilter(LineFilter):
    """Every line Textual draws, folded to ASCII (Textual's own widgets and model text too)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            segment
            if segment.text.isascii()
            else Segment(fold(segment.text), segment.style, segment.control)
            for segment in segments
        ]


_ASCII_FILTERS: list[LineFilter] = [AsciiFilter()]


def line_filters() -> list[LineFilter]:
    return _ASCII_FILTERS if _current.ascii else []
