"""Model output is untrusted: remove everything a terminal would act on.

Strips ANSI/VT escape sequences (CSI cursor moves and colours, OSC title changes and OSC 52
clipboard writes, DCS/APC/PM/SOS strings, 8-bit C1 forms) and every C0/C1 control character
except newline and tab. Carriage returns are dropped so text cannot overwrite itself.
"""

from __future__ import annotations

import re

_SEQUENCE = re.compile(
    r"""
    (?:\x1b\]|\x9d) .*? (?:\x07|\x1b\\|\x9c|\Z)         # OSC ... BEL/ST (title, OSC 52)
  | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f]) .*? (?:\x1b\\|\x9c|\Z) # DCS, SOS, PM, APC ... ST
  | (?:\x1b\[|\x9b) [0-?]* [ -/]* [@-~]?               # CSI ... final byte
  | \x1b [ -/]* [0-~]?                                   # other ESC sequences (charset, etc.)
    """,
    re.VERBOSE | re.DOTALL,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NEEDS_WORK = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """Return ``text`` with terminal control sequences and control characters removed."""
    if not _NEEDS_WORK.search(text):  # the common case: nothing to do
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


class StreamSanitizer:
    """`strip_control` for a stream of deltas: an escape sequence may be split across deltas,
    so an unfinished one at the end of a delta is held back until the next."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""

    def feed(self, delta: str) -> str:
        text = self._held + delta if self._held else delta
        self._held = ""
        if not _NEEDS_WORK.search(text):
            return text
        cut = _unfinished_tail(text)
        if cut is not None:
            text, self._held = text[:cut], text[cut:]
        return strip_control(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return strip_control(held)


def _unfinished_tail(text: str) -> int | None:
    """Where the sequence that runs to the end of ``text`` unfinished starts, if one does: the
    last one `strip_control` finds (not the last ESC: an OSC string may hold one)."""
    last = None
    for match in _SEQUENCE.finditer(text):
        last = match
    if last is None or last.end() != len(text) or len(text) - last.start() > 4096:
        return None
    return None if _is_terminated(last.group(0)) else last.start()


def _is_terminated(seq: str) -> bool:
    if seq.startswith(("\x1b]", "\x9d")):
        return seq.endswith(("\x07", "\x1b\\", "\x9c"))
    if seq.startswith(("\x1bP", "\x1bX", "\x1b^", "\x1b_", "\x90", "\x98", "\x9e", "\x9f")):
        return seq.endswith(("\x1b\\", "\x9c"))  # BEL ends only an OSC
    if seq.startswith(("\x1b[", "\x9b")):
        return len(seq) > (2 if seq.startswith("\x1b[") else 1) and "@" <= seq[-1] <= "~"
    # ESC, intermediates (e.g. "(" of a charset designation), then one final byte
    return len(seq) >= 2 and "0" <= seq[-1] <= "~"
