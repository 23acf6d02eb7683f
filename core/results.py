"""Folding the event stream into finished answers (the ``--json`` contract, history, TUI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.answer_cap import ANSWERED, finished_state
from core.consensus.records import Consensus
from core.events import (
    Cancelled,
    ConsensusUpdated,
    Event,
    Failed,
    FanoutFinished,
    FanoutStarted,
    Finished,
    ModelEvent,
    ModelStats,
    ReasoningDelta,
    Source,
    Started,
    Synthesis,
    TextDelta,
)
from core.textbuf import TextBuffer


@dataclass(slots=True)
class ModelResult:
    model: str
    provider: str = ""
    state: str = "queued"  # queued | streaming | done | cut | failed | cancelled
    text_buffer: TextBuffer = field(default_factory=TextBuffer)
    reasoning_buffer: TextBuffer = field(default_factory=TextBuffer)
    text_chunks: int = 0
    error: str | None = None
    error_kind: str | None = None
    status: int | None = None
    finish_reason: str | None = None
    stats: ModelStats = field(default_factory=ModelStats)

    @property
    def ok(self) -> bool:
        """The model answered (``cut``: only the first max_answer_chars were kept)."""
        return self.state in ANSWERED

    @property
    def text(self) -> str:
        return str(self.text_buffer)

    @property
    def reasoning(self) -> str:
        return str(self.reasoning_buffer)

    def apply(self, event: ModelEvent) -> None:
        """Fold one of this model's events in."""
        if isinstance(event, TextDelta):
            self.text_buffer.append(event.text)
            self.text_chunks += 1
        elif isinstance(event, ReasoningDelta):
            self.reasoning_buffer.append(event.text)
        elif isinstance(event, Started):
            self.provider = event.provider
            self.state = "streaming"
        elif isinstance(event, Finished):
            self.state, self.stats = finished_state(event.finish_reason), event.stats
            self.finish_reason, self.error = event.finish_reason, event.message
        elif isinstance(event, Failed):
            self.state, self.stats = "failed", event.stats
            self.error, self.error_kind, self.status = event.message, event.kind, event.status
        elif isinstance(event, Cancelled):
            self.state, self.stats = "cancelled", event.stats
            self.error = "cancelled"

    @property
    def error_text(self) -> str | None:
        """The human-readable failure (status first when there is one), why an answer was
        cut, or None for a whole answer."""
        if self.state == "done":
            return None
        if self.state == "failed":
            status = f"HTTP {self.status}: " if self.status else ""
            return f"{status}{self.error}"
        return self.error or self.state

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "model": self.model,
            "provider": self.provider,
            "ok": self.ok,
            "state": self.state,
            "text": self.text,
            "reasoning": self.reasoning,
            "error": self.error_text,
            "finish_reason": self.finish_reason,
            "ttft_ms": s.ttft_ms,
            "total_ms": s.total_ms,
            "tokens_in": s.tokens_in,
            "tokens_out": s.tokens_out,
            "tokens_per_s": s.tokens_per_s,
            "attempts": s.attempts,
        }


@dataclass(slots=True)
class SynthesisResult:
    """The synthesizer's runs: the first candidate's, then each fallback's after a failure.
    An empty answer counts as a failure (the next fallback runs)."""

    runs: list[ModelResult] = field(default_factory=list)

    def apply(self, event: ModelEvent) -> None:
        if (isinstance(event, Started) and event.attempt == 1) or not self.runs:
            self.runs.append(ModelResult(event.model))
        self.runs[-1].apply(event)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and self.runs[-1].ok and bool(self.runs[-1].text.strip())

    @property
    def cancelled(self) -> bool:
        return bool(self.runs) and self.runs[-1].state == "cancelled"

    @property
    def text(self) -> str | None:
        return self.runs[-1].text if self.ok else None

    @property
    def synthesizer(self) -> str | None:
        return self.runs[-1].model if self.ok else None

    @property
    def errors(self) -> list[str]:
        """Why each candidate that did not answer failed, in the order they ran."""
        return [
            f"{r.model}: {r.error_text if not r.ok else 'empty answer'}"
            for r in self.runs
            if r.state != "streaming" and not (r.ok and r.text.strip())
        ]

    def to_json(self) -> dict[str, Any]:
        last = self.runs[-1] if self.ok else None
        return {
            "synthesis": self.text,
            "synthesizer": self.synthesizer,
            "synthesis_error": "; ".join(self.errors) or None,
            "synthesis_stats": last.to_json() | {"text": None} if last else None,
        }


@dataclass(slots=True)
class FanoutResult:
    query: str = ""
    wall_ms: float | None = None
    responses: dict[str, ModelResult] = field(default_factory=dict)
    context: tuple[Source, ...] = ()
    consensus: Consensus | None = None
    synthesis: SynthesisResult = field(default_factory=SynthesisResult)

    def apply(self, event: Event) -> None:
        """Fold one event in. Unknown-model events create their entry (robust to ordering)."""
        if isinstance(event, FanoutStarted):
            self.query, self.context = event.query, event.context
            for name in event.models:
                self.responses.setdefault(name, ModelResult(name))
            return
        if isinstance(event, FanoutFinished):
            self.wall_ms = event.wall_ms
            return
        if isinstance(event, ConsensusUpdated):
            self.consensus = event.consensus
        elif isinstance(event, Synthesis):
            self.synthesis.apply(event.event)
        else:
            self.responses.setdefault(event.model, ModelResult(event.model)).apply(event)

    @property
    def any_ok(self) -> bool:
        return any(r.ok for r in self.responses.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "wall_ms": self.wall_ms,
            "context": [source_json(s) for s in self.context],
            "responses": [r.to_json() for r in self.responses.values()],
            "consensus": self.consensus_json(),
        }

    def consensus_json(self) -> dict[str, Any] | None:
        """``--json``'s ``consensus``: the figures (matrix in the order of ``responses``) and
        the synthesis; ``None`` when agreement was not measured at all."""
        return consensus_json(self.consensus, self.synthesis, tuple(self.responses))


def consensus_json(
    consensus: Consensus | None, synthesis: SynthesisResult, order: tuple[str, ...]
) -> dict[str, Any] | None:
    """The ``consensus`` object of ``--json``, history and exports (``None`` if not measured)."""
    if consensus is None:
        return None
    return consensus.to_json(order) | synthesis.to_json()


def source_json(source: Source) -> dict[str, Any]:
    """One entry of ``--json``'s ``context``: rank order, the score rounded for reading."""
    return {
        "id": source.id,
        "source": source.source,
        "title": source.title,
        "location": source.location,
        "score": round(source.score, 4),
        "text": source.text,
    }
