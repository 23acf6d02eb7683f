"""Plain-text tables and lines of untrusted text for the command line.

Everything shown comes through `one_line` (model names and answers are untrusted: control
sequences stripped) and is measured in terminal columns (wide characters take two).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence

from core.cli import glyphs
from core.sanitize import strip_control


def format_table(rows: Sequence[Sequence[str]], *, right_aligned: Collection[int] = ()) -> str:
    """Columns padded to their widest cell; the ``right_aligned`` columns (numbers) to the right."""
    clean = [[one_line(c) for c in row] for row in rows]
    widths = [max(columns(row[i]) for row in clean) for i in range(len(clean[0]))]
    lines = []
    for row in clean:
        cells = [
            _pad(text, width, right=i in right_aligned)
            for i, (text, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip() + "\n")
    return "".join(lines)


def one_line(text: str) -> str:
    """Untrusted text as one line: control sequences stripped, whitespace runs one space."""
    return " ".join(strip_control(text).split())


def cell(text: str, width: int) -> str:
    """One line of untrusted text, cut to ``width`` columns."""
    return fit(one_line(text), width)


def fit(text: str, width: int, ellipsis: str | None = None) -> str:
    """``text`` (already one clean line) cut to ``width`` columns, ending in an ellipsis."""
    if columns(text) <= width:
        return text
    mark = glyphs.current().ellipsis if ellipsis is None else ellipsis
    room = width - columns(mark)
    kept, used = [], 0
    for char in text:
        used += _char_columns(char)
        if used > room:
            break
        kept.append(char)
    return "".join(kept) + mark if room >= 0 else mark[: max(width, 0)]


def fit_tail(text: str, width: int) -> str:
    """The end of ``text`` that fits ``width`` columns, starting with an ellipsis when cut."""
    if columns(text) <= width:
        return text
    mark = glyphs.current().ellipsis
    room = width - columns(mark)
    kept: list[str] = []
    used = 0
    for char in reversed(text):
        used += _char_columns(char)
        if used > room:
            break
        kept.append(char)
    return mark + "".join(reversed(kept)) if room >= 0 else ""


def columns(text: str) -> int:
    """How many terminal columns ``text`` takes."""
    if text.isascii():
        return len(text)
    return sum(_char_columns(c) for c in text)


def _char_columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _pad(text: str, width: int, *, right: bool) -> str:
    gap = " " * (width - columns(text))
    return gap + text if right else text + gap
