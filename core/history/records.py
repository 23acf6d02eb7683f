"""The history's data as it crosses layers: frozen records read back from the store.

Times are ISO 8601 strings in UTC (``2026-01-31T12:00:00.123456+00:00``); they sort as text and
survive a JSON round trip unchanged. ``context`` and ``consensus`` are JSON values (dict, list,
str, ...) filled by the retrieval and consensus features; None when absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.answer_cap import ANSWERED

# A response's lifecycle. The last five are terminal. ``interrupted`` means the app ended (Ctrl+C,
# crash, SIGKILL) before the model did: its text is the part that was flushed in time. ``cut``:
# the model answered, but only its first max_answer_chars characters were kept (``error`` says
# so); it counts as an answer.
RESPONSE_STATES = (
    "queued",
    "loading",
    "streaming",
    "done",
    "cut",
    "failed",
    "cancelled",
    "interrupted",
)
TERMINAL_STATES = frozenset({"done", "cut", "failed", "cancelled", "interrupted"})
# A turn is ``running`` while its writer is open, then ``done`` (the fan-out finished) or
# ``interrupted`` (it did not).
TURN_STATES = ("running", "done", "interrupted")


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One model's answer to one turn. Never holds API keys, headers or base URLs."""

    model: str  # the configured display name
    provider: str
    model_id: str  # the provider's model identifier
    state: str  # one of RESPONSE_STATES
    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None  # a core.events.FailureKind value
    status: int | None = None  # HTTP status of a failure, if any
    ttft_ms: float | None = None
    total_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_per_s: float | None = None
    attempts: int = 0
    updated_at: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ANSWERED

    @property
    def partial(self) -> bool:
        """Text that stopped early: cut, cancelled, interrupted, or still being written."""
        return self.state not in {"done", "failed"} and bool(self.text or self.reasoning)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    seq: int  # 1, 2, ... within its session
    query: str
    created_at: str
    state: str  # one of TURN_STATES
    finished_at: str | None = None
    wall_ms: float | None = None
    context: Any = None  # retrieval context used (JSON value), filled by the retrieval feature
    consensus: Any = None  # consensus result (JSON value), filled by the consensus feature
    responses: tuple[ResponseRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    title: str | None
    created_at: str
    updated_at: str
    turns: tuple[TurnRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionSummary:
    id: str
    title: str | None
    created_at: str
    updated_at: str
    turn_count: int
    last_query: str | None


@dataclass(frozen=True, slots=True)
class TurnSummary:
    """One turn found by search or listing; (session_id, seq) identifies it."""

    session_id: str
    seq: int
    query: str
    created_at: str
    state: str
    answered: int  # responses in state "done" or "cut"
    models: int  # responses in all


@dataclass(frozen=True, slots=True)
class ResponseProgress:
    """What a writer flushes for one response: text to append plus the current fields."""

    response_id: int
    text_tail: str
    reasoning_tail: str
    provider: str
    state: str
    finish_reason: str | None
    error: str | None
    error_kind: str | None
    status: int | None
    ttft_ms: float | None
    total_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    tokens_per_s: float | None
    attempts: int


@dataclass(frozen=True, slots=True)
class TurnHandle:
    """A turn being recorded: its row id, its place in the session, each model's response id."""

    turn_id: int
    session_id: str
    seq: int
    response_ids: dict[str, int]
