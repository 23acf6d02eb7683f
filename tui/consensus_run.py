"""The consensus of the question on screen: one tracker per turn, one stage per fan-out.

The tracker belongs to the turn, so a retried model's new answer replaces its old one in the
figures and the synthesis runs again over the answers now on screen. If a retry starts while the
turn's first fan-out still runs, the older stage is retired: only the newest one synthesizes.
The embedder is the app's one instance, shared with the knowledge base, loaded in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from core.config import ModelSpec, Settings
from core.events import Source

if TYPE_CHECKING:  # the tracker pulls in numpy: imported with the first question
    from core.consensus.stage import ConsensusStage
    from core.consensus.tracker import ConsensusTracker
    from core.store.embedder import Embedder


class TurnConsensus:
    def __init__(self, settings: Settings, embedder: Callable[[], Embedder]) -> None:
        self.settings = settings
        self.synthesis = settings.consensus.synthesis  # the palette's toggle
        self.synthesizer: str | None = None  # chosen in the palette: runs before the config's
        self._embedder = embedder
        self._tracker: ConsensusTracker | None = None
        self._stage: ConsensusStage | None = None
        self._question = ""
        self._context: tuple[Source, ...] = ()

    def candidates(self) -> tuple[str, ...]:
        """Who synthesizes the next question, in the order they would run."""
        from core.consensus.stage import synthesizers

        return tuple(
            m.name
            for m in synthesizers(self.settings, synthesis=self.synthesis, first=self.synthesizer)
        )

    def off_reason(self) -> str:
        """Why the next question gets no synthesis (when `candidates` is empty)."""
        if self.synthesis and self.settings.consensus.synthesis:
            return "no synthesizer chosen (Ctrl+P: Synthesize with…, or [consensus] synthesizer)"
        return "synthesis is off"

    def begin(self, question: str, models: Sequence[ModelSpec]) -> None:
        """A new turn: a fresh tracker over the models asked."""
        from core.consensus.tracker import ConsensusTracker

        self._tracker = ConsensusTracker(self._embedder(), [m.name for m in models])
        self._stage, self._question, self._context = None, question, ()

    def set_context(self, sources: Sequence[Source]) -> None:
        self._context = tuple(sources)

    def end(self) -> None:
        """No turn on screen (a new session)."""
        self._tracker = self._stage = None

    def stage(self) -> ConsensusStage | None:
        """The stage for the turn's next fan-out (its first, or a retry's)."""
        from core.consensus.stage import ConsensusStage, synthesizers

        if self._tracker is None:
            return None
        if self._stage is not None:
            self._stage.retire()
        self._stage = ConsensusStage(
            self._tracker,
            self._question,
            context=self._context,
            synthesizers=synthesizers(
                self.settings, synthesis=self.synthesis, first=self.synthesizer
            ),
            instruction=self.settings.consensus.prompt,
        )
        return self._stage

    def toggle_synthesis(self) -> str:
        self.synthesis = not self.synthesis
        if not self.synthesis:
            return (
                "Synthesis off: the panel shows the agreement and the most representative answer."
            )
        if not self.settings.consensus.synthesis:
            self.synthesis = False
            return "Synthesis is off in the config ([consensus] synthesis = false)."
        names = self.candidates()
        if not names:
            return "Synthesis on, but no synthesizer is chosen: pick one from the palette."
        return f"Synthesis on: {' then '.join(names)} after the answers are in."

    def choose(self, name: str) -> str:
        self.synthesizer = name
        if not self.synthesis:
            self.synthesis = self.settings.consensus.synthesis
        order = " then ".join(self.candidates())
        return f"Synthesizer: {name} (from the next question; in order: {order})."
