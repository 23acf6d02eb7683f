"""The consensus inside the fan-out (`core.engine.FanoutStage`): each answer is measured as its
model ends, in a worker thread, while the others still stream; once all have ended the
synthesizer runs, then each fallback in turn until one answers.

Measurements run one at a time, in the order models ended, so every `ConsensusUpdated` is newer
than the one before it (and the 2 cores are not split between two embeddings).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import anyio
import anyio.to_thread

from core.config import ModelSpec, Settings, with_overrides
from core.consensus.records import MEASURING, UNAVAILABLE
from core.consensus.synthesis import synthesis_prompt
from core.consensus.tracker import ConsensusTracker
from core.engine import Emit, RunModel, Spawn
from core.events import (
    Cancelled,
    ConsensusUpdated,
    Event,
    Failed,
    Finished,
    ModelEvent,
    Source,
    Synthesis,
    TextDelta,
)
from core.providers.base import Message
from core.results import SynthesisResult
from core.textbuf import TextBuffer


class ConsensusStage:
    def __init__(
        self,
        tracker: ConsensusTracker,
        question: str,
        *,
        context: Sequence[Source] = (),
        synthesizers: Sequence[ModelSpec] = (),
        instruction: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.tracker = tracker
        self._question = question
        self._context = tuple(context)
        self._synthesizers = tuple(synthesizers)
        self._instruction = instruction
        self._rng = rng or random.Random()
        self._texts: dict[str, TextBuffer] = {}
        self._retired = False
        self._turns = anyio.Lock()  # FIFO: measurements in the order models ended

    def retire(self) -> None:
        """A newer stage measures into the same tracker (a retry): it synthesizes, not this one."""
        self._retired = True

    def observe(self, event: Event, spawn: Spawn, emit: Emit) -> None:
        if isinstance(event, TextDelta):
            self._texts.setdefault(event.model, TextBuffer()).append(event.text)
        elif isinstance(event, Finished):
            current = self.tracker.current
            waiting = current.agreement is None and len(current.asked) > 1
            if waiting and not (current.reason or "").startswith(UNAVAILABLE):
                # the figures wait for this answer's embedding: say so, not "no answer yet"
                emit(ConsensusUpdated(dataclasses.replace(current, reason=MEASURING)))
            text = str(self._texts.pop(event.model, ""))
            model = event.model
            spawn(lambda: self._measure(model, text, emit))
        elif isinstance(event, Failed | Cancelled):
            self._texts.pop(event.model, None)
            model, state = event.model, "failed" if isinstance(event, Failed) else "cancelled"
            spawn(lambda: self._drop(model, state, emit))

    async def _measure(self, model: str, text: str, emit: Emit) -> None:
        from core.store.embedder import EmbeddingError

        async with self._turns:
            try:
                consensus = await anyio.to_thread.run_sync(self.tracker.add, model, text)
            except EmbeddingError as exc:
                consensus = self.tracker.unavailable(str(exc))
            emit(ConsensusUpdated(consensus))

    async def _drop(self, model: str, state: str, emit: Emit) -> None:
        async with self._turns:
            emit(ConsensusUpdated(self.tracker.drop(model, state)))

    async def after(self, emit: Emit, run: RunModel) -> None:
        answers = self.tracker.answers()
        if self._retired or not self._synthesizers or len(answers) < 2:
            return
        prompt = synthesis_prompt(
            self._question,
            answers,
            self._context,
            instruction=self._instruction,
            rng=self._rng,
        )
        outcome = SynthesisResult()

        def synthesis(event: Event) -> None:
            assert isinstance(event, ModelEvent)
            outcome.apply(event)
            emit(Synthesis(event))

        for spec in self._synthesizers:
            await run(
                with_overrides(spec, system=prompt.system),
                [Message("user", prompt.user)],
                synthesis,
            )
            if outcome.ok or outcome.cancelled or self._retired:
                return


def synthesizers(
    settings: Settings, *, synthesis: bool = True, first: str | None = None
) -> tuple[ModelSpec, ...]:
    """Who synthesizes, in order: ``first`` (chosen in the app), then ``[consensus]``'s
    synthesizer and fallbacks; none when synthesis is off here or in the config."""
    chosen = settings.consensus
    if not synthesis or not chosen.synthesis:
        return ()
    names = dict.fromkeys(n for n in (first, *chosen.candidates) if n)
    return settings.select(list(names))
