"""What the consensus panel knows, folded from the event stream (no Textual here).

`ConsensusUpdated` replaces the figures (a retried model's new answer simply arrives as a
newer consensus: the tracker belongs to the turn); the synthesizer's events are folded by the
same `SynthesisResult` the CLI and history use. The widget reads `synthesis_view` and the
figures to draw; the app reads `marks` for the pane headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from core.consensus.records import Consensus
from core.events import (
    ConsensusUpdated,
    Event,
    FanoutFinished,
    FirstToken,
    Started,
    Synthesis,
)
from core.results import ModelResult, SynthesisResult

Mark = Literal["medoid", "outlier"]
Phase = Literal["off", "waiting", "streaming", "done", "none"]


@dataclass(frozen=True, slots=True)
class SynthesisView:
    """The synthesis as the panel shows it.

    ``phase``: "off" (no synthesizer configured), "waiting" (for the answers, or for the next
    fallback), "streaming", "done", or "none" (it will not come: ``reason`` says why and the
    panel shows the most representative answer, ``fallback``, instead)."""

    phase: Phase
    model: str | None = None  # the synthesizer running, or the one that answered
    text: str = ""
    ttft_ms: float | None = None
    total_ms: float | None = None  # final once done, elapsed while streaming
    failures: tuple[str, ...] = ()  # "<model> failed: <why>" for each candidate that did not
    reason: str | None = None
    fallback: str | None = None  # the medoid, shown when there is no synthesis


@dataclass(slots=True)
class ConsensusState:
    clock: Callable[[], float] = time.monotonic
    asked: tuple[str, ...] = ()
    synthesizers: tuple[str, ...] | None = None  # None: not told (the fan-out's end decides)
    consensus: Consensus | None = None
    synthesis: SynthesisResult = field(default_factory=SynthesisResult)
    ended: bool = False  # the fan-out (and so its synthesis stage) has finished
    off_reason: str = "synthesis is off"  # why there are no synthesizers
    version: int = 0  # bumped whenever the figures change (the widget redraws them then)
    _ttft_ms: float | None = None
    _started_at: float | None = None
    _stale: bool = False  # a newer consensus arrived after a synthesis: the next one restarts

    def reset(
        self,
        asked: Sequence[str] = (),
        synthesizers: Sequence[str] | None = None,
        off_reason: str = "synthesis is off",
    ) -> None:
        """A new turn: ``asked`` in the order of the panes, ``synthesizers`` the candidates in
        the order they run (``()``: no synthesis, for ``off_reason``)."""
        self.asked = tuple(asked)
        self.off_reason = off_reason
        self.synthesizers = None if synthesizers is None else tuple(synthesizers)
        self.consensus = None
        self.synthesis = SynthesisResult()
        self.ended = self._stale = False
        self._ttft_ms = self._started_at = None
        self.version += 1

    def apply(self, event: Event) -> bool:
        """Fold in what the panel shows; any other event is ignored. True if it was used."""
        if isinstance(event, ConsensusUpdated):
            self.consensus = event.consensus
            if not self.asked:
                self.asked = event.consensus.asked
            if self.synthesis.runs or self.ended:
                self._stale, self.ended = True, False  # a retry: its synthesis runs again
            self.version += 1
            return True
        if isinstance(event, Synthesis):
            inner = event.event
            if isinstance(inner, Started) and inner.attempt == 1:
                if self._stale:
                    self.synthesis, self._stale = SynthesisResult(), False
                self._ttft_ms, self._started_at = None, self.clock()
            elif isinstance(inner, FirstToken):
                self._ttft_ms = inner.ttft_ms
            self.synthesis.apply(inner)
            return True
        if isinstance(event, FanoutFinished):
            self.ended = True
            return True
        return False

    # --- the figures ------------------------------------------------------------------
    @property
    def figures(self) -> Consensus:
        """The latest consensus, or an empty one while no model has ended yet."""
        if self.consensus is not None:
            return self.consensus
        return Consensus(self.asked, (), reason="no answer yet")

    @property
    def started(self) -> bool:
        return bool(self.asked) or self.consensus is not None

    def marks(self) -> dict[str, Mark | None]:
        """Every asked model's pane mark: the most representative answer and the outliers."""
        c = self.figures
        marks: dict[str, Mark | None] = dict.fromkeys(c.asked)
        if c.agreement is not None:
            for name in c.outliers:
                marks[name] = "outlier"
            if c.medoid is not None:
                marks[c.medoid] = "medoid"
        return marks

    def left_out(self) -> str | None:
        """What the failed and cancelled models mean for the figures, in words."""
        c = self.figures
        if not c.missing:
            return None
        names = ", ".join(f"{m} ({why})" for m, why in c.missing)
        count = len(c.models)
        over = f"over the {count} answers measured" if count != 1 else "over 1 answer"
        return f"left out of every figure: {names}; agreement is {over}"

    # --- the synthesis ----------------------------------------------------------------
    def synthesis_view(self) -> SynthesisView:
        runs = self.synthesis.runs
        failures = tuple(_failure(r) for r in runs if _did_not_answer(r))
        medoid = self.figures.medoid
        if not runs:
            if self.synthesizers == ():
                return self._none(self.off_reason, failures, medoid, "off")
            if self.ended or self._settled_without_pair():
                reason = (
                    "a synthesis needs at least two answers"
                    if len(self.figures.models) < 2
                    else "the synthesis did not run"
                )
                return self._none(reason, failures, medoid)
            return SynthesisView("waiting", self._next(0))
        last = runs[-1]
        if last.state in ("queued", "streaming"):
            return SynthesisView(
                "streaming",
                last.model,
                last.text,
                self._ttft_ms,
                None if self._started_at is None else (self.clock() - self._started_at) * 1000,
                failures,
            )
        if self.synthesis.ok:
            stats = last.stats
            return SynthesisView(
                "done",
                last.model,
                last.text,
                stats.ttft_ms if stats.ttft_ms is not None else self._ttft_ms,
                stats.total_ms,
                failures,
            )
        if last.state == "cancelled":
            return self._none(f"{last.model}'s synthesis was cancelled", failures[:-1], medoid)
        tried = len({r.model for r in runs})
        if self.ended or (self.synthesizers is not None and tried >= len(self.synthesizers)):
            return self._none("; ".join(failures), failures, medoid)
        return SynthesisView("waiting", self._next(tried), failures=failures)

    def _none(
        self, reason: str, failures: tuple[str, ...], medoid: str | None, phase: Phase = "none"
    ) -> SynthesisView:
        return SynthesisView(phase, failures=failures, reason=reason, fallback=medoid)

    def _next(self, index: int) -> str | None:
        if self.synthesizers and index < len(self.synthesizers):
            return self.synthesizers[index]
        return None

    def _settled_without_pair(self) -> bool:
        """Every model has ended with fewer than two answers: the stage skips the synthesis."""
        c = self.consensus
        return c is not None and not c.pending and len(c.models) < 2


def _did_not_answer(run: ModelResult) -> bool:
    return run.state in ("done", "failed", "cancelled") and not (run.ok and run.text.strip())


def _failure(run: ModelResult) -> str:
    why = "empty answer" if run.ok else run.error_text
    return f"{run.model} failed: {why}"
