"""Property-based tests of the terminal sanitizer (`core.sanitize`).

Forbidden in anything the sanitizer returns: ESC (U+001B), every other C0 control except LF and
TAB (so CR too: text cannot overwrite itself), DEL (U+007F) and every C1 control (U+0080 to
U+009F, the 8-bit forms of CSI, OSC, DCS, ST...). Without those characters no terminal
sequence can start. The sanitizer does not touch bidirectional overrides (they are printable
text to a terminal), so neither do these properties.

Text arrives as a stream of deltas cut wherever the network cut it: `StreamSanitizer` must give
the same result as `strip_control` on the whole text, whatever the cuts (for sequences up to
the 4096 characters it holds back).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from core.sanitize import StreamSanitizer, strip_control

FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FUZZ = settings(max_examples=300, deadline=None)


def _pieces_of_sequences() -> st.SearchStrategy[str]:
    """Text built from the parts of terminal sequences, so that sequences, half sequences and
    sequences inside sequences are common, and from arbitrary text."""
    parts = st.sampled_from(
        [
            "\x1b",
            "\x1b[",
            "\x1b]",
            "\x1bP",
            "\x1bX",
            "\x1b^",
            "\x1b_",
            "\x1b\\",
            "\x1b(",
            "\x9b",
            "\x9d",
            "\x90",
            "\x98",
            "\x9e",
            "\x9f",
            "\x9c",
            "\x07",
            "\r",
            "\n",
            "\t",
            "\x7f",
            "\x00",
            "31",
            ";",
            "m",
            "0;title",
            "52;c;aGk=",
            "?25l",
            "A",
            "é",
            "漢",
            "🎉",
            "\u202e",
            "\u2028",
            " ",
        ]
    )
    return st.lists(st.one_of(parts, st.text(max_size=6)), max_size=30).map("".join)


texts = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=())),  # lone surrogates too
    _pieces_of_sequences(),
)
# Cc is exactly C0, DEL and C1; Cs (lone surrogates) cannot be printed anywhere
printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from(["\n", "\t"])
)


def cut(text: str, points: Sequence[int]) -> list[str]:
    at = sorted({p % (len(text) + 1) for p in points})
    bounds = [0, *at, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def streamed(deltas: Sequence[str]) -> tuple[str, list[str]]:
    sanitizer = StreamSanitizer()
    out = [sanitizer.feed(delta) for delta in deltas]
    out.append(sanitizer.flush())
    return "".join(out), out


split_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=20)


@FUZZ
@given(text=texts)
def test_strip_control_leaves_no_control_character(text: str) -> None:
    clean = strip_control(text)
    assert not FORBIDDEN.search(clean), ascii(clean)
    assert strip_control(clean) == clean


@FUZZ
@given(text=texts, points=split_points)
def test_no_delta_of_a_stream_holds_a_control_character_however_it_is_cut(
    text: str, points: list[int]
) -> None:
    _, out = streamed(cut(text, points))
    for delta in out:
        assert not FORBIDDEN.search(delta), ascii(delta)


@FUZZ
@given(text=texts, points=split_points)
def test_how_a_stream_is_cut_never_changes_what_is_shown(text: str, points: list[int]) -> None:
    whole, _ = streamed(cut(text, points))
    assert whole == strip_control(text), ascii(text)


@FUZZ
@given(text=printable, points=split_points)
def test_printable_text_passes_unchanged_however_it_is_cut(text: str, points: list[int]) -> None:
    assert strip_control(text) == text
    whole, out = streamed(cut(text, points))
    assert whole == text
    # nothing is held back either: each delta is shown as it comes
    assert out == [*cut(text, points), ""]


@FUZZ
@given(before=printable, after=printable, sequence=_pieces_of_sequences(), points=split_points)
def test_text_around_a_finished_sequence_survives_however_it_is_cut(
    before: str, after: str, sequence: str, points: list[int]
) -> None:
    # a CSI colour, then an OSC title ended by ST: whatever precedes them is kept
    text = before + "\x1b[31m" + "\x1b]0;" + strip_control(sequence) + "\x1b\\" + after
    whole, _ = streamed(cut(text, points))
    assert whole == before + after
