"""argparse value types shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import TypeVar

Number = TypeVar("Number", int, float)


def positive_float(text: str) -> float:
    return _positive(text, float, "a number")


def positive_int(text: str) -> int:
    return _positive(text, int, "an integer")


def _positive(text: str, cast: type[Number], noun: str) -> Number:
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value
