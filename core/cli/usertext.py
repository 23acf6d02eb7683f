"""Text a person gives the command line (argv, stdin) as valid Unicode.

Invalid UTF-8 becomes U+FFFD (and one line on stderr says so) at the door: further in, history
and providers need text that encodes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

REPLACEMENT = "\ufffd"


def decode(data: bytes, what: str, err: TextIO | None = None) -> str:
    """``data`` as UTF-8, each invalid byte sequence replaced by U+FFFD, which ``err`` is told."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        (err or sys.stderr).write(
            f"quorum: {what} is not valid UTF-8; "
            f"its invalid bytes were replaced with {REPLACEMENT} (U+FFFD)\n"
        )
        return data.decode("utf-8", errors="replace")


def from_argv(text: str, what: str) -> str:
    """An argument as Python got it (undecodable bytes kept as surrogate escapes), decoded."""
    if text.isascii() or not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no decoder produced: nothing to recover
        data = text.encode("utf-8", "replace")
    return decode(data, what)


def read_stdin(what: str) -> str:
    return decode(sys.stdin.buffer.read(), what)


def argument(what: str, *, allow_empty: bool = True) -> Callable[[str], str]:
    """An argparse ``type=`` for a text argument: decoded; with ``allow_empty=False`` a blank
    value is a usage error."""

    def convert(text: str) -> str:
        value = from_argv(text, what)
        if not allow_empty and not value.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        return value

    return convert
