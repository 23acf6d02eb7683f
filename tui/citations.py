"""``[n]`` citations in a pane's rendered answer, drawn as links to the turn's sources.

Applied to the strips a block renders to, once per finished block (and to the live tail as it is
drawn): only a line holding ``[`` is looked at. A number the turn has no source for, and
anything in a code block, stays plain text. A click runs ``app.show_source(n)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

_CITE = re.compile(r"\[(\d{1,3})\]")


def citation_style(color: str | None) -> Style:
    return Style(color=color, underline=True)


def link_citations(strips: Sequence[Strip], count: int, style: Style) -> list[Strip]:
    """``strips`` with each ``[n]`` (1 <= n <= ``count``) in ``style``, clickable."""
    if count <= 0:
        return list(strips)
    return [_linked(strip, count, style) if "[" in strip.text else strip for strip in strips]


def _linked(strip: Strip, count: int, link: Style) -> Strip:
    segments: list[Segment] = []
    changed = False
    for segment in strip:
        text, style, control = segment
        if control or "[" not in text:
            segments.append(segment)
            continue
        start = 0
        for match in _CITE.finditer(text):
            number = int(match.group(1))
            if not 1 <= number <= count:
                continue
            if match.start() > start:
                segments.append(Segment(text[start : match.start()], style))
            action = Style(meta={"@click": f"app.show_source({number})"})
            segments.append(Segment(match.group(0), (style or Style()) + link + action))
            start, changed = match.end(), True
        if start == 0:
            segments.append(segment)
        elif start < len(text):
            segments.append(Segment(text[start:], style))
    return Strip(segments, strip.cell_length) if changed else strip
