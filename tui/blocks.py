"""Splitting a streamed Markdown answer into finished blocks and one live tail.

A finished block never changes again, so the pane renders it once and keeps its lines. A block
ends at a blank line, at a closing code fence, after a heading line, or — inside a list — when
the next top-level item starts (so a growing list costs one small render per item, not a
re-render of the whole list). Everything after the last finished block is the tail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^ {0,1}(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_NOT_PLAIN = re.compile(r"\s|[>|<`~]|[-*+](?:\s|$)|\d{1,9}[.)](?:\s|$)|[-*_=]{3}")


def plain_paragraph(text: str) -> bool:
    """``text`` starts as a plain paragraph: no list item, quote, table, HTML, heading, rule,
    fence or indentation at its start."""
    return bool(text) and not _NOT_PLAIN.match(text) and not _HEADING.match(text)


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    code: bool = False  # a fenced code block (complete, fences included)
    joined: bool = False  # continues the previous block (next item of the same list)


class BlockSplitter:
    """Feed deltas; take finished blocks; read the tail.

    Feeding costs what was fed, however long the open block grows (a runaway answer can be
    one line of megabytes): text without a newline is only queued, and the tail is read from
    an offset on (`tail_since`), never rebuilt whole.
    """

    __slots__ = (
        "_fence",
        "_finished",
        "_joined",
        "_kind",
        "_lines",
        "_lines_len",
        "_partial",
        "_partial_len",
        "_recent",
    )

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the open block
        self._lines_len = 0  # len("\n".join(self._lines))
        self._partial: list[str] = []  # the unfinished last line, in pieces of many deltas
        self._recent: list[str] = []  # the deltas not yet joined into a piece
        self._partial_len = 0
        self._kind = ""  # "", "para", "list", "code"
        self._fence = ""  # the opening fence marker while inside a code block
        self._joined = False
        self._finished: list[Block] = []

    def feed(self, text: str) -> None:
        if "\n" not in text:
            if text:
                self._recent.append(text)
                self._partial_len += len(text)
                if len(self._recent) >= 64:
                    self._partial.append("".join(self._recent))
                    self._recent.clear()
            return
        *lines, last = (self._take_partial() + text).split("\n")
        for line in lines:
            self._line(line)
        self.feed(last)

    def close(self) -> None:
        """The stream ended: the tail becomes a finished block."""
        if self._partial_len:
            self._line(self._take_partial())
        self._end_block()

    def take(self) -> list[Block]:
        done, self._finished = self._finished, []
        return done

    @property
    def tail(self) -> str:
        return self.tail_since(0)

    @property
    def tail_length(self) -> int:
        sep = 1 if self._lines and self._partial_len else 0
        return self._lines_len + sep + self._partial_len

    def tail_since(self, start: int) -> str:
        """The tail from offset ``start`` on, built from the end: it costs what it returns."""
        need = self.tail_length - start
        if need <= 0:
            return ""
        out: list[str] = []
        for piece in reversed(self._recent):
            need -= len(piece)
            out.append(piece if need >= 0 else piece[-need:])
            if need <= 0:
                return "".join(reversed(out))
        for piece in reversed(self._partial):
            need -= len(piece)
            out.append(piece if need >= 0 else piece[-need:])
            if need <= 0:
                return "".join(reversed(out))
        for index in range(len(self._lines) - 1, -1, -1):
            if out or index < len(self._lines) - 1:
                out.append("\n")  # between this line and the next one (or the partial)
                need -= 1
                if need <= 0:
                    break
            line = self._lines[index]
            need -= len(line)
            out.append(line if need >= 0 else line[-need:])
            if need <= 0:
                break
        return "".join(reversed(out))

    @property
    def in_code(self) -> bool:
        return self._kind == "code"

    @property
    def tail_joined(self) -> bool:
        return self._joined

    @property
    def tail_paragraph(self) -> bool:
        """The open block is a plain paragraph: it can only grow, never turn into another
        kind of block (its first line is no list item, quote, table, HTML, heading or fence
        marker)."""
        if self._kind not in ("", "para"):
            return False
        head = self._lines[0] if self._lines else "".join([*self._partial[:1], *self._recent])
        return plain_paragraph(head)

    def _take_partial(self) -> str:
        text = "".join([*self._partial, *self._recent])
        self._partial, self._recent, self._partial_len = [], [], 0
        return text

    def _add(self, line: str) -> None:
        self._lines_len += len(line) + (1 if self._lines else 0)
        self._lines.append(line)

    def _line(self, line: str) -> None:
        if self._kind == "code":
            self._add(line)
            stripped = line.strip()
            if stripped.startswith(self._fence) and not stripped.strip(self._fence[0]):
                self._end_block()
            return
        fence = _FENCE.match(line)
        if fence:
            self._end_block()
            self._kind, self._fence = "code", fence.group(1)
            self._add(line)
            return
        if not line.strip():
            self._end_block()
            return
        if _HEADING.match(line):
            self._end_block()
            self._add(line)
            self._kind = "para"
            self._end_block()
            return
        if _LIST_ITEM.match(line):
            if self._kind == "list":
                self._end_block(next_joined=True)
            elif self._kind:
                self._end_block()
            self._kind = "list"
        elif not self._kind:
            self._kind = "para"
        self._add(line)

    def _end_block(self, next_joined: bool = False) -> None:
        if self._lines:
            text = "\n".join(self._lines)
            self._finished.append(Block(text, code=self._kind == "code", joined=self._joined))
            self._lines, self._lines_len = [], 0
        self._kind, self._fence = "", ""
        self._joined = next_joined
