"""``[consensus]``: who synthesizes, in what order the fallbacks run, the prompt, peer review.

[consensus]
synthesizer = "claude"          # any configured model, even one with enabled = false
fallback = ["gpt", "local-qwen"]
synthesis = true                # false: agreement only (ask --no-synthesis, palette)
prompt = "..."                  # replaces the aggregate-and-synthesize instruction
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ConsensusSettings:
    synthesizer: str | None = None
    fallback: tuple[str, ...] = ()
    synthesis: bool = True
    prompt: str | None = None

    @property
    def candidates(self) -> tuple[str, ...]:
        """The synthesizer, then each fallback, without repeats."""
        names = [self.synthesizer, *self.fallback] if self.synthesizer else list(self.fallback)
        return tuple(dict.fromkeys(n for n in names if n))


_KEYS = ("synthesizer", "fallback", "synthesis", "prompt")


def parse_consensus(raw: Any, source: str, model_names: Sequence[str]) -> ConsensusSettings:
    from core.config import ConfigError, check_table, suggest  # here: core.config imports this

    where = f"{source}: [consensus]"
    check_table(raw, where, _KEYS)
    known = set(model_names)
    synthesizer = raw.get("synthesizer")
    if synthesizer is not None and not isinstance(synthesizer, str):
        raise ConfigError(f"{where}: synthesizer must be a model name (a string)")
    fallback = raw.get("fallback", [])
    if not isinstance(fallback, list) or not all(isinstance(n, str) for n in fallback):
        raise ConfigError(f"{where}: fallback must be a list of model names")
    for name in [synthesizer, *fallback]:
        if name is not None and name not in known:
            raise ConfigError(
                f"{where}: {name!r} is not a configured model{suggest(name, known)}; "
                f"configured: {', '.join(model_names) or '(none)'}"
            )
    synthesis = raw.get("synthesis", True)
    if not isinstance(synthesis, bool):
        raise ConfigError(f"{where}: synthesis must be true or false")
    prompt = raw.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ConfigError(f"{where}: prompt must be a non-empty string")
    return ConsensusSettings(synthesizer, tuple(fallback), synthesis, prompt)
