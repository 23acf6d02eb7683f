"""An answer's claims: its Markdown cut into sentences, code and headings left out.

Support is scored per sentence, so what counts as one matters: each list item, table row and
paragraph sentence is a claim; fenced code, headings and fragments of fewer than three words
are not (code is compared as part of the whole answer's vector, never sentence by sentence).
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^#{1,6}\s")
_MARKER = re.compile(r"^(?:[-*+]|\d{1,3}[.)])\s+")  # list item markers
_EMPHASIS = re.compile(r"\*+|__|`")
_SENTENCE = re.compile(r"\S.*?(?:[.!?][\"')\]]*(?=\s)|\Z)", re.DOTALL)
_RULE = re.compile(r"^(?:[-*_]\s*){3,}$")
MIN_WORDS = 3


def split_sentences(answer: str) -> list[str]:
    """The claims of ``answer`` in order, as plain text (Markdown emphasis and markers removed)."""
    claims: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            text = " ".join(paragraph)
            claims.extend(m.group().strip() for m in _SENTENCE.finditer(text))
            paragraph.clear()

    fenced = False
    for raw in answer.splitlines():
        line = raw.strip()
        if _FENCE.match(line):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line or _HEADING.match(line) or _RULE.match(line):
            flush()
            continue
        if line.startswith("|"):  # a table row is one claim; its separator row none
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set(":-") for c in cells):
                claims.append(", ".join(c for c in cells if c))
            continue
        line = line.lstrip("> ").strip()
        if _MARKER.match(line):
            flush()
            line = _MARKER.sub("", line)
        paragraph.append(_EMPHASIS.sub("", line))
    flush()
    return [c for c in claims if len(c.split()) >= MIN_WORDS]
