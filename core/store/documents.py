"""What a file becomes on its way into the knowledge base: sections, a document, chunks.

A reader (`core.store.readers`) turns one file into a `Document` of structural `Section`s; the
chunker (`core.store.chunking`) packs those into `Chunk`s sized for the embedder. A file that
cannot be read raises `SkipFile` with a reason meant for people ("binary file").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SectionKind = Literal["paragraph", "code", "list", "table", "heading", "page"]
Unit = Literal["line", "page"]
LABEL_SEPARATOR = " › "


@dataclass(frozen=True)
class Section:
    """One structural unit of a file; ``start``/``end`` are 1-based and inclusive (lines, or
    pages for PDF). ``headings`` is the trail of headings above it, its own included when the
    section is a heading."""

    text: str
    kind: SectionKind
    headings: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    path: str
    kind: str  # "markdown" | "text" | "rst" | "code" | "html" | "pdf"
    title: str
    unit: Unit
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Chunk:
    """A piece of a document sized for the embedder; ``text`` is the file's own text only."""

    text: str
    source: str
    title: str
    headings: tuple[str, ...]
    start: int
    end: int
    unit: Unit
    ordinal: int

    @property
    def location(self) -> str:
        return location(self.unit, self.start, self.end)

    @property
    def label(self) -> str:
        """``path › H1 › H2``."""
        return LABEL_SEPARATOR.join((self.source, *self.headings))


def location(unit: str, start: int, end: int) -> str:
    """``lines 10-24`` / ``line 7`` / ``page 3`` / ``pages 3-4``."""
    if start == end:
        return f"{unit} {start}"
    return f"{unit}s {start}-{end}"


class SkipFile(Exception):
    """This file is not ingested; ``reason`` says why, in words for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
