"""What is kept of one answer: at most ``max_answer_chars`` characters of text and reasoning
together (`core.config.ModelSpec`). Past that the engine stops the stream and ends the model
with ``Finished(finish_reason="cut")``, whose state is ``cut``: an answer (it counts for the
exit code and the consensus) of which only the first characters were kept.
"""

from __future__ import annotations

CUT = "cut"  # the finish reason, and the state it folds into
ANSWERED = frozenset({"done", CUT})  # the states of a model that answered


def cut_message(limit: int) -> str:
    return f"cut at {limit:,} characters (max_answer_chars); the rest was not kept"


def finished_state(finish_reason: str | None) -> str:
    """The state a `Finished` event ends a model in."""
    return CUT if finish_reason == CUT else "done"


class AnswerCap:
    """Counts one answer's characters as they stream; `take` returns the part that still fits."""

    __slots__ = ("cut", "left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.cut = False

    def take(self, text: str) -> str:
        if len(text) <= self.left:
            self.left -= len(text)
            return text
        kept, self.left, self.cut = text[: self.left], 0, True
        return kept
