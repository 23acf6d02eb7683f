"""argparse value types shared by the subcommands: finite, positive and bounded numbers.

The bound keeps every value inside what its consumers can hold (SQLite's int64 for ``LIMIT``,
event-loop deadlines for timeouts) and far beyond any sensible use.
"""

from __future__ import annotations

import argparse
import math
from typing import TypeVar

Number = TypeVar("Number", int, float)
MAXIMUM = 1_000_000_000


def positive_float(text: str) -> float:
    return _positive(text, float, "a number")


def positive_int(text: str) -> int:
    return _positive(text, int, "an integer")


def _positive(text: str, cast: type[Number], noun: str) -> Number:
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):  # nan, inf
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    if value <= 0:  # also -0.0
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    if value > MAXIMUM:
        raise argparse.ArgumentTypeError(f"must be at most {MAXIMUM}, got {text!r}")
    return value
