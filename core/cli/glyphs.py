"""The command line's own symbols, in Unicode or, where the output cannot encode it, ASCII.

`prepare_streams` makes stdout and stderr replace what they cannot encode: model text may hold
any character, and an ASCII terminal must get a ``?`` rather than a crash.
"""

from __future__ import annotations

import codecs
import io
import sys
from dataclasses import dataclass, fields
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Glyphs:
    bar: str  # between a model's label and its text
    ellipsis: str  # text cut short
    cross: str  # a model that did not answer
    dot: str  # between figures
    rule: str  # the line around an answer's heading


UNICODE = Glyphs(bar="│", ellipsis="…", cross="✗", dot="·", rule="─")
ASCII = Glyphs(bar="|", ellipsis="...", cross="x", dot="-", rule="-")
_SAMPLE = "".join(getattr(UNICODE, f.name) for f in fields(Glyphs))


def for_stream(stream: TextIO) -> Glyphs:
    """UNICODE when ``stream``'s encoding can write every glyph, else ASCII."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        codecs.encode(_SAMPLE, encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE


def unicode_ok(stream: TextIO) -> bool:
    """Whether ``stream`` can write Unicode text (else JSON written to it escapes non-ASCII)."""
    return for_stream(stream) is UNICODE


def current() -> Glyphs:
    """The glyphs standard output can show."""
    return for_stream(sys.stdout)


def prepare_streams() -> None:
    """Standard output and error replace characters their encoding lacks instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        # "surrogateescape" is what Python picks under the C locale: it raises just the same
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "surrogateescape"):
            stream.reconfigure(errors="replace")
