"""The engine's one typed event stream.

Every consumer — the CLI, the TUI, the history writer — reads these and nothing else. Events are
frozen, carry the model's display name, and are ordered per model:

    Started Loading? (Retrying Started)* ... (Finished | Failed | Cancelled)

where "..." holds UsageReported at any point (Anthropic reports input tokens before any text),
and FirstToken before the first TextDelta or ReasoningDelta.

bracketed by one `FanoutStarted` and one `FanoutFinished` for the whole query.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.consensus.records import Consensus


class FailureKind(StrEnum):
    """Why a model failed. Stable strings: they appear in --json output and in history."""

    CONFIG = "config"  # e.g. the API key variable is unset
    CONNECT = "connect"  # host unreachable, DNS, refused
    TIMEOUT = "timeout"  # connect, first-token, idle or total deadline
    HTTP = "http"  # non-2xx status from the provider
    PROVIDER = "provider"  # an error object inside a 200 stream
    TRUNCATED = "truncated"  # the stream ended without its protocol's end marker
    PROTOCOL = "protocol"  # a frame we could not understand
    LOCAL = "local"  # an in-process model failed to load or generate
    INTERNAL = "internal"  # a bug in Quorum; reported, never a traceback on screen


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Timings of one model's answer. Milliseconds are measured from that model's start."""

    ttft_ms: float | None = None
    total_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_per_s: float | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Source:
    """A passage retrieved from the knowledge base; every model gets the same ones, numbered
    from 1 in this order (the ``[n]`` a model cites)."""

    id: str
    source: str  # the file it came from
    title: str  # heading trail, e.g. "Install › From source"
    location: str  # "lines 10-24", "page 3"
    score: float  # cosine similarity to the question, 0..1
    text: str


@dataclass(frozen=True, slots=True)
class FanoutStarted:
    query: str
    models: tuple[str, ...]
    context: tuple[Source, ...] = ()  # what every model was given with the question


@dataclass(frozen=True, slots=True)
class Loading:
    """An in-process model is being loaded into memory (may take seconds)."""

    model: str


@dataclass(frozen=True, slots=True)
class Started:
    model: str
    provider: str
    attempt: int


@dataclass(frozen=True, slots=True)
class FirstToken:
    model: str
    ttft_ms: float


@dataclass(frozen=True, slots=True)
class TextDelta:
    model: str
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    model: str
    text: str


@dataclass(frozen=True, slots=True)
class UsageReported:
    model: str
    tokens_in: int | None
    tokens_out: int | None


@dataclass(frozen=True, slots=True)
class Retrying:
    model: str
    attempt: int  # the attempt that is about to start (2 = first retry)
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The model answered. ``finish_reason`` ``"cut"``: its answer reached max_answer_chars
    and the stream was stopped there; ``message`` says so (`core.answer_cap`)."""

    model: str
    finish_reason: str | None
    stats: ModelStats
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    model: str
    kind: FailureKind
    message: str
    status: int | None = None
    stats: ModelStats = field(default_factory=ModelStats)


@dataclass(frozen=True, slots=True)
class Cancelled:
    model: str
    stats: ModelStats


@dataclass(frozen=True, slots=True)
class FanoutFinished:
    wall_ms: float


@dataclass(frozen=True, slots=True)
class ConsensusUpdated:
    """The agreement among the answers in so far; sent after each model ends."""

    consensus: Consensus


@dataclass(frozen=True, slots=True)
class Synthesis:
    """One event of the synthesizer's run (its ``model`` is the synthesizer's name). A failed
    run may be followed by the next fallback's, from its own `Started`."""

    event: ModelEvent


ModelEvent = (
    Loading
    | Started
    | FirstToken
    | TextDelta
    | ReasoningDelta
    | UsageReported
    | Retrying
    | Finished
    | Failed
    | Cancelled
)
Event = FanoutStarted | ModelEvent | ConsensusUpdated | Synthesis | FanoutFinished
TerminalEvent = Finished | Failed | Cancelled

EVENT_TYPES: dict[str, type[Event]] = {
    "fanout_started": FanoutStarted,
    "loading": Loading,
    "started": Started,
    "first_token": FirstToken,
    "text": TextDelta,
    "reasoning": ReasoningDelta,
    "usage": UsageReported,
    "retrying": Retrying,
    "finished": Finished,
    "failed": Failed,
    "cancelled": Cancelled,
    "consensus": ConsensusUpdated,
    "synthesis": Synthesis,
    "fanout_finished": FanoutFinished,
}
_TYPE_NAMES = {cls: name for name, cls in EVENT_TYPES.items()}


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a leading ``"type"`` tag (the ``--jsonl`` wire format)."""
    if isinstance(event, ConsensusUpdated):
        return {"type": "consensus", **event.consensus.to_dict()}
    if isinstance(event, Synthesis):
        return {"type": "synthesis", "event": event_to_dict(event.event)}
    body = dataclasses.asdict(event)
    if isinstance(event, FanoutStarted):
        body["models"] = list(event.models)
        body["context"] = [dataclasses.asdict(s) for s in event.context]
    return {"type": _TYPE_NAMES[type(event)], **body}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of `event_to_dict` (used by tests and by replaying a recorded --jsonl run)."""
    body = dict(data)
    cls = EVENT_TYPES[body.pop("type")]
    if cls is ConsensusUpdated:
        return ConsensusUpdated(Consensus.from_dict(body))
    if cls is Synthesis:
        inner = event_from_dict(body["event"])
        if isinstance(inner, FanoutStarted | FanoutFinished | ConsensusUpdated | Synthesis):
            raise ValueError("a synthesis event wraps one model event")
        return Synthesis(inner)
    if "stats" in body:
        body["stats"] = ModelStats(**body["stats"])
    if "kind" in body:
        body["kind"] = FailureKind(body["kind"])
    if "models" in body:
        body["models"] = tuple(body["models"])
    if "context" in body:
        body["context"] = tuple(Source(**s) for s in body["context"])
    return cls(**body)
