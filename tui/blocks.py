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


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    code: bool = False  # a fenced code block (complete, fences included)
    joined: bool = False  # continues the previous block (next item of the same list)


class BlockSplitter:
    """Feed deltas; take finished blocks; read the tail."""

    __slots__ = ("_fence", "_finished", "_joined", "_kind", "_lines", "_partial")

    def __init__(self) -> None:
        self._lines: list[str] = []  # complete lines of the open block
        self._partial = ""  # the unfinished last line
        self._kind = ""  # "", "para", "list", "code"
        self._fence = ""  # the opening fence marker while inside a code block
        self._joined = False
        self._finished: list[Block] = []

    def feed(self, text: str) -> None:
        data = self._partial + text
        *lines, self._partial = data.split("\n")
        for line in lines:
            self._line(line)

    def close(self) -> None:
        """The stream ended: the tail becomes a finished block."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self._end_block()

    def take(self) -> list[Block]:
        done, self._finished = self._finished, []
        return done

    @property
    def tail(self) -> str:
        lines = [*self._lines, self._partial] if self._partial else self._lines
        return "\n".join(lines)

    @property
    def in_code(self) -> bool:
        return self._kind == "code"

    @property
    def tail_joined(self) -> bool:
        return self._joined

    def _line(self, line: str) -> None:
        if self._kind == "code":
            self._lines.append(line)
            stripped = line.strip()
            if stripped.startswith(self._fence) and not stripped.strip(self._fence[0]):
                self._end_block()
            return
        fence = _FENCE.match(line)
        if fence:
            self._end_block()
            self._kind, self._fence = "code", fence.group(1)
            self._lines.append(line)
            return
        if not line.strip():
            self._end_block()
            return
        if _HEADING.match(line):
            self._end_block()
            self._lines.append(line)
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
        self._lines.append(line)

    def _end_block(self, next_joined: bool = False) -> None:
        if self._lines:
            text = "\n".join(self._lines)
            self._finished.append(Block(text, code=self._kind == "code", joined=self._joined))
            self._lines = []
        self._kind, self._fence = "", ""
        self._joined = next_joined
