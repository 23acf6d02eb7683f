"""`TextBuffer`: streamed text kept as one string, cheap to append to and to read.

A list of every streamed piece costs a Python object (~50 bytes) per token on top of the text,
and joining it on each read costs a copy each time. Here pieces are joined into blocks as they
come, and a read leaves a single joined string behind (the one copy the caller also holds).
"""

from __future__ import annotations

_BLOCK_PIECES = 64


class TextBuffer:
    __slots__ = ("_blocks", "_length", "_pieces")

    def __init__(self, text: str = "") -> None:
        self._blocks: list[str] = [text] if text else []
        self._pieces: list[str] = []
        self._length = len(text)

    def append(self, text: str) -> None:
        self._pieces.append(text)
        self._length += len(text)
        if len(self._pieces) >= _BLOCK_PIECES:
            self._blocks.append("".join(self._pieces))
            self._pieces.clear()

    def __len__(self) -> int:
        return self._length

    def __bool__(self) -> bool:
        return self._length > 0

    def __str__(self) -> str:
        if self._pieces or len(self._blocks) > 1:
            self._blocks = ["".join([*self._blocks, *self._pieces])]
            self._pieces.clear()
        return self._blocks[0] if self._blocks else ""

    def __repr__(self) -> str:
        return f"TextBuffer({self._length} chars)"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TextBuffer):
            return str(self) == str(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable
