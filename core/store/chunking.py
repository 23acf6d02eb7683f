"""`Document` → `Chunk`s that fit the embedder, cut on the document's own structure.

Consecutive sections under one heading trail (a "run") are packed greedily into chunks of at
most ``max_tokens``. A section that fits is never cut; a longer one is cut into sentences
(prose) or lines (code, lists, tables), and any of those still too long into lines, words and,
last, characters. When a run continues into a further chunk, that chunk starts with the tail
sentences or lines of the previous one (up to ``overlap_tokens``), except after a code block
or table that was kept whole: it ends where the block ends. A heading with nothing under it
but a sub-heading joins the sub-heading's run, so no chunk is a lone title.

Token counts come from the caller's ``count_tokens``. Pieces are counted once each and summed
(exact for tokenizers that split on whitespace, as WordPiece does); every finished chunk is
counted again as a whole and trimmed if the sum was optimistic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.store.documents import Chunk, Document, Section

_SENTENCE = re.compile(r"\S.*?(?:[.!?][\"')\]]*(?=\s)|\Z)", re.DOTALL)
_LINE = re.compile(r"[^\n]*\S[^\n]*")  # from the line's start: code keeps its indentation
_WORD = re.compile(r"\S+")
_PROSE = (_SENTENCE, _LINE, _WORD)
_LINES = (_LINE, _WORD)
_KEPT_WHOLE = frozenset({"code", "table"})  # no overlap is cut out of these when they fit


@dataclass(frozen=True)
class _Piece:
    """``text[begin:stop]`` of section ``section``: a whole section or a cut of one."""

    section: int
    begin: int
    stop: int
    tokens: int


def chunk_document(
    doc: Document,
    *,
    count_tokens: Callable[[str], int],
    max_tokens: int = 200,
    overlap_tokens: int = 32,
) -> list[Chunk]:
    """Chunks of ``doc`` in document order; deterministic for a given ``count_tokens``."""
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
    chunker = _Chunker(doc, count_tokens, max_tokens, overlap_tokens)
    chunks: list[Chunk] = []
    for trail, indexes in _runs(doc.sections):
        for pieces in chunker.pack(indexes):
            start, end = chunker.lines(pieces[0])[0], chunker.lines(pieces[-1])[1]
            text = chunker.join(pieces)
            chunks.append(
                Chunk(text, doc.path, doc.title, trail, start, end, doc.unit, len(chunks))
            )
    return chunks


def _runs(sections: tuple[Section, ...]) -> Iterator[tuple[tuple[str, ...], list[int]]]:
    runs: list[tuple[tuple[str, ...], list[int]]] = []
    for index, section in enumerate(sections):
        if runs and runs[-1][0] == section.headings:
            runs[-1][1].append(index)
        else:
            runs.append((section.headings, [index]))
    carried: list[int] = []
    for number, (trail, indexes) in enumerate(runs):
        following = runs[number + 1][0] if number + 1 < len(runs) else None
        only_headings = all(sections[i].kind == "heading" for i in indexes)
        if only_headings and following is not None and following[: len(trail)] == trail:
            carried += indexes
            continue
        yield trail, carried + indexes
        carried = []


class _Chunker:
    def __init__(
        self, doc: Document, count: Callable[[str], int], max_tokens: int, overlap: int
    ) -> None:
        self._sections = doc.sections
        self._count = count
        self._max = max_tokens
        self._overlap = overlap
        self._base = count("")  # special tokens a tokenizer adds to every text, if any
        self._paged = doc.unit == "page"

    def tokens(self, text: str) -> int:
        return max(0, self._count(text) - self._base)

    def pack(self, indexes: list[int]) -> Iterator[list[_Piece]]:
        pending = [piece for index in indexes for piece in self._pieces(index)]
        pending.reverse()  # a stack: pieces trimmed off an over-full chunk go back on it
        current: list[_Piece] = []
        repeated = 0  # how many pieces at the front of ``current`` are overlap
        total = self._base
        while True:
            piece = pending.pop() if pending else None
            if piece is not None and (not current or total + piece.tokens <= self._max):
                current.append(piece)
                total += piece.tokens
                continue
            if piece is not None:
                pending.append(piece)
                if len(current) == repeated:  # only overlap, and the next piece does not fit
                    current, repeated, total = [], 0, self._base
                    continue
            if not current:
                return
            chunk, trimmed = self._fit(current, repeated, pending)
            yield chunk
            if not pending:
                return
            # after a trim the sums were optimistic: start afresh so the loop always advances
            current = [] if trimmed else self._tail(chunk, pending[-1].tokens)
            repeated = len(current)
            total = self._base + sum(p.tokens for p in current)

    def _fit(
        self, pieces: list[_Piece], repeated: int, pending: list[_Piece]
    ) -> tuple[list[_Piece], bool]:
        """Trim pieces off the end while the chunk counted as a whole exceeds the maximum."""
        trimmed = False
        while len(pieces) > 1 and self._count(self.join(pieces)) > self._max:
            if len(pieces) == repeated + 1:  # only the overlap would be left: drop it instead
                pieces, repeated = pieces[repeated:], 0
                continue
            pending.append(pieces.pop())
            trimmed = True
        return pieces, trimmed

    def _pieces(self, index: int) -> list[_Piece]:
        section = self._sections[index]
        tokens = self.tokens(section.text)
        if tokens <= self._max:
            return [_Piece(index, 0, len(section.text), tokens)]
        levels = _PROSE if section.kind in ("paragraph", "page") else _LINES
        return self._split(index, 0, len(section.text), levels)

    def _split(
        self, index: int, begin: int, stop: int, levels: tuple[re.Pattern[str], ...]
    ) -> list[_Piece]:
        text = self._sections[index].text
        if not levels:
            return self._characters(index, begin, stop)
        pieces: list[_Piece] = []
        for match in levels[0].finditer(text, begin, stop):
            tokens = self.tokens(match.group())
            if tokens <= self._max:
                pieces.append(_Piece(index, match.start(), match.end(), tokens))
            else:
                pieces += self._split(index, match.start(), match.end(), levels[1:])
        return pieces

    def _characters(self, index: int, begin: int, stop: int) -> list[_Piece]:
        """A single word longer than the maximum: the longest prefixes that fit."""
        text = self._sections[index].text
        pieces: list[_Piece] = []
        while begin < stop:
            low, high = begin + 1, stop
            while low < high:
                middle = (low + high + 1) // 2
                if self.tokens(text[begin:middle]) <= self._max:
                    low = middle
                else:
                    high = middle - 1
            pieces.append(_Piece(index, begin, low, self.tokens(text[begin:low])))
            begin = low
        return pieces

    def _tail(self, chunk: list[_Piece], following: int) -> list[_Piece]:
        """The last sentences or lines of ``chunk`` to repeat before a piece of ``following``
        tokens: at most the overlap, and never so many that the piece no longer fits."""
        budget = min(self._overlap, self._max - self._base - following)
        tail: list[_Piece] = []
        for piece in reversed(chunk):
            section = self._sections[piece.section]
            whole = piece.begin == 0 and piece.stop == len(section.text)
            if whole and section.kind in _KEPT_WHOLE:
                break
            units = [piece]
            if whole:
                levels = _PROSE if section.kind in ("paragraph", "page") else _LINES
                units = self._split(piece.section, 0, piece.stop, levels[:1])
            for unit in reversed(units):
                if unit.tokens > budget:
                    return tail
                tail.insert(0, unit)
                budget -= unit.tokens
        return tail

    def join(self, pieces: list[_Piece]) -> str:
        parts: list[str] = []
        previous: _Piece | None = None
        for piece in pieces:
            text = self._sections[piece.section].text
            if previous is not None:
                same = previous.section == piece.section
                parts.append(text[previous.stop : piece.begin] if same else "\n\n")
            parts.append(text[piece.begin : piece.stop])
            previous = piece
        return "".join(parts)

    def lines(self, piece: _Piece) -> tuple[int, int]:
        """The first and last line (or page) of a piece in the file."""
        section = self._sections[piece.section]
        text = section.text
        if self._paged or text.count("\n") != section.end - section.start:
            return section.start, section.end  # the reader's text is not line for line
        return (
            section.start + text.count("\n", 0, piece.begin),
            section.start + text.count("\n", 0, piece.stop),
        )
