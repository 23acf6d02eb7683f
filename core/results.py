"""Folding the event stream into finished answers (the ``--json`` contract, history, TUI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.events import (
    Cancelled,
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
    TextDelta,
)


@dataclass(slots=True)
class ModelResult:
    model: str
    provider: str = ""
    state: str = "queued"  # queued | streaming | done | failed | cancelled
    text_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    status: int | None = None
    finish_reason: str | None = None
    stats: ModelStats = field(default_factory=ModelStats)

    @property
    def ok(self) -> bool:
        return self.state == "done"

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def apply(self, event: ModelEvent) -> None:
        """Fold one of this model's events in."""
        if isinstance(event, TextDelta):
            self.text_parts.append(event.text)
        elif isinstance(event, ReasoningDelta):
            self.reasoning_parts.append(event.text)
        elif isinstance(event, Started):
            self.provider = event.provider
            self.state = "streaming"
        elif isinstance(event, Finished):
            self.state, self.finish_reason, self.stats = "done", event.finish_reason, event.stats
        elif isinstance(event, Failed):
            self.state, self.stats = "failed", event.stats
            self.error, self.error_kind, self.status = event.message, event.kind, event.status
        elif isinstance(event, Cancelled):
            self.state, self.stats = "cancelled", event.stats
            self.error = "cancelled"

    @property
    def error_text(self) -> str | None:
        """The human-readable failure (status first when there is one), or None if ok."""
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
class FanoutResult:
    query: str = ""
    wall_ms: float | None = None
    responses: dict[str, ModelResult] = field(default_factory=dict)
    context: tuple[Source, ...] = ()

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
        }


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
